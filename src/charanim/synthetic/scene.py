"""Characters, cameras and clips: from motion channels to frames, masks and keypoints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from charanim.raster import render_parts
from charanim.synthetic.appearance import Appearance, sample_appearance
from charanim.synthetic.bodies import PLANS, BodyPlan, Points
from charanim.synthetic.motions import Channels, channels_at

FRAMINGS = ("full", "upper", "close")
#: how much of the body (in body heights) surrounds the joints: limbs and heads have width
BODY_MARGIN = 0.12


@dataclass(frozen=True)
class Character:
    plan: BodyPlan
    props: dict[str, float]
    look: Appearance

    def describe(self) -> str:
        return self.look.describe(self.plan.noun)


def sample_character(rng: np.random.Generator, plan_name: str) -> Character:
    plan = PLANS[plan_name]
    return Character(plan, plan.proportions(rng), sample_appearance(rng))


@dataclass(frozen=True)
class Camera:
    """Body units to pixels: ``(cx + scale * x, cy - scale * y)``."""

    scale: float
    cx: float
    cy: float

    def to_pixels(self, point: np.ndarray) -> np.ndarray:
        return np.array([self.cx + self.scale * point[0], self.cy - self.scale * point[1]])


def posed_points(character: Character, ch: dict[str, float]) -> Points:
    """Body-unit points after the plan-independent transform: lean, facing/heading, offset."""
    points = character.plan.points(character.props, ch)
    mirror = ch["facing"] * (ch["heading"] if character.plan.view == "side" else 1.0)
    cos, sin = np.cos(-ch["lean"]), np.sin(-ch["lean"])
    offset = np.array([ch["x"], ch["y"]])
    out = {}
    for name, (x, y) in points.items():
        rx, ry = cos * x - sin * y, sin * x + cos * y
        out[name] = np.array([rx * mirror, ry]) + offset
    return out


def clip_points(character: Character, channels: Channels) -> list[Points]:
    frames = len(channels["x"])
    return [posed_points(character, channels_at(channels, i)) for i in range(frames)]


def choose_camera(
    rng: np.random.Generator, clip: list[Points], size: tuple[int, int], framing: str, plan: BodyPlan
) -> Camera:
    """Fit the whole clip (``full``) or zoom on the chest / head (``upper`` / ``close``)."""
    width, height = size
    everything = np.array([p for points in clip for p in points.values()])
    low, high = everything.min(0) - BODY_MARGIN, everything.max(0) + BODY_MARGIN
    extent = np.maximum(high - low, 1e-3)
    fit = min(width / extent[0], height / extent[1])
    if framing == "full":
        scale = fit * rng.uniform(0.72, 0.95)
        slack_x = max(0.0, width - extent[0] * scale) / 2
        slack_y = max(0.0, height - extent[1] * scale) / 2
        centre = (low + high) / 2
        cx = width / 2 - scale * centre[0] + rng.uniform(-slack_x, slack_x) * 0.8
        cy = height / 2 + scale * centre[1] + rng.uniform(-slack_y, slack_y) * 0.8
        return Camera(scale, cx, cy)
    first = clip[0]
    focus_name = {"humanoid": "neck_base", "blob": "center", "quadruped": "neck", "bird": "neck"}[plan.name]
    if framing == "close":
        focus_name = {"humanoid": "head", "blob": "center", "quadruped": "head", "bird": "head"}[plan.name]
    if plan.view == "side":  # long bodies: a milder zoom still shows the head and forelegs
        zoom = rng.uniform(1.2, 1.45) if framing == "upper" else rng.uniform(1.6, 2.0)
    else:
        zoom = rng.uniform(1.5, 1.9) if framing == "upper" else rng.uniform(2.2, 2.9)
    body_height = max(np.ptp(np.array(list(first.values()))[:, 1]), 0.3)
    scale = height / (body_height + 2 * BODY_MARGIN) * zoom * 0.9
    focus = first[focus_name]
    cx = width * rng.uniform(0.42, 0.58) - scale * focus[0]
    cy = height * (0.5 if framing == "close" else 0.42) + scale * focus[1]
    return Camera(scale, cx, cy)


@dataclass
class RenderedClip:
    frames: np.ndarray  # uint8 [F, H, W, 3]
    masks: np.ndarray  # uint8 [F, H, W], 255 = character
    keypoints: np.ndarray  # float32 [F, K, 3]: pixels and visibility (in frame and not hidden)


def render_group(
    members: list[tuple[Character, Channels]], camera: Camera, background: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Several characters in one frame, drawn in order (later ones in front): frames,
    union masks, and each member's keypoints ``[F, K_i, 3]`` (a skeleton describes the
    whole body even where another character hides it, like a pose estimator's guess)."""
    clip = render_clip(*members[0], camera, background)
    frames, masks, keypoints = clip.frames, clip.masks, [clip.keypoints]
    for character, channels in members[1:]:
        clip = render_clip(character, channels, camera, frames.astype(np.float32) / 255.0)
        frames, masks = clip.frames, np.maximum(masks, clip.masks)
        keypoints.append(clip.keypoints)
    return frames, masks, keypoints


def render_clip(
    character: Character, channels: Channels, camera: Camera, background: np.ndarray
) -> RenderedClip:
    """``background`` is one image ``[H, W, 3]`` for every frame, or one per frame ``[F, H, W, 3]``
    (floats in [0, 1])."""
    height, width = background.shape[-3:-1]
    count = len(channels["x"])
    plan, look = character.plan, character.look
    frames = np.empty((count, height, width, 3), np.uint8)
    masks = np.empty((count, height, width), np.uint8)
    keypoints = np.empty((count, len(plan.format), 3), np.float32)
    outline = look.outline_width * camera.scale
    for i in range(count):
        ch = channels_at(channels, i)
        body = posed_points(character, ch)
        pixels = {name: camera.to_pixels(point) for name, point in body.items()}
        parts = plan.parts(character.props, look, pixels, camera.scale, ch)
        canvas = background if background.ndim == 3 else background[i]
        image, coverage = render_parts(parts, canvas, outline_width=outline)
        frames[i] = np.round(image * 255).astype(np.uint8)
        masks[i] = np.where(coverage > 0.5, 255, 0).astype(np.uint8)
        points = plan.keypoints(character.props, pixels, ch)
        inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
        points[:, 2] *= inside
        keypoints[i] = points
    return RenderedClip(frames, masks, keypoints)
