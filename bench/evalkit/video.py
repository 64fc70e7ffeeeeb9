"""Comparing two encodes of the same frames (the bench and the scene reuse tests share it)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path


def psnr_per_frame(a: Path, b: Path, ffmpeg: str = "ffmpeg") -> list[float]:
    """ffmpeg's PSNR (the average over Y, U and V, in dB) of each frame of `a` against the
    frame of `b` at the same position; 99 for identical frames."""
    with tempfile.TemporaryDirectory(prefix="reelcast-psnr-") as tmp:
        log = Path(tmp) / "psnr.log"
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(a), "-i", str(b),
             "-lavfi", f"[0:v][1:v]psnr=stats_file={log}", "-f", "null", "-"],
            check=True,
        )  # fmt: skip
        values = []
        for line in log.read_text().splitlines():
            value = line.split("psnr_avg:")[1].split()[0]
            values.append(99.0 if value == "inf" else float(value))
    return values
