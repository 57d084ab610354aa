"""Reading and writing videos.

Reading goes through decord (fast seeking, resize at decode time); a folder of
numbered images and animated GIF/WebP files are read with PIL. Writing pipes raw
frames to the ffmpeg binary that ships in imageio-ffmpeg, into a temporary file
renamed on success, so an interrupted write never leaves a half video behind.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from charanim.errors import InputFileError, InvalidOptionError, UnsupportedFormatError
from charanim.io.atomic import atomic_output
from charanim.io.audio import Audio, mux_audio
from charanim.quiet import native_stderr_silenced

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
PIL_ANIMATION_SUFFIXES = {".gif", ".webp", ".apng"}
DEFAULT_SEQUENCE_FPS = 25.0
WRITERS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9", ".gif": "gif"}


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps


@dataclass
class Video:
    """Decoded frames, ``uint8 [F, H, W, 3]``, sampled at ``fps``.

    ``source_indices[i]`` is the index in the source of frame ``i``; ``source_size``
    is the source's (width, height) before any downscaling, so keypoints found on
    the frames can be reported in source pixels.
    """

    frames: np.ndarray
    fps: float
    source_fps: float
    source_size: tuple[int, int]
    source_indices: np.ndarray
    path: Path | None = None
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the decoded frames."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def head(self, frames: int) -> Video:
        """The first ``frames`` frames."""
        return dataclasses.replace(
            self, frames=self.frames[:frames], source_indices=self.source_indices[:frames]
        )


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame count, frame rate and size, without decoding the frames."""
    source = _check_input(path)
    if source.is_dir():
        files = _sequence_files(source)
        with Image.open(files[0]) as first:
            return VideoInfo(len(files), DEFAULT_SEQUENCE_FPS, *first.size)
    reader, size = _open_decord(source)
    if reader is None:
        frames, fps = _read_pil_animation(source)
        return VideoInfo(len(frames), fps, frames[0].shape[1], frames[0].shape[0])
    return VideoInfo(len(reader), _decord_fps(reader), *size)


def read_video(
    path: str | os.PathLike[str],
    fps: float | None = None,
    max_frames: int | None = None,
    max_side: int | None = None,
    sequence_fps: float = DEFAULT_SEQUENCE_FPS,
) -> Video:
    """Decode a video, sampled at ``fps`` (default: the source's), at most ``max_frames``.

    Frames whose long side exceeds ``max_side`` are downscaled at decode time with the
    aspect ratio kept. ``path`` may also be a folder of images (read in natural order at
    ``sequence_fps``) or an animated GIF/WebP.
    """
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise InvalidOptionError(f"fps must be a positive number, got {fps}.")
    if max_frames is not None and max_frames < 1:
        raise InvalidOptionError(f"max_frames must be at least 1, got {max_frames}.")
    source = _check_input(path)
    if source.is_dir():
        return _read_sequence(source, fps, max_frames, max_side, sequence_fps)
    reader, size = _open_decord(source, max_side=max_side)
    if reader is None:
        frames, source_fps = _read_pil_animation(source)
        indices = sample_indices(len(frames), source_fps, fps, max_frames)
        stack = np.stack([frames[i] for i in indices])
        size = (frames[0].shape[1], frames[0].shape[0])
        stack = _downscale(stack, max_side)
        return Video(stack, fps or source_fps, source_fps, size, indices, source)
    source_fps = _decord_fps(reader)
    indices = sample_indices(len(reader), source_fps, fps, max_frames)
    try:
        frames = _decode_frames(reader, indices)
    except Exception as exc:  # decord raises its own DECORDError for broken streams
        raise InputFileError(f"Video '{source}' could not be decoded ({_first_line(exc)}).") from None
    return Video(np.ascontiguousarray(frames), fps or source_fps, source_fps, size, indices, source)


def sample_indices(count: int, source_fps: float, fps: float | None, max_frames: int | None) -> np.ndarray:
    """Indices of the source frames shown at times 0, 1/fps, 2/fps, ... (nearest earlier frame).

    Asking for more fps than the source has repeats frames; fewer drops them evenly.
    """
    if count < 1:
        raise InputFileError("The video has no frames.")
    if fps is None or abs(fps - source_fps) < 1e-6:
        indices = np.arange(count)
    else:
        duration = count / source_fps
        times = np.arange(0.0, duration - 1e-9, 1.0 / fps)
        indices = np.minimum(np.floor(times * source_fps + 1e-6).astype(np.int64), count - 1)
    if max_frames is not None:
        indices = indices[:max_frames]
    return indices.astype(np.int64)


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float,
    crf: int = 17,
    audio: str | os.PathLike[str] | Audio | None = None,
) -> Path:
    """Write ``uint8 [F, H, W, 3]`` frames to ``path`` atomically; the suffix picks the format.

    ``.mp4``/``.mov``/``.mkv`` are H.264 in yuv420p (odd sizes are padded by one pixel,
    which yuv420p requires); ``.webm`` is VP9; ``.gif`` is a palette GIF. ``fps`` is
    stored exactly (as a rational), so it reads back as given. ``audio`` (a file with a
    sound track, or an in-memory ``Audio``) becomes the video's sound, from its start and
    cut to the video's length; a GIF has none, so it is refused there.
    """
    target = Path(path)
    codec = WRITERS.get(target.suffix.lower())
    if codec is None:
        known = ", ".join(sorted(WRITERS))
        raise UnsupportedFormatError(
            f"Cannot write '{target.suffix or target.name}' videos; use one of {known}."
        )
    if audio is not None and codec == "gif":
        raise UnsupportedFormatError(
            f"'{target.name}': a GIF has no sound track; write .mp4, .webm, .mov or .mkv."
        )
    frames = _validate_frames(frames)
    if not (fps > 0 and math.isfinite(fps)):
        raise InvalidOptionError(f"fps must be a positive number, got {fps}.")
    with atomic_output(target) as tmp:
        if codec == "gif":
            _write_gif(tmp, frames, fps)
        elif audio is None:
            _write_ffmpeg(tmp, _pad_to_even(frames) if codec == "libx264" else frames, fps, codec, crf)
        else:  # the picture first, then picture and sound into the output
            picture = tmp.with_name(f"{tmp.stem}.picture{tmp.suffix}")
            try:
                write_video(picture, frames, fps, crf)
                mux_audio(picture, audio, tmp)
            finally:
                picture.unlink(missing_ok=True)
    return target


# ----------------------------------------------------------------------------- reading helpers


def _check_input(path: str | os.PathLike[str]) -> Path:
    source = Path(path)
    if not source.exists():
        raise InputFileError(f"Video '{source}' does not exist.")
    if source.is_file() and source.stat().st_size == 0:
        raise InputFileError(f"Video '{source}' is empty (0 bytes).")
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES - PIL_ANIMATION_SUFFIXES:
        raise UnsupportedFormatError(
            f"'{source}' is a still image, not a video; pass a video, an animated GIF or a folder of frames."
        )
    return source


def _open_decord(source: Path, max_side: int | None = None):
    """(VideoReader, source (width, height)), or (None, None) for formats decord does not handle."""
    import decord

    if source.suffix.lower() in PIL_ANIMATION_SUFFIXES:
        return None, None
    decord.logging.set_level(decord.logging.QUIET)
    try:
        with native_stderr_silenced():
            return _open_decord_reader(decord, source, max_side)
    except InputFileError:
        raise
    except Exception as exc:
        raise _decord_error(source, exc) from None


def _open_decord_reader(decord, source: Path, max_side: int | None):
    reader = decord.VideoReader(str(source), ctx=decord.cpu(0), num_threads=1)
    if len(reader) == 0:
        raise InputFileError(f"Video '{source}' has no frames.")
    height, width = reader[0].shape[:2]
    if max_side is not None and max(width, height) > max_side:
        scale = max_side / max(width, height)
        new_w, new_h = _even(width * scale), _even(height * scale)
        reader = decord.VideoReader(str(source), ctx=decord.cpu(0), width=new_w, height=new_h, num_threads=1)
    return reader, (width, height)


def _decode_frames(reader, indices: np.ndarray) -> np.ndarray:
    """Batch decode, working around a decord bug on some widths (16, 24, 48, 72...).

    There decord returns rows padded to an aligned stride and labels the padding as
    extra channels (e.g. [H, 72, 4]); batch copies then fail outright. Frame by frame,
    the first ``3 * width`` bytes of each row are the pixels.
    """
    try:
        frames = reader.get_batch(indices.tolist()).asnumpy()
        if frames.shape[-1] == 3:
            return frames
    except Exception as exc:
        if "size must exactly match" not in str(exc):
            raise
    return np.stack([_unpad_rows(reader[int(i)].asnumpy()) for i in indices])


def _unpad_rows(frame: np.ndarray) -> np.ndarray:
    if frame.shape[-1] == 3:
        return frame
    height, width = frame.shape[:2]
    return np.ascontiguousarray(frame).reshape(height, -1)[:, : width * 3].reshape(height, width, 3)


def _decord_error(source: Path, exc: Exception) -> Exception:
    text = str(exc)
    if "Invalid data" in text or "cannot find video stream" in text or "ERROR opening" in text:
        return UnsupportedFormatError(f"'{source}' is not a readable video (no video stream found).")
    return InputFileError(f"Video '{source}' is corrupt or not a video ({_decoder_reason(exc)}).")


#: what decord's (ffmpeg's) low-level messages mean, for the one line a user reads
_DECODER_REASONS = (
    ("av_read_frame failed", "its stream ends early or is damaged"),
    ("avfilter", "its header is damaged"),
    ("broken metadata", "its metadata is broken"),
)


def _decoder_reason(exc: BaseException) -> str:
    text = _first_line(exc)
    for needle, reason in _DECODER_REASONS:
        if needle in text:
            return reason
    # decord prefixes its log lines with "[hh:mm:ss] /its/source/file.cc:123: "
    return re.sub(r"^\[[\d:]+\]\s*\S+:\d+:\s*", "", text)


def _decord_fps(reader) -> float:
    fps = float(reader.get_avg_fps())
    return fps if fps > 0 and math.isfinite(fps) else DEFAULT_SEQUENCE_FPS


def _read_sequence(source: Path, fps, max_frames, max_side, sequence_fps) -> Video:
    files = _sequence_files(source)
    indices = sample_indices(len(files), sequence_fps, fps, max_frames)
    frames = []
    for i in indices:
        try:
            with Image.open(files[i]) as image:
                frames.append(np.asarray(image.convert("RGB")))
        except (UnidentifiedImageError, OSError) as exc:
            raise InputFileError(f"Frame '{files[i]}' is unreadable ({_first_line(exc)}).") from None
    if len({f.shape for f in frames}) > 1:
        raise InputFileError(f"The frames in '{source}' do not all have the same size.")
    stack = np.stack(frames)
    size = (stack.shape[2], stack.shape[1])
    return Video(_downscale(stack, max_side), fps or sequence_fps, sequence_fps, size, indices, source)


def _sequence_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    if not files:
        raise InputFileError(f"Folder '{folder}' holds no image frames.")
    return sorted(files, key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])


def _read_pil_animation(source: Path) -> tuple[list[np.ndarray], float]:
    try:
        with Image.open(source) as image:
            frames, durations = [], []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frames.append(np.asarray(image.convert("RGB")))
                durations.append(image.info.get("duration", 0) or 0)
    except UnidentifiedImageError:
        raise UnsupportedFormatError(f"'{source}' is not a readable animation.") from None
    except OSError as exc:
        raise InputFileError(f"Animation '{source}' is corrupt ({_first_line(exc)}).") from None
    mean_ms = float(np.mean(durations)) if durations else 0.0
    return frames, (1000.0 / mean_ms if mean_ms > 0 else DEFAULT_SEQUENCE_FPS)


def _downscale(frames: np.ndarray, max_side: int | None) -> np.ndarray:
    height, width = frames.shape[1:3]
    if max_side is None or max(width, height) <= max_side:
        return frames
    scale = max_side / max(width, height)
    size = (_even(width * scale), _even(height * scale))
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)) for f in frames])


# ----------------------------------------------------------------------------- writing helpers


def _validate_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames of shape [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise InvalidOptionError("There are no frames to write.")
    return frames


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(frames)


def _write_ffmpeg(target: Path, frames: np.ndarray, fps: float, codec: str, crf: int) -> None:
    import imageio_ffmpeg

    height, width = frames.shape[1:3]
    options = ["-crf", str(crf)]
    if codec == "libx264":
        options += ["-preset", "medium", "-movflags", "+faststart"]
    else:
        options += ["-b:v", "0"]
    writer = imageio_ffmpeg.write_frames(
        str(target),
        (width, height),
        fps=_fps_rational(fps),
        codec=codec,
        pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        output_params=options,
        ffmpeg_log_level="error",
    )
    writer.send(None)
    try:
        for frame in frames:
            writer.send(frame)
    finally:
        writer.close()


def _fps_rational(fps: float):
    """ffmpeg takes '30000/1001' exactly; a float like 29.97 would drift."""
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


def _write_gif(target: Path, frames: np.ndarray, fps: float) -> None:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        target, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
    )


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(exc).__name__
