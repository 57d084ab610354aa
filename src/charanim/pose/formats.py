"""Keypoint layouts: names and bones of each body format charanim reads or writes.

``coco17`` is the COCO / DWPose body order; ``openpose18`` adds the neck (OpenPose
BODY_18, the order pose maps are drawn in); ``ap10k`` is the AP-10K animal layout.
``bird`` and ``blob6`` are the layouts of charanim's procedural non-human
characters. Names say which side is the character's own left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BodyFormat:
    name: str
    keypoints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    #: keypoints whose mean is the body's root (for normalisation and retargeting)
    root: tuple[int, ...]

    def index(self, name: str) -> int:
        return self.keypoints.index(name)

    def __len__(self) -> int:
        return len(self.keypoints)


def _bones(names: tuple[str, ...], pairs: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


_COCO = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
COCO17 = BodyFormat(
    "coco17",
    _COCO,
    _bones(_COCO, [
        ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"), ("left_hip", "right_hip"), ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
        ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ]),
    root=(11, 12),
)  # fmt: skip

_OPENPOSE = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
#: bone order of OpenPose's renderer; its colours are indexed in this order
OPENPOSE18 = BodyFormat(
    "openpose18",
    _OPENPOSE,
    _bones(_OPENPOSE, [
        ("neck", "right_shoulder"), ("neck", "left_shoulder"), ("right_shoulder", "right_elbow"),
        ("right_elbow", "right_wrist"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("neck", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
        ("neck", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("neck", "nose"),
        ("nose", "right_eye"), ("right_eye", "right_ear"), ("nose", "left_eye"), ("left_eye", "left_ear"),
    ]),
    root=(8, 11),
)  # fmt: skip

_AP10K = (
    "left_eye", "right_eye", "nose", "neck", "root_of_tail", "left_shoulder", "left_elbow",
    "left_front_paw", "right_shoulder", "right_elbow", "right_front_paw", "left_hip", "left_knee",
    "left_back_paw", "right_hip", "right_knee", "right_back_paw",
)  # fmt: skip
AP10K = BodyFormat(
    "ap10k",
    _AP10K,
    _bones(_AP10K, [
        ("left_eye", "right_eye"), ("left_eye", "nose"), ("right_eye", "nose"), ("nose", "neck"),
        ("neck", "root_of_tail"), ("neck", "left_shoulder"), ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_front_paw"), ("neck", "right_shoulder"), ("right_shoulder", "right_elbow"),
        ("right_elbow", "right_front_paw"), ("root_of_tail", "left_hip"), ("left_hip", "left_knee"),
        ("left_knee", "left_back_paw"), ("root_of_tail", "right_hip"), ("right_hip", "right_knee"),
        ("right_knee", "right_back_paw"),
    ]),
    root=(3, 4),
)  # fmt: skip

_BIRD = (
    "beak", "eye", "head", "neck", "body", "tail", "left_wing_root", "left_wing_elbow", "left_wing_tip",
    "right_wing_root", "right_wing_elbow", "right_wing_tip", "left_knee", "left_foot", "right_knee", "right_foot",
)  # fmt: skip
BIRD = BodyFormat(
    "bird",
    _BIRD,
    _bones(_BIRD, [
        ("beak", "head"), ("eye", "head"), ("head", "neck"), ("neck", "body"), ("body", "tail"),
        ("neck", "left_wing_root"), ("left_wing_root", "left_wing_elbow"), ("left_wing_elbow", "left_wing_tip"),
        ("neck", "right_wing_root"), ("right_wing_root", "right_wing_elbow"), ("right_wing_elbow", "right_wing_tip"),
        ("body", "left_knee"), ("left_knee", "left_foot"), ("body", "right_knee"), ("right_knee", "right_foot"),
    ]),
    root=(4,),
)  # fmt: skip

_BLOB = ("center", "left_eye", "right_eye", "mouth") + tuple(
    f"{limb}_{part}"
    for limb in ("limb1", "limb2", "limb3", "limb4", "limb5", "limb6")
    for part in ("joint", "tip")
)
BLOB6 = BodyFormat(
    "blob6",
    _BLOB,
    tuple((0, 4 + 2 * i) for i in range(6))
    + tuple((4 + 2 * i, 5 + 2 * i) for i in range(6))
    + ((0, 1), (0, 2), (0, 3)),
    root=(0,),
)

FORMATS: dict[str, BodyFormat] = {f.name: f for f in (COCO17, OPENPOSE18, AP10K, BIRD, BLOB6)}

#: OpenPose-18 index -> COCO-17 index (neck, index 1, is computed)
_OPENPOSE_FROM_COCO = [0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]


def coco_to_openpose(points: np.ndarray) -> np.ndarray:
    """``[..., 17, 3]`` COCO-17 -> ``[..., 18, 3]`` OpenPose-18; the neck is the mid-shoulder
    point, present only when both shoulders are."""
    out = points[..., [max(i, 0) for i in _OPENPOSE_FROM_COCO], :].copy()
    left, right = points[..., 5, :], points[..., 6, :]
    confidence = np.minimum(left[..., 2], right[..., 2])
    neck = (left[..., :2] + right[..., :2]) / 2
    out[..., 1, :2] = np.where(confidence[..., None] > 0, neck, 0.0)
    out[..., 1, 2] = confidence
    return out


def openpose_to_coco(points: np.ndarray) -> np.ndarray:
    """``[..., 18, 3]`` OpenPose-18 -> ``[..., 17, 3]`` COCO-17 (the neck is dropped)."""
    order = [_OPENPOSE_FROM_COCO.index(i) for i in range(17)]
    return points[..., order, :].copy()


def get_format(name: str) -> BodyFormat:
    from charanim.errors import UnknownNameError

    try:
        return FORMATS[name]
    except KeyError:
        raise UnknownNameError("keypoint format", name, list(FORMATS)) from None
