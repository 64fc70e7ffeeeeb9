"""Human approval of a campaign before anything is queued: a Prefect pause with a form."""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import Field, field_validator


class Approval(RunInput):
    """The form the Prefect UI shows on a paused campaign run."""

    approve: bool = Field(False, description="Tick to queue and send this campaign.")
    approver: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"\S",
        description="Your name or handle: who approves or rejects (kept in the audit log).",
    )
    note: str = Field("", description="Why (kept in the audit log). No personal data.")

    @field_validator("approver")
    @classmethod
    def _stripped(cls, value: str) -> str:
        # Never raises: the server checks the form against its JSON schema only, and an
        # answer it accepted must not fail the run when the flow reads it back.
        return value.strip()
