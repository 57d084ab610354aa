"""Pose estimators: the protocol, and getting keypoints for a video or an image.

Estimators register through ``charanim_register_pose_estimators``. They return people
per frame in the pixel coordinates of the frames they were given; the helpers here
scale them back to the source's pixels (videos are decoded downscaled) and wrap them
in a :class:`KeypointSequence`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np

from charanim.errors import ConditionerInputError
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader, Person, load_keypoints

DEFAULT_ESTIMATOR = "mediapipe"


class PoseEstimator(ABC):
    name: ClassVar[str]
    body_format: ClassVar[str] = "coco17"
    face_format: ClassVar[str | None] = None
    description: ClassVar[str] = ""
    #: longest side the estimator works at (frames are downscaled to it; coordinates are not)
    max_side: ClassVar[int] = 640

    @property
    def version(self) -> str:
        return ""

    @abstractmethod
    def estimate(self, frames: np.ndarray, video: bool = True) -> list[list[Person]]:
        """People in each of ``uint8 [F, H, W, 3]`` frames (``video=False``: unrelated images)."""

    def close(self) -> None:
        """Release native resources."""
        return None


def get_estimator(name: str = DEFAULT_ESTIMATOR) -> PoseEstimator:
    from charanim.plugins import get_plugins

    return get_plugins().pose_estimators.get(name)()


def estimate_sequence(
    estimator: PoseEstimator, frames: np.ndarray, fps: float, source_size: tuple[int, int], source: str = ""
) -> KeypointSequence:
    """Run ``estimator`` and express the result in pixels of ``source_size``."""
    from charanim.io.resize import fit_frames

    height, width = frames.shape[1:3]
    scale = min(1.0, estimator.max_side / max(width, height))
    work = (
        frames
        if scale == 1.0
        else fit_frames(frames, (round(width * scale), round(height * scale)), "stretch")[0]
    )
    people = estimator.estimate(work, video=len(frames) > 1)
    factor = np.array([source_size[0] / work.shape[2], source_size[1] / work.shape[1], 1.0], np.float32)
    scaled = [[_scale_person(p, factor) for p in frame] for frame in people]
    header = KeypointsHeader(
        width=source_size[0], height=source_size[1], fps=fps, body_format=estimator.body_format,
        face_format=estimator.face_format, estimator=estimator.name, estimator_version=estimator.version, source=source,
    )  # fmt: skip
    return KeypointSequence(header, scaled)


def _scale_person(person: Person, factor: np.ndarray) -> Person:
    return Person(
        body=person.body * factor,
        hands=None if person.hands is None else person.hands * factor,
        face=None if person.face is None else person.face * factor,
        body_format=person.body_format,
    )


def keypoints_from(source: KeypointSequence | str | os.PathLike[str] | None) -> KeypointSequence | None:
    """Keypoints given by the user: an in-memory sequence or a file path (None: none given)."""
    if source is None or isinstance(source, KeypointSequence):
        return source
    path = Path(source)
    if path.is_dir() or path.suffix.lower() == ".json":
        from charanim.pose.openpose import load_openpose

        return load_openpose(path)
    return load_keypoints(path)


def require_person(sequence: KeypointSequence, what: str, hint: str) -> None:
    if sequence.frames_with_person() == 0:
        raise ConditionerInputError(f"No {sequence.header.body_format} skeleton found in {what}; {hint}")
