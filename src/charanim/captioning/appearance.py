"""Describing a character from its image: colours, kind (where a skeleton says), framing,
background. Only what is measured: an unknown kind is "a character"."""

from __future__ import annotations

import numpy as np

from charanim.colours import colour_name
from charanim.metrics import background_colour, foreground_mask

KIND_BY_FORMAT = {
    "coco17": "figure",
    "openpose18": "figure",
    "ap10k": "four-legged animal",
    "bird": "bird",
    "blob6": "creature",
}


def dominant_colours(pixels: np.ndarray, clusters: int = 3, seed: int = 0) -> list[tuple[str, float]]:
    """Named colours of ``[N, 3]`` pixels with their shares (k-means in RGB, merged by name)."""
    if len(pixels) == 0:
        return []
    rng = np.random.default_rng(seed)
    data = pixels.astype(np.float32)
    if len(data) > 4000:
        data = data[rng.choice(len(data), 4000, replace=False)]
    centres = data[rng.choice(len(data), min(clusters, len(data)), replace=False)]
    for _ in range(12):
        labels = np.argmin(((data[:, None] - centres[None]) ** 2).sum(-1), axis=1)
        centres = np.stack(
            [data[labels == k].mean(0) if (labels == k).any() else centres[k] for k in range(len(centres))]
        )
    shares: dict[str, float] = {}
    for k, centre in enumerate(centres):
        name = colour_name(centre / 255.0)
        shares[name] = shares.get(name, 0.0) + float((labels == k).mean())
    return sorted(shares.items(), key=lambda item: -item[1])


def read_appearance(image: np.ndarray, alpha: np.ndarray | None, body_format: str | None) -> tuple[str, dict]:
    height, width = image.shape[:2]
    background = background_colour(image)
    mask = alpha > 127 if alpha is not None else foreground_mask(image[None], background)[0]
    share = float(mask.mean())
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    plain = float(border.std(axis=0).mean()) < 12
    scene = f"on a {'plain' if plain else 'textured'} {colour_name(background / 255.0)} background"
    details = {
        "foreground_share": round(share, 3),
        "background": colour_name(background / 255.0),
        "plain_background": plain,
    }
    if share < 0.003:
        return f"an empty {scene[3:]}", {**details, "colours": []}
    colours = [(name, round(value, 3)) for name, value in dominant_colours(image[mask]) if value >= 0.15][:2]
    ys, xs = np.nonzero(mask)
    tall = (ys.max() - ys.min() + 1) / height
    touches_bottom = ys.max() >= height - 2
    framing = (
        "close-up"
        if share > 0.45 and touches_bottom
        else "upper body"
        if touches_bottom and tall > 0.7
        else "full body"
    )
    kind = KIND_BY_FORMAT.get(body_format or "", "character")
    colour_text = " and ".join(name for name, _ in colours) or "colourful"
    details.update({"colours": colours, "framing": framing, "kind": kind})
    return f"a {colour_text} {kind} ({framing}, {scene})", details
