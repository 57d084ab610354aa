"""``extract-pose``: keypoints of a video or an image, optionally smoothed and rendered."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from charanim.errors import ConditionerInputError, UnsupportedFormatError
from charanim.io.image import read_image
from charanim.io.video import IMAGE_SUFFIXES, read_video, write_video
from charanim.pose.estimate import estimate_sequence, get_estimator
from charanim.pose.keypoints import KeypointSequence
from charanim.pose.render import render_pose
from charanim.pose.smooth import interpolate_gaps, jitter, one_euro

STILL_SUFFIXES = IMAGE_SUFFIXES - {".gif"}


@dataclass
class ExtractOptions:
    estimator: str = "mediapipe"
    fps: float | None = None
    max_frames: int | None = None
    smooth: bool = False
    interpolate: bool = False
    allow_empty: bool = False
    hands: bool = True
    face: bool = True


def extract_pose(source: Path, options: ExtractOptions) -> tuple[KeypointSequence, np.ndarray, dict]:
    """Returns the keypoints (source pixels), the frames they were found on, and a summary."""
    from charanim.plugins import get_plugins

    started = time.perf_counter()
    # the input first: a missing or broken file is the error to report, before the estimator's
    if source.suffix.lower() in STILL_SUFFIXES:
        image = read_image(source)
        frames, fps, size = image.rgb[None], 1.0, image.size
    else:
        video = read_video(source, fps=options.fps, max_frames=options.max_frames, max_side=1280)
        frames, fps, size = video.frames, video.fps, video.source_size
    estimator_class = get_plugins().pose_estimators.get(options.estimator)
    estimator = (
        estimator_class(hands=options.hands, face=options.face)
        if options.estimator == "mediapipe"
        else get_estimator(options.estimator)
    )
    sequence = estimate_sequence(estimator, frames, fps, size, str(source))
    found = sequence.frames_with_person()
    if found == 0 and not options.allow_empty:
        raise ConditionerInputError(
            f"No person found in any frame of '{source}' (use --allow-empty to write an empty file)."
        )
    body = sequence.body_array()
    summary = {"jitter_raw": round(jitter(body), 3)}
    if options.interpolate:
        body = interpolate_gaps(body)
    if options.smooth:
        body = one_euro(body, fps)
    if options.interpolate or options.smooth:
        sequence = _replace_bodies(sequence, body)
    present = body[..., 2] > 0
    summary.update({
        "frames": len(sequence), "frames_with_person": sequence.frames_with_person(), "fps": fps,
        "width": size[0], "height": size[1], "estimator": estimator.name,
        "mean_confidence": round(float(body[..., 2][present].mean()) if present.any() else 0.0, 4),
        "jitter": round(jitter(body), 3), "seconds": round(time.perf_counter() - started, 3),
    })  # fmt: skip
    return sequence, frames, summary


def _replace_bodies(sequence: KeypointSequence, body: np.ndarray) -> KeypointSequence:
    from charanim.pose.keypoints import Person

    frames = []
    for people, points in zip(sequence.frames, body, strict=True):
        if people:
            first = people[0]
            frames.append([Person(points, first.hands, first.face, first.body_format)] + people[1:])
        elif (points[:, 2] > 0).any():  # a gap filled by interpolation
            frames.append([Person(points)])
        else:
            frames.append([])
    return KeypointSequence(sequence.header, frames)


def render_skeleton_video(sequence: KeypointSequence, frames: np.ndarray, path: Path, overlay: bool) -> Path:
    """The skeletons (OpenPose colours) at the frames' size, over the frames if ``overlay``."""
    if Path(path).suffix.lower() not in (".mp4", ".webm", ".gif", ".mov", ".mkv"):
        raise UnsupportedFormatError(f"--render must be a video file (.mp4, .webm, .gif...), not '{path}'.")
    height, width = frames.shape[1:3]
    factor = np.array([width / sequence.header.width, height / sequence.header.height, 1.0], np.float32)
    rendered = []
    for index, people in enumerate(sequence.frames):
        canvas = (frames[index] * 0.6).astype(np.uint8) if overlay else None
        image = canvas if canvas is not None else np.zeros((height, width, 3), np.uint8)
        for person in people:
            hands = None if person.hands is None else person.hands * factor
            face = None if person.face is None else person.face * factor
            image = render_pose(
                person.body * factor, sequence.header.body_format, (width, height), hands, face, canvas=image
            )
        rendered.append(image)
    return write_video(path, np.stack(rendered), max(sequence.header.fps, 1.0))
