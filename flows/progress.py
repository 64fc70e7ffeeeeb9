"""Progress reporting from tasks to whoever is watching (a terminal, or nobody).

Tasks run in the CLI's process (thread runner), so a module-level reporter is
enough: the CLI installs a rich progress display; under a Prefect worker the
default reporter does nothing and the Prefect UI shows the run instead.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    """Receives stage starts and advances."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, amount: int = 1) -> None: ...

    def approval_requested(self, flow_run_id: str, gallery: str) -> None: ...


class _Silent:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, amount: int = 1) -> None:
        pass

    def approval_requested(self, flow_run_id: str, gallery: str) -> None:
        pass


_lock = threading.Lock()
_reporter: Reporter = _Silent()


def reporter() -> Reporter:
    """The reporter in use."""
    return _reporter


@contextmanager
def reporting(new: Reporter):  # type: ignore[no-untyped-def]
    """Install `new` for the duration of the block."""
    global _reporter
    with _lock:
        old, _reporter = _reporter, new
    try:
        yield new
    finally:
        with _lock:
            _reporter = old


class RichReporter:
    """A rich progress bar per stage; asks the terminal's user to approve a paused run."""

    def __init__(self, progress) -> None:  # type: ignore[no-untyped-def]
        self._progress = progress
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()

    def approval_requested(self, flow_run_id: str, gallery: str) -> None:
        # The flow thread is about to block in pause_flow_run; answer from another thread
        # once the run is really paused, through the same Prefect API as the UI would.
        threading.Thread(
            target=_ask_in_terminal, args=(self._progress, flow_run_id, gallery), daemon=True
        ).start()

    def start(self, stage: str, total: int) -> None:
        with self._lock:
            if stage in self._tasks:
                self._progress.update(self._tasks[stage], total=total, completed=0)
            else:
                self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        with self._lock:
            if stage in self._tasks:
                self._progress.advance(self._tasks[stage], amount)


def _ask_in_terminal(progress, flow_run_id: str, gallery: str) -> None:  # type: ignore[no-untyped-def]
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
    answer = _read(console, "Approve and send this campaign? [y/N] ").lower()
    # End of input (Ctrl-D) at the first question is a "no"; at the note, an empty note.
    note = _read(console, "Note for the audit log (optional, no personal data): ") if answer else ""
    resume_flow_run(UUID(flow_run_id), run_input={"approve": answer in ("y", "yes"), "note": note})
    progress.start()


def _read(console, prompt: str) -> str:  # type: ignore[no-untyped-def]
    """One answer from the terminal, stripped; "" at end of input or Ctrl-C."""
    try:
        return console.input(prompt).strip()
    except (EOFError, KeyboardInterrupt):
        console.print()
        return ""
