"""Human approval of a campaign before anything is queued: a Prefect pause with a form."""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import Field


class Approval(RunInput):
    """The form the Prefect UI shows on a paused campaign run."""

    approve: bool = Field(False, description="Tick to queue and send this campaign.")
    note: str = Field("", description="Why (kept in the audit log). No personal data.")


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
