"""Progress reporting from tasks to whoever is watching (a terminal, or nobody).

Tasks run in the CLI's process (thread runner), so a module-level reporter is
enough: the CLI installs a rich progress display; under a Prefect worker the
default reporter does nothing and the Prefect UI shows the run instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    """Receives stage starts and advances."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, amount: int = 1) -> None: ...

    def finish(self, stage: str, note: str = "") -> None:
        """The stage is over for this run: all of it done, or skipped because an earlier
        run did it (`note` says what, e.g. "12 already sent")."""
        ...

    def approval_requested(self, flow_run_id: str, gallery: str) -> None: ...


class _Silent:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, amount: int = 1) -> None:
        pass

    def finish(self, stage: str, note: str = "") -> None:
        pass

    def approval_requested(self, flow_run_id: str, gallery: str) -> None:
        pass


_lock = threading.Lock()
_reporter: Reporter = _Silent()


def reporter() -> Reporter:
    """The reporter in use."""
    return _reporter


@contextmanager
def reporting(new: Reporter) -> Iterator[Reporter]:
    """Install `new` for the duration of the block."""
    global _reporter
    with _lock:
        old, _reporter = _reporter, new
    try:
        yield new
    finally:
        with _lock:
            _reporter = old
