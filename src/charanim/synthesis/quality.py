"""Quality filters for bootstrapped videos (no ground truth: the generated character is new).

- ``motion``: share of the driving skeleton's points (retargeted onto the new character)
  that land on the generated character, times the share of the character that lies
  near the skeleton: did it move as told, and only there?
- ``identity``: colour-histogram similarity of the generated character and the reference
- ``stability``: exp(-flicker / 5): smooth videos score near 1
- ``artefacts``: share of frames that are neither blank nor swamped by the character

``score`` is their weighted mean, in [0, 1].
"""

from __future__ import annotations

import numpy as np

from charanim.metrics import (
    background_colour,
    colour_histogram,
    flicker,
    foreground_mask,
    histogram_similarity,
    skeleton_coverage,
    skeleton_precision,
)

WEIGHTS = {"motion": 0.4, "identity": 0.3, "stability": 0.2, "artefacts": 0.1}


def score_video(
    frames: np.ndarray,
    keypoints: np.ndarray,
    skeletons: np.ndarray,
    reference: np.ndarray,
    reference_mask: np.ndarray | None,
) -> dict[str, float]:
    """``skeletons`` ``[F, H, W]``: where the condition's pose maps are drawn."""
    background = background_colour(reference)
    masks = foreground_mask(frames, background)
    if reference_mask is None:
        reference_mask = foreground_mask(reference[None], background)[0]
    generated_pixels = frames[masks]
    reference_pixels = reference[reference_mask > 0]
    share = masks.mean(axis=(1, 2))
    healthy = (frames.reshape(len(frames), -1).std(axis=1) > 4) & (share > 0.005) & (share < 0.8)
    scores = {
        "motion": skeleton_coverage(keypoints, masks) * skeleton_precision(masks, skeletons),
        "identity": histogram_similarity(
            colour_histogram(generated_pixels), colour_histogram(reference_pixels)
        ),
        "stability": float(np.exp(-flicker(frames) / 5.0)),
        "artefacts": float(healthy.mean()),
    }
    scores["score"] = float(sum(WEIGHTS[k] * scores[k] for k in WEIGHTS))
    return {k: round(v, 4) for k, v in scores.items()}


def histogram_text(values: list[float], bins: int = 10) -> dict:
    """Counts of ``values`` in ``bins`` equal bins over [0, 1]."""
    counts, edges = np.histogram(np.clip(values, 0, 1), bins=bins, range=(0.0, 1.0))
    return {f"{edges[i]:.1f}-{edges[i + 1]:.1f}": int(c) for i, c in enumerate(counts)}
