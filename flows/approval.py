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


def approval_description(campaign: str, gallery: str, stages: dict[str, int]) -> str:
    """Markdown shown above the form: what is about to go out, and where to look first."""
    lines = [
        f"## Approve campaign `{campaign}`?",
        "",
        f"Preview gallery (posters, GIFs and videos of a sample): `{gallery}`",
        "",
        "| stage | count |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in stages.items()],
    ]
    return "\n".join(lines)
