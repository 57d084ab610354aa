"""One world sample: character A performs a motion (driving video); character B, shown in
another pose (reference image), performs the same motion (target video, the truth)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from charanim.raster import render_parts
from charanim.synthetic.backgrounds import background
from charanim.synthetic.bodies import PLANS
from charanim.synthetic.motions import MotionSpec, channels_at, motion_channels, sample_motion
from charanim.synthetic.scene import (
    choose_camera,
    clip_points,
    posed_points,
    render_clip,
    sample_character,
)

MAX_KEYPOINTS = 17
#: motions that leave a fixed camera's view unless the whole clip is framed
TRAVELLING = {"walk", "run"}

# per body plan wording of motions whose human phrasing would be wrong
PLAN_PHRASES = {
    "quadruped": {"wave": "lifts the {side} front paw", "talk": "opens and closes its mouth", "kick": "kicks out the {side} hind leg",
                  "dance": "prances, lifting its front paws", "walk": "walks {direction}", "squat": "crouches down and gets up"},
    "bird": {"wave": "flaps the {side} wing", "dance": "dances, flapping both wings", "talk": "opens and closes its beak",
             "walk": "hops {direction}", "run": "runs {direction}", "kick": "kicks with the {side} foot", "squat": "crouches down and gets up"},
    "blob": {"wave": "waves its {side} arm", "talk": "talks, waving its {side} arm", "walk": "shuffles {direction}",
             "dance": "dances, waving its arms", "kick": "kicks its {side} leg"},
}  # fmt: skip


def motion_caption(spec: MotionSpec, plan: str) -> str:
    template = PLAN_PHRASES.get(plan, {}).get(spec.name)
    if template is None:
        return spec.caption()
    direction = "to the right" if spec.side == "right" else "to the left"
    return template.format(side=spec.side, direction=direction)


@dataclass
class WorldSample:
    driving: np.ndarray
    driving_mask: np.ndarray
    driving_keypoints: np.ndarray
    reference: np.ndarray
    reference_mask: np.ndarray
    reference_keypoints: np.ndarray
    target: np.ndarray
    target_mask: np.ndarray
    target_keypoints: np.ndarray
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WorldConfig:
    size: tuple[int, int] = (64, 64)
    frames: int = 16
    fps: float = 8.0
    body_plans: tuple[str, ...] = tuple(PLANS)
    #: probability that B has another body plan than A
    cross_plan: float = 0.15
    motions: tuple[str, ...] | None = None


def _pad(keypoints: np.ndarray) -> np.ndarray:
    pad = MAX_KEYPOINTS - keypoints.shape[-2]
    if pad <= 0:
        return keypoints
    return np.concatenate([keypoints, np.zeros((*keypoints.shape[:-2], pad, 3), keypoints.dtype)], axis=-2)


def make_sample(config: WorldConfig, motion_seed: int, target_seed: int) -> WorldSample:
    """Deterministic in the two seeds: samples sharing ``motion_seed`` share A and the
    motion (one-to-many groups) and differ in B."""
    rng_a = np.random.default_rng(motion_seed)
    plan_a = str(rng_a.choice(config.body_plans))
    spec = sample_motion(rng_a, config.motions)
    channels = motion_channels(spec, config.frames, config.fps, motion_seed)
    character_a = sample_character(rng_a, plan_a)
    framing_a = _framing(rng_a, spec, plan_a)
    clip_a = clip_points(character_a, channels)
    camera_a = choose_camera(rng_a, clip_a, config.size, framing_a, character_a.plan)
    background_a, background_kind_a = background(rng_a, config.size)
    driving = render_clip(character_a, channels, camera_a, background_a)

    rng_b = np.random.default_rng([motion_seed, target_seed])
    plan_b = plan_a if rng_b.random() >= config.cross_plan else str(rng_b.choice(config.body_plans))
    character_b = sample_character(rng_b, plan_b)
    reference_channels = _reference_pose(rng_b, config, channels)
    framing_b = _framing(rng_b, spec, plan_b)
    clip_b = clip_points(character_b, channels) + [posed_points(character_b, reference_channels)]
    camera_b = choose_camera(rng_b, clip_b, config.size, framing_b, character_b.plan)
    background_b, background_kind_b = background(rng_b, config.size)
    target = render_clip(character_b, channels, camera_b, background_b)
    still = {name: np.array([value]) for name, value in reference_channels.items()}
    reference = render_clip(character_b, still, camera_b, background_b)

    caption_motion = motion_caption(spec, plan_b)
    appearance = character_b.describe()
    meta = {
        "motion": {"name": spec.name, "side": spec.side, "speed": round(spec.speed, 3), "amplitude": round(spec.amplitude, 3),
                   "caption": motion_caption(spec, plan_a)},
        "driving": {"plan": plan_a, "keypoint_format": character_a.plan.format.name, "appearance": character_a.describe(),
                    "framing": framing_a, "background": background_kind_a},
        "reference": {"plan": plan_b, "keypoint_format": character_b.plan.format.name, "appearance": appearance,
                      "framing": framing_b, "background": background_kind_b},
        "caption": {"motion": caption_motion, "appearance": appearance, "prompt": f"{appearance} {caption_motion}"},
    }  # fmt: skip
    return WorldSample(
        driving=driving.frames, driving_mask=driving.masks, driving_keypoints=_pad(driving.keypoints),
        reference=reference.frames[0], reference_mask=reference.masks[0], reference_keypoints=_pad(reference.keypoints[0]),
        target=target.frames, target_mask=target.masks, target_keypoints=_pad(target.keypoints), meta=meta,
    )  # fmt: skip


def _framing(rng: np.random.Generator, spec: MotionSpec, plan: str) -> str:
    if spec.name in TRAVELLING or spec.name == "jump":
        return "full"
    if plan in ("humanoid", "blob"):
        return str(rng.choice(["full", "upper", "close"], p=[0.7, 0.2, 0.1]))
    return str(rng.choice(["full", "upper"], p=[0.85, 0.15]))


def _reference_pose(rng: np.random.Generator, config: WorldConfig, channels) -> dict[str, float]:
    """Another pose than the target's: a moment of another motion, standing where the target starts."""
    other = sample_motion(rng)
    other_channels = motion_channels(other, config.frames, config.fps, int(rng.integers(1 << 31)))
    pose = channels_at(other_channels, int(rng.integers(config.frames)))
    pose["x"], pose["y"] = float(channels["x"][0]), 0.0
    pose["facing"] = 1.0
    pose["heading"] = float(channels["heading"][0]) if rng.random() < 0.7 else -float(channels["heading"][0])
    return pose


__all__ = ["WorldConfig", "WorldSample", "make_sample", "motion_caption", "render_parts"]
