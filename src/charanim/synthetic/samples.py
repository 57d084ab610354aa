"""One world sample: character A performs a motion (driving video); character B, shown in
another pose (reference image), performs the same motion (target video, the truth)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from charanim.errors import InvalidOptionError
from charanim.raster import render_parts
from charanim.synthetic.backgrounds import background
from charanim.synthetic.bodies import PLANS
from charanim.synthetic.motions import MOTIONS, MotionSpec, channels_at, motion_channels, sample_motion
from charanim.synthetic.scene import (
    choose_camera,
    clip_points,
    posed_points,
    render_clip,
    render_group,
    sample_character,
)
from charanim.synthetic.voice import SAMPLE_RATE, voice

MAX_KEYPOINTS = 17
MOTION_NAMES = tuple(MOTIONS)
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
    #: the other people of a group sample: ``driving_keypoints`` ``[P-1, F, K, 3]``,
    #: ``reference_keypoints`` ``[P-1, K, 3]``, ``target_keypoints`` ``[P-1, F, K, 3]``
    others: dict[str, np.ndarray] | None = None
    #: ``int16 [frames / fps * 16000]``: the driving clip's sound (``WorldConfig.audio``)
    driving_audio: np.ndarray | None = None


@dataclass(frozen=True)
class WorldConfig:
    size: tuple[int, int] = (64, 64)
    frames: int = 16
    fps: float = 8.0
    body_plans: tuple[str, ...] = tuple(PLANS)
    #: probability that B has another body plan than A
    cross_plan: float = 0.15
    motions: tuple[str, ...] | None = None
    #: probability that a sample shows two characters side by side, each with its own motion
    duets: float = 0.0
    #: give every sample a sound track (16 kHz): talking drivers' voices follow their
    #: mouths (:mod:`charanim.synthetic.voice`); everyone else is silent
    audio: bool = False
    #: how B is posed in the reference image: ``other`` (a moment of another motion, the
    #: default) or ``first-frame`` (B as the target starts, i.e. as the driver starts:
    #: the pairs relative motion transfer expects, as for the RGB conditioner's flow warp)
    reference_pose: str = "other"

    def __post_init__(self) -> None:
        if self.reference_pose not in REFERENCE_POSES:
            raise InvalidOptionError(
                f"--reference-pose must be one of {', '.join(REFERENCE_POSES)}, got '{self.reference_pose}'."
            )


REFERENCE_POSES = ("other", "first-frame")


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
    framing_a = _framing(rng_a, spec, plan_a, config.audio)
    clip_a = clip_points(character_a, channels)
    camera_a = choose_camera(rng_a, clip_a, config.size, framing_a, character_a.plan)
    background_a, background_kind_a = background(rng_a, config.size)
    driving = render_clip(character_a, channels, camera_a, background_a)

    rng_b = np.random.default_rng([motion_seed, target_seed])
    plan_b = plan_a if rng_b.random() >= config.cross_plan else str(rng_b.choice(config.body_plans))
    character_b = sample_character(rng_b, plan_b)
    reference_channels = _reference_pose(rng_b, config, channels)  # drawn either way: same B
    if config.reference_pose == "first-frame":
        reference_channels = channels_at(channels, 0)
    framing_b = _framing(rng_b, spec, plan_b, config.audio)
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
    audio = None
    if config.audio:
        audio = _sound(config, channels["mouth"] if spec.name == "talk" else None, motion_seed)
        meta["audio"] = {"voice": spec.name == "talk", "sample_rate": SAMPLE_RATE}
    return WorldSample(
        driving=driving.frames, driving_mask=driving.masks, driving_keypoints=_pad(driving.keypoints),
        reference=reference.frames[0], reference_mask=reference.masks[0], reference_keypoints=_pad(reference.keypoints[0]),
        target=target.frames, target_mask=target.masks, target_keypoints=_pad(target.keypoints), meta=meta,
        driving_audio=audio,
    )  # fmt: skip


def _sound(config: WorldConfig, mouth: np.ndarray | None, seed: int) -> np.ndarray:
    """The driving clip's sound: the talker's voice, or silence of the clip's length."""
    if mouth is not None:
        return voice(mouth, config.fps, seed)
    return np.zeros(int(round(config.frames / config.fps * SAMPLE_RATE)), np.int16)


def make_duet(config: WorldConfig, motion_seed: int, target_seed: int) -> WorldSample:
    """Two characters of one body plan side by side, each doing its own motion: A1 and A2
    drive, B1 and B2 (in other poses) are the reference, and the truth is B1 doing A1's
    motion beside B2 doing A2's. Travelling motions are left out (they would cross)."""
    rng_a = np.random.default_rng([motion_seed, 2])
    pool = tuple(m for m in (config.motions or MOTION_NAMES) if m not in TRAVELLING) or ("wave",)
    specs = [sample_motion(rng_a, pool) for _ in range(2)]
    plans = [str(rng_a.choice(config.body_plans))] * 2  # one body plan: one keypoint format per frame
    channels = [
        motion_channels(spec, config.frames, config.fps, motion_seed + i) for i, spec in enumerate(specs)
    ]
    gap = float(rng_a.uniform(0.05, 0.25))
    drivers = [sample_character(rng_a, plan) for plan in plans]
    driving_channels = _side_by_side(drivers, channels, gap)
    camera_a = choose_camera(rng_a, _merged(drivers, driving_channels), config.size, "full", drivers[0].plan)
    background_a, background_kind_a = background(rng_a, config.size)
    driving, driving_masks, driving_points = render_group(
        list(zip(drivers, driving_channels, strict=True)), camera_a, background_a
    )

    rng_b = np.random.default_rng([motion_seed, target_seed, 2])
    targets = [sample_character(rng_b, plan) for plan in plans]
    target_channels = _side_by_side(targets, channels, gap)
    stills = [_reference_pose(rng_b, config, ch) for ch in target_channels]
    if config.reference_pose == "first-frame":
        stills = [channels_at(ch, 0) for ch in target_channels]
    still_channels = [{name: np.array([value]) for name, value in still.items()} for still in stills]
    clip_b = _merged(targets, target_channels) + [
        {
            f"{i}:{k}": v
            for i, (c, st) in enumerate(zip(targets, stills, strict=True))
            for k, v in posed_points(c, st).items()
        }
    ]
    camera_b = choose_camera(rng_b, clip_b, config.size, "full", targets[0].plan)
    background_b, background_kind_b = background(rng_b, config.size)
    target, target_masks, target_points = render_group(
        list(zip(targets, target_channels, strict=True)), camera_b, background_b
    )
    reference, reference_masks, reference_points = render_group(
        list(zip(targets, still_channels, strict=True)), camera_b, background_b
    )

    people = []
    for i in range(2):
        caption = motion_caption(specs[i], plans[i])
        people.append({
            "motion": {"name": specs[i].name, "side": specs[i].side, "speed": round(specs[i].speed, 3),
                       "amplitude": round(specs[i].amplitude, 3), "caption": caption},
            "driving": {"plan": plans[i], "keypoint_format": drivers[i].plan.format.name, "appearance": drivers[i].describe(),
                        "framing": "full", "background": background_kind_a},
            "reference": {"plan": plans[i], "keypoint_format": targets[i].plan.format.name, "appearance": targets[i].describe(),
                          "framing": "full", "background": background_kind_b},
            "caption": {"motion": caption, "appearance": targets[i].describe()},
        })  # fmt: skip
    prompt = f"{people[0]['caption']['appearance']} {people[0]['caption']['motion']}, and beside it {people[1]['caption']['appearance']} {people[1]['caption']['motion']}"
    meta = {
        "people": 2, "motion": people[0]["motion"], "driving": people[0]["driving"], "reference": people[0]["reference"],
        "caption": {**people[0]["caption"], "prompt": prompt}, "others": people[1:],
    }  # fmt: skip
    audio = None
    if config.audio:  # the first talker's voice (two voices at once would teach nothing clear)
        talker = next((i for i, spec in enumerate(specs) if spec.name == "talk"), None)
        audio = _sound(config, None if talker is None else channels[talker]["mouth"], motion_seed)
        meta["audio"] = {"voice": talker is not None, "sample_rate": SAMPLE_RATE, "speaker": talker}
    return WorldSample(
        driving=driving, driving_mask=driving_masks, driving_keypoints=_pad(driving_points[0]),
        reference=reference[0], reference_mask=reference_masks[0], reference_keypoints=_pad(reference_points[0][0]),
        target=target, target_mask=target_masks, target_keypoints=_pad(target_points[0]), meta=meta,
        others={"driving_keypoints": np.stack([_pad(p) for p in driving_points[1:]]),
                "reference_keypoints": np.stack([_pad(p[0]) for p in reference_points[1:]]),
                "target_keypoints": np.stack([_pad(p) for p in target_points[1:]])},
        driving_audio=audio,
    )  # fmt: skip


def _merged(characters, channels) -> list[dict]:
    """Per frame, every member's points under distinct names (to frame them together)."""
    clips = [clip_points(c, ch) for c, ch in zip(characters, channels, strict=True)]
    return [
        {f"{i}:{k}": v for i, clip in enumerate(clips) for k, v in clip[f].items()}
        for f in range(len(clips[0]))
    ]


def _side_by_side(characters, channels, gap: float) -> list[dict]:
    """Shift each member's x so that, over the whole clip, the second stands clear of the
    first by ``gap`` body units; the pair is centred on 0."""
    extents = []
    for character, ch in zip(characters, channels, strict=True):
        points = np.array([p for frame in clip_points(character, ch) for p in frame.values()])
        extents.append((points[:, 0].min(), points[:, 0].max()))
    shift = extents[0][1] - extents[1][0] + gap
    centre = (extents[0][0] + extents[1][1] + shift) / 2
    shifted = []
    for i, ch in enumerate(channels):
        moved = dict(ch)
        moved["x"] = np.asarray(ch["x"]) + (shift if i else 0.0) - centre
        shifted.append(moved)
    return shifted


def _framing(rng: np.random.Generator, spec: MotionSpec, plan: str, audio: bool = False) -> str:
    if spec.name in TRAVELLING or spec.name == "jump":
        return "full"
    if plan in ("humanoid", "blob"):
        # a world made for lip sync frames its talkers closer: at 64 px a full-body mouth
        # opens by a pixel or two (same draw either way, so other samples do not change)
        p = [0.2, 0.3, 0.5] if audio and spec.name == "talk" else [0.7, 0.2, 0.1]
        return str(rng.choice(["full", "upper", "close"], p=p))
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


__all__ = ["WorldConfig", "WorldSample", "make_duet", "make_sample", "motion_caption", "render_parts"]
