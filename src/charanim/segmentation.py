"""Foreground masks of a driving clip, so a conditioner can drop its background.

Two ways, chosen by ``method``:

``person``
    MediaPipe's selfie segmentation (its model ships inside the ``mediapipe`` wheel:
    ``pip install 'charanim[pose]'``). People only.
``motion``
    difference from the clip's per-pixel temporal median: what is not the static
    background is the character. Any character (animals, cartoons, sprites), but the
    camera must be still; a moving camera is detected and refused.
``auto``
    ``person`` when MediaPipe is installed and finds a person in most frames, else
    ``motion``.

The median method is written here (a few numpy lines); no library we depend on has it.
"""

from __future__ import annotations

import numpy as np

from charanim.errors import ConditionerInputError
from charanim.quiet import native_stderr_silenced, quiet_mediapipe_logs

METHODS = ("auto", "person", "motion")
#: colour distance (0..255 per channel, Euclidean) from the median background that counts as foreground
MOTION_THRESHOLD = 28.0
#: a "foreground" larger than this share of the frame means the camera moved
MAX_FOREGROUND = 0.6


def foreground_masks(frames: np.ndarray, method: str = "auto") -> tuple[np.ndarray, str]:
    """``uint8 [F, H, W, 3]`` -> (``bool [F, H, W]``, the method used)."""
    if method not in METHODS:
        raise ConditionerInputError(f"Unknown background method '{method}'; use one of {', '.join(METHODS)}.")
    if method in ("auto", "person"):
        try:
            masks = person_masks(frames)
        except ImportError:
            if method == "person":
                raise ConditionerInputError(
                    "Person segmentation needs mediapipe: pip install 'charanim[pose]'."
                ) from None
            masks = None
        if masks is not None and (method == "person" or (masks.reshape(len(masks), -1).any(1)).mean() >= 0.5):
            if not masks.any():
                raise ConditionerInputError("No person found in the driving video to keep.")
            return masks, "person"
    return motion_masks(frames), "motion"


def person_masks(frames: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    quiet_mediapipe_logs()
    import mediapipe as mp

    with native_stderr_silenced():
        segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        try:
            out = np.zeros(frames.shape[:3], bool)
            for i, frame in enumerate(frames):
                result = segmenter.process(np.ascontiguousarray(frame))
                if result.segmentation_mask is not None:
                    out[i] = result.segmentation_mask > threshold
            return out
        finally:
            segmenter.close()


def motion_masks(frames: np.ndarray, threshold: float = MOTION_THRESHOLD, grow: int = 1) -> np.ndarray:
    """Pixels far from the temporal median, grown by ``grow`` pixels (outlines, motion blur)."""
    if len(frames) < 3:
        raise ConditionerInputError("Removing the background by motion needs at least 3 driving frames.")
    pixels = frames.astype(np.float32)
    background = np.median(pixels, axis=0)
    masks = np.linalg.norm(pixels - background, axis=-1) > threshold
    if masks.mean() > MAX_FOREGROUND:
        raise ConditionerInputError(
            "The driving video's background moves (camera motion?): its background cannot be removed "
            "by motion; use --driving-background person for people, or keep it."
        )
    for _ in range(grow):
        padded = np.pad(masks, ((0, 0), (1, 1), (1, 1)))
        masks = (
            padded[:, 1:-1, 1:-1] | padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
        )  # fmt: skip
    return masks
