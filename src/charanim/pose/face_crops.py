"""Square crops of the driving face, one per frame, from body keypoints.

Wan-Animate's face encoder reads the driving face as a video of crops (512² for the
released checkpoints). Its own preprocessing crops around dense face landmarks; we
crop around the head keypoints every body format has (nose, eyes, ears) with the
shoulders as a size floor when the head is seen from the side, so the crops come from
the same ``extract-pose`` keypoints as the pose maps. The box is smoothed over time so
the crop does not shake, and frames where the head is hidden take the box of the
nearest frames where it is seen.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from charanim.errors import ConditionerInputError
from charanim.pose.formats import get_format

HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
SHOULDERS = ("left_shoulder", "right_shoulder")
#: crop side over the spread of the head points (ear to ear is about the face's width)
HEAD_SCALE = 1.8
#: crop side over the shoulder width (a face is about half as wide as the shoulders)
SHOULDER_SCALE = 0.6
#: the head points sit above the face's centre (no chin point): move the box down
DOWN_SHIFT = 0.08


def face_boxes(points: np.ndarray, body_format: str, smooth: int = 5) -> np.ndarray:
    """``[F, K, 3]`` keypoints -> ``[F, 3]`` boxes ``(centre x, centre y, side)`` in the
    keypoints' pixels. Raises when no frame shows a head."""
    layout = get_format(body_format)
    head = [layout.index(name) for name in HEAD if name in layout.keypoints]
    shoulders = [layout.index(name) for name in SHOULDERS if name in layout.keypoints]
    if len(head) < 2:
        raise ConditionerInputError(f"Body format {body_format} has no head keypoints to crop a face from.")
    boxes = np.full((len(points), 3), np.nan)
    for frame, people in enumerate(points):
        seen = people[head][people[head, 2] > 0, :2]
        if len(seen) < 2:
            continue
        spread = float(np.max(np.linalg.norm(seen[:, None] - seen[None], axis=-1)))
        side = HEAD_SCALE * spread
        if len(shoulders) == 2 and (people[shoulders, 2] > 0).all():
            width = float(np.linalg.norm(people[shoulders[0], :2] - people[shoulders[1], :2]))
            side = max(side, SHOULDER_SCALE * width)
        centre = seen.mean(0)
        boxes[frame] = (centre[0], centre[1] + DOWN_SHIFT * side, side)
    known = ~np.isnan(boxes[:, 0])
    if not known.any():
        raise ConditionerInputError(
            "No face found in the driving video (no frame shows two head keypoints); "
            "Wan-Animate needs the driving face."
        )
    frames = np.arange(len(boxes))
    for axis in range(3):  # hidden frames take the nearest seen boxes (held at the ends)
        boxes[~known, axis] = np.interp(frames[~known], frames[known], boxes[known, axis])
    if smooth > 1 and len(boxes) > 1:
        kernel = np.ones(smooth) / smooth
        padded = np.pad(boxes, ((smooth // 2, smooth - 1 - smooth // 2), (0, 0)), mode="edge")
        boxes = np.stack([np.convolve(padded[:, axis], kernel, "valid") for axis in range(3)], 1)
    return boxes


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Cut ``boxes`` (from :func:`face_boxes`, in these frames' pixels) out of ``uint8
    [F, H, W, 3]`` frames and resize them to ``size``²; outside the frame is black."""
    out = np.zeros((len(frames), size, size, 3), np.uint8)
    for i, (frame, (cx, cy, side)) in enumerate(zip(frames, boxes, strict=True)):
        half = max(side, 2.0) / 2
        box = (cx - half, cy - half, cx + half, cy + half)
        # PIL fills what lies outside the image with black, as zero padding would
        crop = Image.fromarray(frame).transform(
            (size, size), Image.Transform.EXTENT, box, resample=Image.Resampling.BILINEAR
        )
        out[i] = np.asarray(crop)
    return out
