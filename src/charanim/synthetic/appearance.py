"""How a procedural character looks: palette, patterns, outline, face, accessory.

An :class:`Appearance` is sampled once per character and drives both the renderer
and the ground-truth appearance caption, so the caption never says anything the
pixels do not show.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from charanim.colours import colour_name
from charanim.raster import Fill

PATTERNS = ("solid", "solid", "stripes", "dots", "gradient", "bands")
ACCESSORIES = ("none", "none", "hat", "cap", "scarf", "bow")


@dataclass(frozen=True)
class Appearance:
    body: Fill
    limbs: Fill
    head: Fill
    accent: tuple[float, float, float]
    outline_width: float  # in body heights (0 = no outline)
    eye_size: float
    accessory: str
    pupil: tuple[float, float, float]

    def describe(self, plan_noun: str) -> str:
        """e.g. 'a blue humanoid with yellow stripes, wearing a red hat'."""
        text = f"a {colour_name(self.body.colour)} {plan_noun}"
        if self.body.pattern != "solid" and self.body.secondary is not None:
            pattern = {"stripes": "stripes", "dots": "dots", "gradient": "shading", "bands": "bands"}[
                self.body.pattern
            ]
            text += f" with {colour_name(self.body.secondary)} {pattern}"
        if self.limbs.colour != self.body.colour:
            text += f" and {colour_name(self.limbs.colour)} limbs"
        if self.accessory != "none":
            text += f", wearing a {colour_name(self.accent)} {self.accessory}"
        return text


def _random_colour(
    rng: np.random.Generator, saturation=(0.35, 0.95), value=(0.35, 0.95)
) -> tuple[float, float, float]:
    hue = rng.random()
    return tuple(float(c) for c in colorsys.hsv_to_rgb(hue, rng.uniform(*saturation), rng.uniform(*value)))


def _contrasting(rng: np.random.Generator, colour) -> tuple[float, float, float]:
    h, s, v = colorsys.rgb_to_hsv(*colour)
    h = (h + rng.uniform(0.25, 0.75)) % 1.0
    v = 1.0 - v * 0.6 if v > 0.5 else min(1.0, v + 0.4)
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, max(0.3, s), v))


def sample_appearance(rng: np.random.Generator) -> Appearance:
    main = _random_colour(rng)
    secondary = _contrasting(rng, main)
    pattern = str(rng.choice(PATTERNS))
    body = Fill(
        main,
        secondary if pattern != "solid" else None,
        pattern,
        float(rng.uniform(2, 5)),
        float(rng.uniform(0.05, 0.3)),
    )
    if rng.random() < 0.45:  # limbs of their own colour (like sleeves and trousers)
        limbs = Fill(_random_colour(rng), None, "solid", 1.0, body.shade)
    else:
        limbs = Fill(main, None, "solid", 1.0, body.shade)
    if rng.random() < 0.5:  # a skin-like head, or the body's colour
        skin = tuple(
            float(c)
            for c in colorsys.hsv_to_rgb(
                rng.uniform(0.03, 0.1), rng.uniform(0.2, 0.6), rng.uniform(0.35, 0.95)
            )
        )
        head = Fill(skin, None, "solid", 1.0, 0.1)
    else:
        head = Fill(main, None, "solid", 1.0, 0.1)
    outline = float(rng.choice([0.0, rng.uniform(0.006, 0.014)], p=[0.35, 0.65]))
    return Appearance(
        body=body,
        limbs=limbs,
        head=head,
        accent=_random_colour(rng, (0.6, 1.0), (0.5, 1.0)),
        outline_width=outline,
        eye_size=float(rng.uniform(0.22, 0.42)),
        accessory=str(rng.choice(ACCESSORIES)),
        pupil=(0.05, 0.05, 0.08) if rng.random() < 0.8 else _random_colour(rng, (0.5, 1), (0.2, 0.5)),
    )
