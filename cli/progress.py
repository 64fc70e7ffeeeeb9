"""The terminal's view of a run: a rich progress bar per stage, and the approval question."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID


class RichReporter:
    """A rich progress bar per stage; asks the terminal's user to approve a paused run, and
    answers as `approver` (their name or handle, for the audit log)."""

    def __init__(self, progress: Progress, approver: str = "") -> None:
        self._progress = progress
        self._approver = approver
        self._tasks: dict[str, TaskID] = {}
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def approval_requested(self, flow_run_id: str, gallery: str) -> None:
        # The flow thread is about to block in pause_flow_run; answer from another thread
        # once the run is really paused, through the same Prefect API as the UI would.
        threading.Thread(
            target=_ask_in_terminal,
            args=(self._progress, flow_run_id, gallery, self._approver),
            daemon=True,
        ).start()

    def start(self, stage: str, total: int) -> None:
        with self._lock:
            self._totals[stage] = total
            if stage in self._tasks:
                self._progress.update(self._tasks[stage], total=total, completed=0)
            else:
                self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        with self._lock:
            if stage in self._tasks:
                self._progress.advance(self._tasks[stage], amount)

    def finish(self, stage: str, note: str = "") -> None:
        # A re-run skips what an earlier run did: the bar shows the stage done, and why
        # fewer were done now, rather than standing at 0/N.
        with self._lock:
            if stage in self._tasks:
                self._progress.update(
                    self._tasks[stage],
                    completed=self._totals[stage],
                    description=f"{stage} ({note})" if note else stage,
                )


def _ask_in_terminal(progress: Progress, flow_run_id: str, gallery: str, approver: str) -> None:
    import time
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:
        for _ in range(600):
            run = client.read_flow_run(UUID(flow_run_id))
            if run.state is not None and run.state.is_paused():
                break
            time.sleep(0.5)
    progress.stop()
    console = progress.console
    console.print(f"\n[bold]Approval needed.[/] Look at the preview gallery first:\n  {gallery}")
    answer = read_answer(
        console, f"Approve and send this campaign (as {escape(approver)}, --approver)? [y/N] "
    ).lower()
    # End of input (Ctrl-D) at the first question is a "no"; at the note, an empty note.
    note = (
        read_answer(console, "Note for the audit log (optional, no personal data): ")
        if answer
        else ""
    )
    resume_flow_run(
        UUID(flow_run_id),
        run_input={"approve": answer in ("y", "yes"), "approver": approver, "note": note},
    )
    progress.start()


def read_answer(console: Console, prompt: str) -> str:
    """One answer from the terminal, stripped; "" at end of input or Ctrl-C."""
    try:
        return console.input(prompt).strip()
    except (EOFError, KeyboardInterrupt):
        console.print()
        return ""
