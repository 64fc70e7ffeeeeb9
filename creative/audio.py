"""The audio bed: how loud a file is (EBU R128), so renders can normalize it.

The gain is measured once per file version and applied as a plain volume change: a
static gain keeps the music's dynamics (single-pass `loudnorm` would pump) and makes the
result exactly reproducible.
"""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

from creative.encode import find_ffmpeg
from creative.errors import RenderError

_INTEGRATED = re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-inf) LUFS")
_TRUE_PEAK = re.compile(r"True peak:\s*Peak:\s*(-?[\d.]+|-inf) dBFS")


def parse_ebur128(log: str) -> tuple[float | None, float | None]:
    """(integrated LUFS, true peak dBFS) from the summary ffmpeg's ebur128 filter prints."""
    loud, peak = _INTEGRATED.findall(log), _TRUE_PEAK.findall(log)

    def to(v: str) -> float | None:
        return None if v == "-inf" else float(v)

    return (to(loud[-1]) if loud else None, to(peak[-1]) if peak else None)


def measure_loudness(path: Path, ffmpeg: str | None = None) -> float:
    """Integrated loudness of an audio file in LUFS (raises RenderError if silent/unreadable)."""
    stat = path.stat()
    return _measure(path, stat.st_mtime_ns, stat.st_size, find_ffmpeg(ffmpeg))


def normalization_gain_db(path: Path, target_lufs: float, ffmpeg: str | None = None) -> float:
    """The gain that brings `path` to `target_lufs`."""
    return round(target_lufs - measure_loudness(path, ffmpeg), 2)


@lru_cache(maxsize=32)
def _measure(path: Path, mtime_ns: int, size: int, ffmpeg: str) -> float:
    command = [
        ffmpeg, "-hide_banner", "-nostats", "-i", str(path),
        "-af", "ebur128=peak=true", "-f", "null", "-",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    log = result.stderr.decode("utf-8", "replace")
    loudness, _ = parse_ebur128(log)
    if result.returncode != 0 or loudness is None:
        raise RenderError(f"cannot measure the loudness of {path.name}: {log[-500:].strip()}")
    return loudness
