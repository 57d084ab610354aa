"""Parametric motion clips, written once on semantic channels and retargeted onto every
body plan (a "wave" raises a humanoid's arm, a dog's front paw, a bird's wing...).

Channels (arrays over time, angles in radians, lengths in body heights):

- ``x``, ``y``: root offset (y up); ``facing``: cos of the yaw, 1 = as drawn, -1 = turned
  around (an x-mirror about the root); ``heading``: ±1, which way side-view bodies face
  when they travel (front-view bodies ignore it); ``lean``: in-plane tilt
- ``arm_{l,r}_raise``: sideways raise (0 hanging, π/2 horizontal, π overhead)
- ``arm_{l,r}_swing``, ``leg_{l,r}_swing``: fore-aft swing (out of the image plane in
  front views, in it in side views)
- ``elbow_{l,r}``, ``knee_{l,r}``: bends; ``leg_{l,r}_spread``: sideways leg angle
- ``head``: head tilt; ``mouth``: 0 closed .. 1 open; ``blink``: 0 open .. 1 shut;
  ``tail``: tail swing
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHANNELS = (
    "x", "y", "facing", "heading", "lean", "head", "mouth", "blink", "tail",
    "arm_l_raise", "arm_r_raise", "arm_l_swing", "arm_r_swing", "elbow_l", "elbow_r",
    "leg_l_spread", "leg_r_spread", "leg_l_swing", "leg_r_swing", "knee_l", "knee_r",
)  # fmt: skip

Channels = dict[str, np.ndarray]


@dataclass(frozen=True)
class MotionSpec:
    """A sampled motion: which clip, and its parameters (what the ground-truth caption says)."""

    name: str
    speed: float
    side: str  # "left" / "right": which arm waves, which way one walks...
    amplitude: float
    phase: float

    def caption(self) -> str:
        return PHRASES[self.name].format(
            side=self.side, direction=_direction(self.side), speed=_speed_word(self.speed)
        )


def neutral(frames: int) -> Channels:
    channels = {name: np.zeros(frames) for name in CHANNELS}
    channels["facing"][:] = 1.0
    channels["heading"][:] = 1.0
    channels["arm_l_raise"][:] = channels["arm_r_raise"][:] = 0.18
    channels["leg_l_spread"][:] = channels["leg_r_spread"][:] = 0.06
    return channels


def _blinks(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Short blinks at random moments (about one every 2.5 s)."""
    blink = np.zeros_like(t)
    for moment in rng.uniform(0, max(t[-1], 1e-3) + 2.5, size=max(1, int(t[-1] / 2.5) + 1)):
        blink = np.maximum(blink, np.clip(1 - np.abs(t - moment) / 0.12, 0, 1))
    return blink


def idle(t, spec, c, rng):
    w = 2 * np.pi * 0.4 * spec.speed * t + spec.phase
    c["y"] += 0.006 * np.sin(w)
    c["lean"] += 0.03 * np.sin(0.5 * w)
    c["arm_l_raise"] += 0.05 * np.sin(w)
    c["arm_r_raise"] += 0.05 * np.sin(w + 0.5)
    c["head"] += 0.05 * np.sin(0.7 * w)
    c["tail"] += 0.2 * np.sin(w)


def walk(t, spec, c, rng, run=False):
    frequency = (1.6 if run else 1.0) * spec.speed
    w = 2 * np.pi * frequency * t + spec.phase
    a = spec.amplitude * (0.85 if run else 0.55)
    sign = 1.0 if spec.side == "right" else -1.0
    c["x"] += sign * (0.9 if run else 0.45) * frequency * t * 0.5
    c["heading"][:] = sign
    c["y"] += (0.04 if run else 0.015) * np.abs(np.sin(w))
    c["lean"] += sign * (0.18 if run else 0.04)
    c["leg_l_swing"] += a * np.sin(w)
    c["leg_r_swing"] -= a * np.sin(w)
    c["knee_l"] += (1.3 if run else 0.7) * np.clip(-np.cos(w), 0, None) * spec.amplitude
    c["knee_r"] += (1.3 if run else 0.7) * np.clip(np.cos(w), 0, None) * spec.amplitude
    c["arm_l_swing"] -= 0.8 * a * np.sin(w)
    c["arm_r_swing"] += 0.8 * a * np.sin(w)
    c["elbow_l"] += 1.4 if run else 0.25
    c["elbow_r"] += 1.4 if run else 0.25
    c["tail"] += 0.3 * np.sin(2 * w)


def run(t, spec, c, rng):
    walk(t, spec, c, rng, run=True)


def wave(t, spec, c, rng):
    w = 2 * np.pi * 1.5 * spec.speed * t + spec.phase
    side = "r" if spec.side == "right" else "l"
    rise = np.clip(t / 0.3, 0, 1)
    c[f"arm_{side}_raise"] = c[f"arm_{side}_raise"] * (1 - rise) + rise * (2.5 + 0.1 * spec.amplitude)
    c[f"elbow_{side}"] += rise * (0.35 + 0.45 * spec.amplitude * np.sin(w))
    c["head"] += 0.06 * np.sin(0.5 * w)
    c["mouth"] += 0.25 * rise


def jump(t, spec, c, rng):
    period = 1.1 / spec.speed
    u = (t + spec.phase / (2 * np.pi) * period) % period / period
    crouch = np.where(u < 0.25, np.sin(np.pi * u / 0.25), 0) + np.where(
        u > 0.85, np.sin(np.pi * (u - 0.85) / 0.15), 0
    )
    air = np.where((u >= 0.25) & (u <= 0.85), np.sin(np.pi * (u - 0.25) / 0.6), 0)
    c["y"] += 0.28 * spec.amplitude * air  # the crouch lowers the body through the bent knees
    for side in "lr":
        c[f"knee_{side}"] += 1.0 * crouch + 0.5 * air
        c[f"leg_{side}_swing"] += 0.5 * crouch + 0.3 * air
        c[f"arm_{side}_raise"] += 2.0 * air
        c[f"elbow_{side}"] += 0.3 * crouch
    c["tail"] += 0.6 * air


def turn(t, spec, c, rng):
    duration = t[-1] + 1e-6
    u = np.clip(t / duration * spec.speed * 1.2, 0, 1)
    yaw = np.pi * (0.5 - 0.5 * np.cos(np.pi * u))  # ease in and out
    sign = 1.0 if spec.side == "right" else -1.0
    c["facing"][:] = sign * np.cos(yaw)
    c["arm_l_swing"] += 0.2 * np.sin(2 * np.pi * u)
    c["arm_r_swing"] -= 0.2 * np.sin(2 * np.pi * u)
    c["leg_l_swing"] += 0.25 * np.sin(2 * np.pi * u) * spec.amplitude
    c["knee_l"] += 0.3 * np.clip(np.sin(2 * np.pi * u), 0, None)


def dance(t, spec, c, rng):
    w = 2 * np.pi * 1.2 * spec.speed * t + spec.phase
    a = spec.amplitude
    c["arm_l_raise"] += 1.1 + 1.0 * a * np.sin(w)
    c["arm_r_raise"] += 1.1 - 1.0 * a * np.sin(w)
    c["elbow_l"] += 0.6 + 0.4 * np.cos(w)
    c["elbow_r"] += 0.6 - 0.4 * np.cos(w)
    c["x"] += 0.05 * a * np.sin(w)
    c["lean"] += 0.15 * a * np.sin(w)
    c["knee_l"] += 0.4 * np.abs(np.sin(w))
    c["knee_r"] += 0.4 * np.abs(np.sin(w))
    c["leg_l_spread"] += 0.12 * a
    c["leg_r_spread"] += 0.12 * a
    c["head"] += 0.15 * np.sin(w)
    c["tail"] += 0.5 * np.sin(2 * w)


def talk(t, spec, c, rng):
    syllables = 3.5 * spec.speed
    w = 2 * np.pi * syllables * t + spec.phase
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 0.45 * t + spec.phase)
    c["mouth"] = np.clip(np.abs(np.sin(w)) * (0.3 + 0.7 * envelope) * spec.amplitude + 0.05, 0, 1)
    side = "r" if spec.side == "right" else "l"
    c[f"arm_{side}_raise"] += 0.5 + 0.25 * np.sin(0.5 * w)
    c[f"elbow_{side}"] += 1.4 + 0.3 * np.sin(0.7 * w)
    c["head"] += 0.08 * np.sin(0.3 * w)
    c["y"] += 0.004 * np.sin(0.5 * w)


def squat(t, spec, c, rng):
    w = 2 * np.pi * 0.7 * spec.speed * t + spec.phase
    depth = spec.amplitude * (0.5 - 0.5 * np.cos(w))  # bent knees lower the hips; the feet stay put
    for side in "lr":
        c[f"knee_{side}"] += 1.6 * depth
        c[f"leg_{side}_swing"] += 0.8 * depth
        c[f"arm_{side}_swing"] += 1.3 * depth
        c[f"leg_{side}_spread"] += 0.1 * depth


def kick(t, spec, c, rng):
    w = 2 * np.pi * 0.8 * spec.speed * t + spec.phase
    lift = np.clip(np.sin(w), 0, None) ** 2 * spec.amplitude
    side = "r" if spec.side == "right" else "l"
    other = "l" if side == "r" else "r"
    c[f"leg_{side}_spread"] += 0.9 * lift
    c[f"leg_{side}_swing"] += 0.6 * lift
    c[f"knee_{side}"] += 0.6 * (1 - lift) * np.clip(np.sin(w), 0, None)
    c[f"arm_{other}_raise"] += 0.8 * lift
    c["lean"] += (-0.15 if side == "r" else 0.15) * lift


MOTIONS: dict[str, Callable] = {
    "idle": idle, "walk": walk, "run": run, "wave": wave, "jump": jump, "turn": turn,
    "dance": dance, "talk": talk, "squat": squat, "kick": kick,
}  # fmt: skip

PHRASES = {
    "idle": "stands still, breathing gently",
    "walk": "walks {direction} at a {speed} pace",
    "run": "runs {direction}",
    "wave": "waves with the {side} hand",
    "jump": "jumps up and down",
    "turn": "turns around",
    "dance": "dances, swinging both arms",
    "talk": "talks, gesturing with the {side} hand",
    "squat": "squats down and stands up",
    "kick": "kicks with the {side} leg",
}


def _direction(side: str) -> str:
    return "to the right" if side == "right" else "to the left"


def _speed_word(speed: float) -> str:
    return "slow" if speed < 0.85 else "brisk" if speed > 1.2 else "steady"


def sample_motion(rng: np.random.Generator, names: tuple[str, ...] | None = None) -> MotionSpec:
    pool = names or tuple(MOTIONS)
    return MotionSpec(
        name=str(rng.choice(pool)),
        speed=float(rng.uniform(0.7, 1.4)),
        side=str(rng.choice(("left", "right"))),
        amplitude=float(rng.uniform(0.7, 1.1)),
        phase=float(rng.uniform(0, 2 * np.pi)),
    )


def motion_channels(spec: MotionSpec, frames: int, fps: float, seed: int) -> Channels:
    """The channels of ``spec`` over ``frames`` frames: deterministic in (spec, seed)."""
    t = np.arange(frames) / fps
    rng = np.random.default_rng(seed)
    channels = neutral(frames)
    MOTIONS[spec.name](t, spec, channels, rng)
    channels["blink"] = np.maximum(channels["blink"], _blinks(t, rng))
    return channels


def channels_at(channels: Channels, index: int) -> dict[str, float]:
    return {name: float(values[index]) for name, values in channels.items()}
