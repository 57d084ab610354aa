"""Image metrics with ground truth: PSNR (whole frame and inside a mask), foreground IoU.

Inputs are uint8 arrays ``[..., H, W, 3]``; masks are ``[..., H, W]`` (non-zero = on).
Higher is better for all three.
"""

from __future__ import annotations

import numpy as np


def psnr(output: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB over all pixels (or those where ``mask`` is on).
    Identical images give +inf."""
    diff = output.astype(np.float64) - target.astype(np.float64)
    squared = diff**2
    if mask is not None:
        on = np.broadcast_to((mask > 0)[..., None], squared.shape)
        if not on.any():
            return float("nan")
        mse = squared[on].mean()
    else:
        mse = squared.mean()
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def mask_iou(predicted: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two masks (1.0 when both are empty)."""
    a, b = predicted > 0, target > 0
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def foreground_mask(frames: np.ndarray, background: np.ndarray, threshold: float = 24.0) -> np.ndarray:
    """Pixels that differ from a known background by more than ``threshold`` (0-255 RGB
    distance): where a generated character is, when the background is known."""
    distance = np.linalg.norm(frames.astype(np.float32) - background.astype(np.float32), axis=-1)
    return distance > threshold


def background_plate(views: np.ndarray, masks: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The background behind a character filmed by a still camera, ``[H, W, 3]`` float:
    at each pixel the median of the views ``[N, H, W, 3]`` whose character mask ``[N, H, W]``
    leaves it uncovered; ``fallback`` (a colour) where every view shows the character.

    A single background colour misses the character on textured backgrounds (a noise or
    landscape backdrop differs from its own median colour by more than ``foreground_mask``'s
    threshold)."""
    shown = np.where((masks == 0)[..., None], views.astype(np.float32), np.nan)
    seen = (masks == 0).any(0)
    plate = np.broadcast_to(np.asarray(fallback, np.float32), shown.shape[1:]).copy()
    plate[seen] = np.nanmedian(shown[:, seen], axis=0)
    return plate


# --------------------------------------------------------------------------- without ground truth


def background_colour(image: np.ndarray) -> np.ndarray:
    """The median colour of an image's border: its background for most character shots."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return np.median(border, axis=0)


def colour_histogram(pixels: np.ndarray, bins: int = 8) -> np.ndarray:
    """Normalised 3D RGB histogram of ``[N, 3]`` uint8 pixels."""
    if len(pixels) == 0:
        return np.zeros(bins**3)
    index = (pixels.astype(np.int64) * bins // 256).clip(0, bins - 1)
    flat = index[:, 0] * bins * bins + index[:, 1] * bins + index[:, 2]
    histogram = np.bincount(flat, minlength=bins**3).astype(np.float64)
    return histogram / histogram.sum()


def histogram_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.sqrt(a * b).sum())


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate boolean masks ``[..., H, W]`` by ``pixels`` (4-neighbourhood steps)."""
    grown = mask > 0
    for _ in range(pixels):
        grown = (
            grown
            | np.roll(grown, 1, -2)
            | np.roll(grown, -1, -2)
            | np.roll(grown, 1, -1)
            | np.roll(grown, -1, -1)
        )
    return grown


def skeleton_precision(masks: np.ndarray, skeletons: np.ndarray, grow: int = 5) -> float:
    """Share of foreground pixels near the skeleton (``skeletons``: where the pose map is
    drawn, grown by ``grow`` pixels): a character that spills everywhere scores low."""
    foreground = masks > 0
    if not foreground.any():
        return 0.0
    return float((foreground & grow_mask(skeletons, grow)).sum() / foreground.sum())


def skeleton_coverage(keypoints: np.ndarray, masks: np.ndarray, tolerance: int = 2) -> float:
    """Share of visible keypoints ``[F, K, 3]`` that fall on the foreground ``masks`` ``[F, H, W]``
    (grown by ``tolerance`` pixels): does the character stand where the skeleton says?"""
    hits = []
    for points, mask in zip(keypoints, masks, strict=True):
        grown = grow_mask(mask, tolerance)
        height, width = grown.shape
        for x, y, confidence in points:
            if confidence > 0 and 0 <= x < width and 0 <= y < height:
                hits.append(bool(grown[int(y), int(x)]))
    return float(np.mean(hits)) if hits else 0.0


def flicker(frames: np.ndarray) -> float:
    """Mean absolute second temporal difference (0-255 units): jitter that smooth motion lacks."""
    if len(frames) < 3:
        return 0.0
    f = frames.astype(np.float32)
    return float(np.abs(f[2:] - 2 * f[1:-1] + f[:-2]).mean() / 2)


def skeleton_masks(points: np.ndarray, body_format: str, size: tuple[int, int]) -> np.ndarray:
    """``[F, H, W]`` booleans: where the skeleton ``[F, K, 3]`` is drawn (as in a pose map)."""
    from charanim.pose.render import render_pose

    return np.stack([render_pose(p, body_format, size).any(-1) for p in points])


def skeleton_agreement(points: np.ndarray, body_format: str, masks: np.ndarray, grow: int = 5) -> float:
    """Keypoints on the character (coverage) times character near the skeleton (precision):
    1 when the character stands exactly where the skeleton says and nowhere else."""
    size = (masks.shape[2], masks.shape[1])
    return skeleton_coverage(points, masks) * skeleton_precision(
        masks, skeleton_masks(points, body_format, size), grow
    )


#: the world's mouth colour (an open mouth shows more of it)
MOUTH_RGB = np.array([89.0, 13.0, 20.0])


def mouth_openness(
    frames: np.ndarray, nose: np.ndarray, eyes: np.ndarray, tolerance: float = 60.0
) -> np.ndarray:
    """Per frame, how many pixels of mouth colour lie in the head box (centred on the nose,
    1.5 eye distances each way), relative to the eye distance squared: 0 for a closed or
    missing mouth, growing with the opening. ``nose`` ``[F, 2]``, ``eyes`` ``[F, 2, 2]``
    (left, right) in pixels. For the procedural world, whose mouths have one colour."""
    out = np.zeros(len(frames))
    height, width = frames.shape[1:3]
    for i, frame in enumerate(frames):
        span = float(np.linalg.norm(eyes[i, 0] - eyes[i, 1]))
        if span < 1:
            continue
        x0, x1 = (int(np.clip(nose[i, 0] + d * 1.5 * span, 0, width)) for d in (-1, 1))
        y0, y1 = (int(np.clip(nose[i, 1] + d * 1.5 * span, 0, height)) for d in (-1, 1))
        box = frame[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64)
        out[i] = (np.linalg.norm(box - MOUTH_RGB, axis=1) < tolerance).sum() / span**2 if len(box) else 0.0
    return out


def loudness(sound: np.ndarray, frames: int) -> np.ndarray:
    """Root-mean-square level of ``sound`` (float samples) in each of ``frames`` equal slices."""
    per_frame = len(sound) // frames
    return np.sqrt([np.mean(sound[i * per_frame : (i + 1) * per_frame] ** 2) for i in range(frames)])


def lip_sync(openness: np.ndarray, loudness: np.ndarray) -> float:
    """Pearson correlation of a clip's per-frame mouth opening with its audio loudness
    (NaN when either does not vary)."""
    if openness.std() < 1e-9 or loudness.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(openness, loudness)[0, 1])
