"""Encoding raw RGB frames by piping them into ffmpeg: the H.264 MP4 and the GIF preview.

Each process is always reaped: closed and waited on success, killed and waited on any
error. ffmpeg's log goes to a temporary file rather than a pipe (a full stderr pipe would
deadlock us while we write frames) and its tail goes into the RenderError.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

from creative.errors import CreativeError, RenderError
from creative.storyboard import AudioPart, Encode

_F_SETPIPE_SZ = 1031  # Linux fcntl: a 1 MiB pipe means fewer wake-ups per 2.7 MB frame
_PIPE_SIZE = 1 << 20
_LOG_TAIL = 2000


FFMPEG_MISSING = (
    "ffmpeg not found: it is not on PATH and imageio-ffmpeg has no usable binary; install "
    "it (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg) and run again"
)


def find_ffmpeg(ffmpeg: str | None = None) -> str:
    """The ffmpeg binary: the one given, else ffmpeg on PATH, else imageio-ffmpeg's.

    Only an executable file counts: imageio-ffmpeg returns IMAGEIO_FFMPEG_EXE unchecked,
    and a path that runs nothing would fail every render later, one by one.
    """
    if ffmpeg is not None:
        found = shutil.which(ffmpeg)
        if found is None:
            raise CreativeError(f"ffmpeg binary {ffmpeg!r} not found")
        return found
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg

        bundled: str = imageio_ffmpeg.get_ffmpeg_exe()  # imageio_ffmpeg is untyped
    except (ImportError, RuntimeError):
        raise CreativeError(FFMPEG_MISSING) from None
    usable = shutil.which(bundled)  # an executable file, or a name found on PATH
    if usable is None:
        raise CreativeError(FFMPEG_MISSING)
    return usable


def audio_args(audio: AudioPart, duration_s: float, gain_db: float) -> list[str]:
    """ffmpeg arguments that fit the audio bed to a video of `duration_s`: padded or
    trimmed, faded in and out, given `gain_db` (the normalization gain), AAC 128 kb/s."""
    fade = min(audio.fade_out, duration_s)
    chain = (
        f"apad=whole_dur={duration_s:.3f},atrim=0:{duration_s:.3f},asetpts=PTS-STARTPTS,"
        f"afade=t=in:d=0.05,afade=t=out:st={duration_s - fade:.3f}:d={fade:.3f},"
        f"volume={gain_db:.2f}dB,aformat=sample_rates=48000:channel_layouts=stereo"
    )
    return ["-af", chain, "-c:a", "aac", "-b:a", "128k"]


def encode_command(
    ffmpeg: str,
    out: Path,
    width: int,
    height: int,
    fps: int,
    encode: Encode,
    threads: int,
    audio: AudioPart | None = None,
    duration_s: float | None = None,
    audio_gain_db: float = 0.0,
) -> list[str]:
    """The ffmpeg command line reading rgb24 frames on stdin and writing an MP4.

    With `audio`, the bed is padded/trimmed to `duration_s`, faded out, given
    `audio_gain_db` (the normalization gain) and encoded as AAC beside the video.
    """
    if audio is None:
        sound = ["-an"]
    else:
        if duration_s is None:
            raise ValueError("duration_s is needed to fit the audio bed to the video")
        sound = [
            "-i", str(audio.path), "-map", "0:v:0", "-map", "1:a:0",
            *audio_args(audio, duration_s, audio_gain_db),
        ]  # fmt: skip
    return [
        ffmpeg,
        "-hide_banner",
        "-nostats",
        "-loglevel", "error",
        "-filter_threads", str(threads),
        "-f", "rawvideo",
        "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}",
        "-r", str(fps),
        "-i", "pipe:0",
        *sound,
        # Limited-range BT.709, tagged as such: what every player assumes for H.264.
        "-vf", "scale=out_color_matrix=bt709:out_range=tv",
        "-c:v", "libx264",
        "-g", str(max(1, round(encode.keyframe_s * fps))),
        "-preset", encode.preset,
        "-crf", str(encode.crf),
        "-threads", str(threads),
        "-pix_fmt", encode.pix_fmt,
        "-colorspace", "bt709",
        "-color_primaries", "bt709",
        "-color_trc", "bt709",
        "-color_range", "tv",
        "-movflags", "+faststart",
        "-f", "mp4",
        "-y", str(out),
    ]  # fmt: skip


def gif_command(ffmpeg: str, out: Path, width: int, height: int, fps: float) -> list[str]:
    """The ffmpeg command line turning rgb24 frames (already GIF-sized) into a looping GIF.

    One palette for the whole clip (palettegen over all frames), ordered dithering (it
    compresses far better than error diffusion) and only the changed rectangle per frame.
    """
    graph = (
        "split[a][b];"
        "[a]palettegen=max_colors=128:stats_mode=diff[p];"
        "[b][p]paletteuse=dither=bayer:bayer_scale=3:diff_mode=rectangle"
    )
    return [
        ffmpeg, "-hide_banner", "-nostats", "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
        "-r", f"{fps:g}", "-i", "pipe:0",
        "-filter_complex", graph, "-loop", "0", "-f", "gif", "-y", str(out),
    ]  # fmt: skip


class FramePipe:
    """A running ffmpeg (`command` reads rgb24 frames on stdin) that writes `out`.

    Use as a context manager: leaving the block normally finishes the file (and raises
    RenderError if ffmpeg failed); leaving it with an exception kills ffmpeg.
    """

    def __init__(
        self, command: list[str], out: Path, shape: tuple[int, int, int], timeout_s: float = 300
    ) -> None:
        self.out = out
        self.shape = shape
        self.timeout_s = timeout_s
        self._command = command
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FramePipe:
        try:
            self._proc = subprocess.Popen(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
            )
        except OSError as exc:
            self._log.close()
            raise RenderError(f"cannot start ffmpeg: {exc}") from None
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._proc.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_SIZE)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Send one H×W×3 uint8 frame."""
        assert self._proc is not None and self._proc.stdin is not None
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame is {frame.shape} {frame.dtype}, expected {self.shape} uint8")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            try:
                self._proc.wait(timeout=10)  # it died: let it finish writing its log
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            raise RenderError(self._failure("ffmpeg stopped reading frames")) from None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        assert proc is not None
        try:
            if exc_type is not None:
                proc.kill()
                proc.wait()
                return
            assert proc.stdin is not None  # started with stdin=PIPE
            with contextlib.suppress(BrokenPipeError):  # ffmpeg died: its status says why
                proc.stdin.close()
            # A blocking wait with a watchdog: Popen.wait(timeout=…) polls with sleeps of
            # up to 50 ms, which is most of a short segment's encode time.
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                proc.kill()

            watchdog = threading.Timer(self.timeout_s, expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                code = proc.wait()
            finally:
                watchdog.cancel()
            if expired.is_set():
                raise RenderError(self._failure(f"ffmpeg did not finish in {self.timeout_s} s"))
            if code != 0:
                raise RenderError(self._failure(f"ffmpeg exited with status {code}"))
        finally:
            if proc.poll() is None:  # belt and braces: never leave a process behind
                proc.kill()
                proc.wait()
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            self._log.close()

    def _failure(self, what: str) -> str:
        self._log.seek(0)
        tail = self._log.read().decode("utf-8", "replace")[-_LOG_TAIL:].strip()
        return f"{what} while writing {self.out.name}: {tail or '(ffmpeg printed nothing)'}"


class FrameEncoder(FramePipe):
    """A running ffmpeg that encodes the frames written to it into the MP4 `out`."""

    def __init__(
        self,
        out: Path,
        width: int,
        height: int,
        fps: int,
        encode: Encode,
        *,
        ffmpeg: str | None = None,
        threads: int = 1,
        timeout_s: float = 300,
        audio: AudioPart | None = None,
        duration_s: float | None = None,
        audio_gain_db: float = 0.0,
    ) -> None:
        command = encode_command(
            find_ffmpeg(ffmpeg),
            out,
            width,
            height,
            fps,
            encode,
            threads,
            audio=audio,
            duration_s=duration_s,
            audio_gain_db=audio_gain_db,
        )
        super().__init__(command, out, (height, width, 3), timeout_s)

    def __enter__(self) -> FrameEncoder:
        super().__enter__()
        return self


class GifEncoder(FramePipe):
    """A running ffmpeg that turns the video frames written to it into the GIF `out`.

    Frames are shrunk to `gif_width` here, with Pillow's area-averaging `reduce` when the
    factor is whole (720 → 240, 1280 → 320): a few milliseconds, where ffmpeg's lanczos
    scaling of full frames cost more than the whole palette work.
    """

    def __init__(
        self,
        out: Path,
        width: int,
        height: int,
        fps: float,
        gif_width: int,
        *,
        ffmpeg: str | None = None,
        timeout_s: float = 120,
    ) -> None:
        self.video_shape = (height, width, 3)
        self._gif_width = gif_width
        self._factor = width // gif_width if width % gif_width == 0 else 0
        size = self._shrink(Image.new("RGB", (width, height))).size
        command = gif_command(find_ffmpeg(ffmpeg), out, size[0], size[1], fps)
        super().__init__(command, out, (size[1], size[0], 3), timeout_s)

    def __enter__(self) -> GifEncoder:
        super().__enter__()
        return self

    def _shrink(self, image: Image.Image) -> Image.Image:
        if self._factor:
            return image.reduce(self._factor)
        height = round(image.height * self._gif_width / image.width)
        return image.resize((self._gif_width, height), Image.Resampling.BOX)

    def write(self, frame: np.ndarray) -> None:
        """Send one full-size video frame (shrunk to the GIF's size on the way)."""
        if frame.shape != self.video_shape:
            raise ValueError(f"frame is {frame.shape}, expected {self.video_shape}")
        super().write(np.asarray(self._shrink(Image.fromarray(frame))))
