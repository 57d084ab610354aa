"""Where a character's face is, for weighting the loss there.

Audio and face conditioners change a few latents — a mouth is two or three of a 64x64
frame's 256 — so an unweighted loss, dominated by the body and the background, barely
sees what they are for. Audio-driven portrait models weight the face and lips in their
loss for the same reason (Hallo's face and lip masks, EchoMimic's). Here the face is a
box around the nose, reaching ``reach`` eye distances each way (it holds the mouth),
from the target's keypoints: any body format naming a nose and two eyes (COCO-17,
OpenPose-18, AP-10K) has one; others have no face.
"""

from __future__ import annotations

import numpy as np

from charanim.pose.formats import get_format
from charanim.pose.keypoints import KeypointSequence

FACE_POINTS = ("nose", "left_eye", "right_eye")


def face_masks(keypoints: KeypointSequence, height: int, width: int, reach: float = 1.5) -> np.ndarray:
    """``bool [F, H, W]``: every person's face box in each frame (all False where the
    format names no face or its nose and eyes are not seen)."""
    masks = np.zeros((len(keypoints), height, width), bool)
    body_format = get_format(keypoints.header.body_format)
    if not all(name in body_format.keypoints for name in FACE_POINTS):
        return masks
    nose, left, right = (body_format.index(name) for name in FACE_POINTS)
    for frame, people in enumerate(keypoints.frames):
        for person in people:
            points = person.body
            if min(points[nose, 2], points[left, 2], points[right, 2]) <= 0:
                continue
            span = float(np.linalg.norm(points[left, :2] - points[right, :2]))
            if span < 1:
                continue
            x0, x1 = (int(np.clip(points[nose, 0] + d * reach * span, 0, width)) for d in (-1, 1))
            y0, y1 = (int(np.clip(points[nose, 1] + d * reach * span, 0, height)) for d in (-1, 1))
            masks[frame, y0:y1, x0:x1] = True
    return masks
