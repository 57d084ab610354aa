"""Temporal smoothing of keypoints: the One-Euro filter (Casiez et al., CHI 2012).

A low-pass filter whose cut-off rises with speed: still joints stop jittering, fast
ones do not lag. Written here (a few lines; the PyPI ports are unmaintained).
Missing points are skipped and restart the filter; ``jitter`` measures the result.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: float, rate: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * rate)


def one_euro(
    points: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0
) -> np.ndarray:
    """Smooth ``[F, K, 3]`` keypoints over time (x, y only; confidences kept).

    ``min_cutoff`` (Hz) sets the smoothing of slow motion, ``beta`` how fast the cut-off
    grows with speed (pixels per second).
    """
    out = points.copy()
    previous = derivative = None
    for frame in range(len(points)):
        present = points[frame, :, 2] > 0
        current = points[frame, :, :2].astype(np.float64)
        if previous is None:
            previous, derivative, known = current.copy(), np.zeros_like(current), present.copy()
            continue
        speed = (current - previous) * fps
        a_d = _alpha(d_cutoff, fps)
        derivative = np.where(known[:, None], a_d * speed + (1 - a_d) * derivative, 0.0)
        cutoff = min_cutoff + beta * np.linalg.norm(derivative, axis=1)
        tau = 1.0 / (2 * np.pi * cutoff)
        a = (1.0 / (1.0 + tau * fps))[:, None]
        filtered = np.where((present & known)[:, None], a * current + (1 - a) * previous, current)
        out[frame, :, :2] = np.where(present[:, None], filtered, points[frame, :, :2])
        previous = np.where(present[:, None], filtered, previous)
        known = present | known
    return out


def jitter(points: np.ndarray) -> float:
    """Mean length (pixels) of the second temporal difference over points seen in three
    consecutive frames: 0 for constant-velocity motion, large for shaking."""
    if len(points) < 3:
        return 0.0
    seen = (points[2:, :, 2] > 0) & (points[1:-1, :, 2] > 0) & (points[:-2, :, 2] > 0)
    accel = points[2:, :, :2] - 2 * points[1:-1, :, :2] + points[:-2, :, :2]
    return float(np.linalg.norm(accel, axis=-1)[seen].mean()) if seen.any() else 0.0


def interpolate_gaps(points: np.ndarray) -> np.ndarray:
    """Fill frames where a point is missing by linear interpolation between the frames
    around the gap (only inside gaps: nothing is extrapolated past the ends). The filled
    points get the lower of the two confidences, halved, so they are recognisable."""
    out = points.copy()
    frames = np.arange(len(points))
    for k in range(points.shape[1]):
        seen = points[:, k, 2] > 0
        if seen.sum() < 2:
            continue
        first, last = frames[seen][0], frames[seen][-1]
        gap = ~seen & (frames > first) & (frames < last)
        if not gap.any():
            continue
        for axis in (0, 1):
            out[gap, k, axis] = np.interp(frames[gap], frames[seen], points[seen, k, axis])
        confidence = np.interp(frames[gap], frames[seen], points[seen, k, 2])
        out[gap, k, 2] = confidence * 0.5
    return out


def fill_missed_frames(points: np.ndarray) -> np.ndarray:
    """``[F, K, 3]`` with the frames where nobody was found (no point at all) filled: the
    pose interpolated between the nearest frames with one, or held beside the first and
    the last. A whole frame without the person, amid frames with them, is the estimator
    missing them, not the person leaving; joints missing from a found pose are left
    alone. Filled points get half the confidence they come from, so they are recognisable."""
    seen = (points[..., 2] > 0).any(-1)
    out = points.copy()
    if seen.all() or not seen.any():
        return out
    known = np.flatnonzero(seen)
    for frame in np.flatnonzero(~seen):
        before, after = known[known < frame], known[known > frame]
        if before.size and after.size:
            a, b = points[before[-1]], points[after[0]]
            weight = (frame - before[-1]) / (after[0] - before[-1])
            both = (a[:, 2] > 0) & (b[:, 2] > 0)
            xy = np.where(both[:, None], (1 - weight) * a[:, :2] + weight * b[:, :2], 0.0)
            confidence = np.where(both, np.minimum(a[:, 2], b[:, 2]), 0.0)
        else:
            nearest = points[before[-1] if before.size else after[0]]
            xy, confidence = nearest[:, :2], nearest[:, 2]
        out[frame, :, :2] = xy
        out[frame, :, 2] = confidence * 0.5
    return out
