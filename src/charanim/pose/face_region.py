"""Where a character's face is: a box around the nose, reaching ``reach`` eye distances
each way (it holds the mouth), from its keypoints. Any body format naming a nose and two
eyes (COCO-17, OpenPose-18, AP-10K) has one; others have no face.

Audio and face conditioners change a few pixels of a frame — a mouth is two or three of
a 64x64 frame's 256 latents — so training weights their loss there
(``training.face_weight``; Hallo's face and lip masks, EchoMimic's, do the same), and a
model's refiner, trained on runs without them, leaves the box as the model drew it
(:mod:`charanim.engine.refine`).
"""

from __future__ import annotations

import numpy as np

from charanim.pose.formats import get_format
from charanim.pose.keypoints import KeypointSequence

FACE_POINTS = ("nose", "left_eye", "right_eye")


def face_boxes(
    points: np.ndarray, body_format: str, height: int, width: int, reach: float = 1.5
) -> np.ndarray:
    """``bool [F, H, W]``: the face box of one person's keypoints ``[F, K, 3]`` (x, y,
    confidence in output pixels) in each frame; empty where the nose or an eye is not
    seen, or the format names no face."""
    masks = np.zeros((len(points), height, width), bool)
    body = get_format(body_format)
    if not all(name in body.keypoints for name in FACE_POINTS):
        return masks
    nose, left, right = (body.index(name) for name in FACE_POINTS)
    for frame, frame_points in enumerate(np.asarray(points, np.float64)):
        if min(frame_points[nose, 2], frame_points[left, 2], frame_points[right, 2]) <= 0:
            continue
        span = float(np.linalg.norm(frame_points[left, :2] - frame_points[right, :2]))
        if span < 1:
            continue
        x0, x1 = (int(np.clip(frame_points[nose, 0] + d * reach * span, 0, width)) for d in (-1, 1))
        y0, y1 = (int(np.clip(frame_points[nose, 1] + d * reach * span, 0, height)) for d in (-1, 1))
        masks[frame, y0:y1, x0:x1] = True
    return masks


def face_masks(keypoints: KeypointSequence, height: int, width: int, reach: float = 1.5) -> np.ndarray:
    """``bool [F, H, W]``: every person's face box in each frame of a keypoint sequence."""
    masks = np.zeros((len(keypoints), height, width), bool)
    body_format = keypoints.header.body_format
    for frame, people in enumerate(keypoints.frames):
        for person in people:
            masks[frame] |= face_boxes(person.body[None], body_format, height, width, reach)[0]
    return masks
