"""Regenerate the brand logo and the audio bed in assets/ (both made here, royalty-free).

    python assets/make_assets.py

The logo is drawn with Pillow; the bed is synthesized with numpy (soft electric-piano
chords over a warm pad, 100 BPM, 10 s) and encoded to AAC with ffmpeg. Renders normalize
the bed's loudness, so its level here does not matter much.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
RATE = 48_000


def logo(path: Path, size: int = 512) -> None:
    """The Northwind Market mark: an amber rounded square, a white N with a wind swoosh."""
    big = size * 4
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 4, fill=(255, 181, 71, 255))
    font = ImageFont.truetype(str(HERE / "fonts" / "DejaVuSans-Bold.ttf"), int(big * 0.62))
    draw.text((big / 2, big * 0.44), "N", font=font, fill=(17, 24, 39, 255), anchor="mm")
    bar = big * 0.045
    for x0, x1, y in ((0.22, 0.70, 0.77), (0.36, 0.82, 0.86)):  # two gusts of wind
        draw.rounded_rectangle(
            (big * x0, big * y - bar / 2, big * x1, big * y + bar / 2),
            radius=bar / 2,
            fill=(17, 24, 39, 255),
        )
    image.reduce(4).save(path, optimize=True)


def _note(freq: float, seconds: float, *, harmonics: tuple[float, ...], decay: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(a * np.sin(2 * np.pi * freq * (k + 1) * t) for k, a in enumerate(harmonics))
    attack = np.minimum(t / 0.01, 1.0)
    return tone * attack * np.exp(-t / decay)


def bed(path: Path, seconds: float = 10.0) -> None:
    """Four chords (C maj7, A min7, F maj7, G sus) of electric piano over a pad."""
    n = int(seconds * RATE)
    left, right = np.zeros(n), np.zeros(n)
    beat = 60 / 100
    chords = [
        (48, (60, 64, 67, 71)),
        (45, (57, 60, 64, 67)),
        (41, (57, 60, 65, 69)),
        (43, (55, 60, 62, 67)),
    ]
    hz = lambda m: 440.0 * 2 ** ((m - 69) / 12)  # noqa: E731
    bar = 4 * beat
    for i in range(int(np.ceil(seconds / bar))):
        root, notes = chords[i % len(chords)]
        start = int(i * bar * RATE)
        # the pad: slow swell, two detuned voices for width
        pad_len = min(n - start, int((bar + 0.6) * RATE))
        if pad_len <= 0:
            continue
        t = np.arange(pad_len) / RATE
        swell = np.minimum(t / 0.8, 1.0) * np.minimum((bar + 0.6 - t) / 0.6, 1.0)
        for m in notes:
            for side, detune in ((left, 0.998), (right, 1.002)):
                side[start : start + pad_len] += (
                    0.05 * swell * np.sin(2 * np.pi * hz(m) * detune * t)
                )
        bass = _note(hz(root - 12), bar, harmonics=(1, 0.3), decay=1.2)[: n - start]
        left[start : start + bass.size] += 0.25 * bass
        right[start : start + bass.size] += 0.25 * bass
        # the piano: an arpeggio on eighth notes
        for k in range(8):
            at = start + int(k * beat / 2 * RATE)
            if at >= n:
                break
            m = notes[(k * 3) % len(notes)] + (12 if k % 4 == 3 else 0)
            pluck = _note(hz(m), 1.2, harmonics=(1, 0.5, 0.25, 0.1), decay=0.35)[: n - at]
            pan = 0.35 + 0.3 * ((k % 3) / 2)
            left[at : at + pluck.size] += 0.12 * (1 - pan) * pluck
            right[at : at + pluck.size] += 0.12 * pan * pluck
    fade = np.minimum(np.arange(n) / (0.02 * RATE), 1.0) * np.minimum(
        (n - np.arange(n)) / (1.0 * RATE), 1.0
    )
    stereo = np.stack([left, right], axis=1) * fade[:, None]
    stereo *= 0.5 / np.abs(stereo).max()
    pcm = (stereo * 32767).astype("<i2")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bed.wav"
        with wave.open(str(wav), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(pcm.tobytes())
        ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(wav), "-c:a", "aac",
             "-b:a", "96k", "-movflags", "+faststart", "-y", str(path)],
            check=True,
        )  # fmt: skip


if __name__ == "__main__":
    logo(HERE / "brand" / "northwind-mark.png")
    bed(HERE / "audio" / "bed-soft-keys.m4a")
    print("wrote", HERE / "brand" / "northwind-mark.png", HERE / "audio" / "bed-soft-keys.m4a")
