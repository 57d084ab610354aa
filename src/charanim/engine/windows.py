"""Clips longer than a model's window: overlapping windows, each continuing the last.

Window k > 0 starts ``overlap`` frames before window k-1 ends. Those frames are known:
during sampling they are held at the previous window's result, noised to the current
σ (the replacement method), so the new window continues the motion and the colours
instead of starting afresh; the decoded frames are then cross-faded over the overlap.
A clip that fits in one window is one plain pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from charanim.errors import InvalidOptionError


@dataclass(frozen=True)
class Window:
    index: int
    start: int  #: first output frame covered
    frames: int  #: frames denoised (the last window may run past the clip; the excess is dropped)
    context: int  #: leading frames known from the previous window


def plan_windows(
    total: int, window: int, overlap: int, valid_frames: Callable[[int], int] = lambda n: n
) -> list[Window]:
    """Cover ``total`` frames with windows of ``window`` frames overlapping by ``overlap``.

    ``valid_frames`` rounds a frame count up to one the autoencoder accepts (4k+1 for
    Wan's VAE); both ``window`` and ``overlap`` must already be valid counts.
    """
    if total < 1:
        raise InvalidOptionError("There are no frames to animate.")
    if total <= window:
        return [Window(0, 0, valid_frames(total), 0)]
    if valid_frames(window) != window:
        raise InvalidOptionError(
            f"--window {window} is not a valid window length for this model (try {valid_frames(window)})."
        )
    if not 0 < overlap < window:
        raise InvalidOptionError(
            f"The window overlap must be between 1 and {window - 1} frames, got {overlap}."
        )
    if valid_frames(overlap) != overlap:
        raise InvalidOptionError(
            f"An overlap of {overlap} frames is not valid for this model (try {valid_frames(overlap)})."
        )
    stride = window - overlap
    windows, start = [], 0
    while True:
        windows.append(Window(len(windows), start, window, overlap if start else 0))
        if start + window >= total:
            return windows
        start += stride


def crossfade_weights(context: int) -> np.ndarray:
    """Weights of the new window over the overlap: a linear ramp strictly between 0 and 1."""
    return np.arange(1, context + 1, dtype=np.float32) / (context + 1)


#: how far one window's colour correction may scale a channel (beyond: a real change, leave it)
MAX_GAIN = 1.25


def match_overlap_colours(frames: np.ndarray, previous: np.ndarray, gain: bool = True) -> np.ndarray:
    """Correct a window's colours so that its overlap frames match what the previous window
    made there (per-channel gain and offset: means and spreads equal over the overlap; with
    ``gain=False`` the offset alone, means equal).

    The overlap is the one place two windows show the same moment, so any difference
    there is drift; anchoring each window to the corrected one before it keeps the drift
    from piling up along a long clip. ``frames`` ``uint8 [F, H, W, 3]`` (the window, overlap
    first), ``previous`` ``uint8 [C, H, W, 3]`` (the output over the overlap)."""
    context = len(previous)
    new = frames[:context].reshape(-1, 3).astype(np.float32)
    old = previous.reshape(-1, 3).astype(np.float32)
    scale = np.clip(old.std(0) / np.maximum(new.std(0), 1.0), 1 / MAX_GAIN, MAX_GAIN) if gain else np.ones(3)
    offset = old.mean(0) - scale * new.mean(0)
    return np.clip(np.round(frames.astype(np.float32) * scale + offset), 0, 255).astype(np.uint8)


def colour_drift(frames: np.ndarray, windows: list[Window]) -> float:
    """Largest distance (0-255 RGB units) between the mean colour of any window's own
    frames and that of the first window. 0 for a single window."""
    if len(windows) < 2:
        return 0.0
    means = []
    for window in windows:
        own = frames[window.start + window.context : window.start + window.frames]
        if len(own):
            means.append(own.reshape(-1, 3).astype(np.float64).mean(0))
    return float(max(np.linalg.norm(mean - means[0]) for mean in means))
