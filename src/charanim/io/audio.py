"""Audio in and out: a WAV file, or any file with an audio track (MP4, MOV, WebM, MP3...).

Decoding goes through the ffmpeg binary that ``imageio-ffmpeg`` ships (no extra
dependency), resampled to mono at the rate asked for. Writing is 16-bit PCM WAV with
the standard library, and an audio track can be muxed into a video (``add_audio``).

Length policy (what conditioners do with it): audio is aligned to the video from time
0; audio shorter than the video is padded with silence, longer audio is cut at the
video's end (see :func:`fit_length`).
"""

from __future__ import annotations

import os
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charanim.errors import ConditionerInputError, InputFileError
from charanim.io.atomic import atomic_output

#: peak amplitude below which a track counts as silent (-60 dBFS)
SILENCE = 1e-3


@dataclass
class Audio:
    samples: np.ndarray  #: float32 [N] mono in [-1, 1]
    sample_rate: int
    path: Path | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def silent(self) -> bool:
        return len(self.samples) == 0 or float(np.abs(self.samples).max()) < SILENCE


def read_audio(path: str | os.PathLike[str], sample_rate: int = 16000) -> Audio:
    """The audio of ``path`` as mono float32 at ``sample_rate``; a clear error when the file
    is missing or has no audio track."""
    import imageio_ffmpeg

    source = Path(path)
    if not source.is_file():
        raise InputFileError(f"Audio file '{source}' does not exist.")
    if source.stat().st_size == 0:
        raise InputFileError(f"Audio file '{source}' is empty (0 bytes).")
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(source),
        "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, check=False)
    message = done.stderr.decode(errors="replace").strip()
    no_stream = "does not contain any stream" in message or "matches no streams" in message
    if no_stream or (not done.returncode and not done.stdout):
        raise ConditionerInputError(f"'{source}' has no audio track.")
    if done.returncode:
        last = message.splitlines()[-1] if message else f"ffmpeg exit code {done.returncode}"
        raise InputFileError(f"Could not read the audio of '{source}': {last}")
    return Audio(np.frombuffer(done.stdout, np.float32).copy(), sample_rate, source)


def has_audio(path: str | os.PathLike[str]) -> bool:
    try:
        return len(read_audio(path, 8000).samples) > 0
    except (ConditionerInputError, InputFileError):
        return False


def fit_length(audio: Audio, seconds: float) -> np.ndarray:
    """The samples of the first ``seconds``: padded with silence or cut (the length policy)."""
    wanted = int(round(seconds * audio.sample_rate))
    samples = audio.samples[:wanted]
    return np.pad(samples, (0, wanted - len(samples)))


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> Path:
    """Mono 16-bit PCM, written atomically."""
    pcm = (np.clip(samples, -1, 1) * 32767).round().astype("<i2")
    target = Path(path)
    with atomic_output(target) as tmp, wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return target


def add_audio(
    video: str | os.PathLike[str], audio: str | os.PathLike[str] | Audio, output: str | os.PathLike[str]
) -> Path:
    """``video`` with ``audio`` as its sound track, written atomically to ``output``."""
    target = Path(output)
    with atomic_output(target) as tmp:
        mux_audio(video, audio, tmp)
    return target


def mux_audio(video: str | os.PathLike[str], audio: str | os.PathLike[str] | Audio, output: Path) -> None:
    """Write ``video``'s picture with the first audio stream of ``audio`` (a file with one, or
    an in-memory :class:`Audio`) to ``output``: the picture copied, the sound encoded for
    the container (Opus in WebM, AAC elsewhere) and cut to the picture's length."""
    import imageio_ffmpeg

    if isinstance(audio, Audio):  # ffmpeg reads files: a WAV beside the output, removed after
        wav = output.with_name(output.name + ".wav")
        try:
            write_wav(wav, audio.samples, audio.sample_rate)
            mux_audio(video, wav, output)
        finally:
            wav.unlink(missing_ok=True)
        return
    container, codec = CONTAINERS.get(output.suffix.lower(), ("mp4", "aac"))
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-y", "-i", str(video), "-i", str(audio),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", codec, "-shortest",
        "-f", container, str(output),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode:
        message = done.stderr.decode(errors="replace").strip()
        last = message.splitlines()[-1] if message else f"ffmpeg exit code {done.returncode}"
        raise InputFileError(f"Could not add the sound of '{audio}' to the video: {last}")


#: (ffmpeg muxer, audio codec) of each video container that carries sound
CONTAINERS = {
    ".mp4": ("mp4", "aac"),
    ".mov": ("mov", "aac"),
    ".mkv": ("matroska", "aac"),
    ".webm": ("webm", "libopus"),
}
