"""Measurements the benches share."""

from __future__ import annotations

import contextlib
import threading

import psutil


class RssSampler:
    """Peak resident memory of this process tree (self + live children), sampled each 0.5 s."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_self = 0  # this process alone
        self.peak_children = 0  # its children alone (a Prefect server, ffmpeg)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._me = psutil.Process()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            own = children = 0
            try:
                own = self._me.memory_info().rss
                for child in self._me.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        children += child.memory_info().rss
            except psutil.Error:
                pass
            self.peak = max(self.peak, own + children)
            self.peak_self = max(self.peak_self, own)
            self.peak_children = max(self.peak_children, children)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
