"""Measuring motion from keypoints, and naming it.

Everything is measured in units of the body's own size (the torso length: shoulders to
hips), so the same motion reads the same on a small or a large figure. For human
skeletons (COCO-17) the classifier recognises travel (walk, run, with direction),
turning, jumping, squatting, kicking, waving, dancing, gesturing while talking, and
standing still; for other skeletons it reports travel and which parts move. It says
only what it measured: no person found means no person described.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from charanim.pose.formats import get_format

SIDES = ("left", "right")


@dataclass
class MotionReading:
    label: str  # idle, walk, run, turn, jump, squat, kick, wave, dance, talk, move, none
    side: str | None  # the character's own side, where it matters
    text: str
    measures: dict


def _series(points: np.ndarray, fmt: str, name: str) -> np.ndarray:
    """``[F, 3]`` of one keypoint; missing frames have NaN coordinates."""
    out = points[:, get_format(fmt).index(name)].astype(np.float64)
    out[out[:, 2] <= 0.3, :2] = np.nan
    return out


def _mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a[:, :2] + b[:, :2]) / 2


def _range(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max() - finite.min()) if len(finite) > 1 else 0.0


def _share(condition: np.ndarray) -> float:
    return float(np.nanmean(condition.astype(float))) if condition.size else 0.0


def _direction(dx: float) -> str:
    return "to the right" if dx > 0 else "to the left"


def read_human_motion(points: np.ndarray, fps: float) -> MotionReading:
    """Classify ``[F, 17, 3]`` COCO-17 keypoints (image pixels, y down)."""
    with warnings.catch_warnings():  # joints missing in every frame give empty statistics
        warnings.simplefilter("ignore", RuntimeWarning)
        return _read_human_motion(points, fps)


def _read_human_motion(points: np.ndarray, fps: float) -> MotionReading:
    get = lambda name: _series(points, "coco17", name)  # noqa: E731
    shoulders = {s: get(f"{s}_shoulder") for s in SIDES}
    hips = {s: get(f"{s}_hip") for s in SIDES}
    wrists = {s: get(f"{s}_wrist") for s in SIDES}
    ankles = {s: get(f"{s}_ankle") for s in SIDES}
    elbows = {s: get(f"{s}_elbow") for s in SIDES}
    neck, pelvis = _mid(shoulders["left"], shoulders["right"]), _mid(hips["left"], hips["right"])
    torso = np.linalg.norm(neck - pelvis, axis=1)
    span = np.abs(shoulders["left"][:, 0] - shoulders["right"][:, 0])
    if np.isfinite(torso).any():
        scale = float(np.nanmedian(torso))
    elif np.isfinite(span).any():  # close-ups hide the hips: shoulders span about a torso length
        scale = float(np.nanmax(span)) / 0.85
    else:
        return MotionReading("none", None, "", {"reason": "no shoulders or hips visible"})
    if scale <= 1e-3:
        return MotionReading("none", None, "", {"reason": "the skeleton is too small"})
    root = np.where(np.isfinite(pelvis), pelvis, neck)
    seconds = max(len(points) / fps, 1e-6)
    finite_x = root[np.isfinite(root[:, 0]), 0]
    travel = (
        float((np.median(finite_x[-3:]) - np.median(finite_x[:3])) / scale) if len(finite_x) >= 2 else 0.0
    )
    rise = _range(root[:, 1]) / scale
    width = (shoulders["left"][:, 0] - shoulders["right"][:, 0]) / scale  # > 0 facing the camera
    flips = np.nanmin(width) < 0 < np.nanmax(width) if np.isfinite(width).any() else False
    narrowing = (
        np.nanmin(np.abs(width)) / max(np.nanmax(np.abs(width)), 1e-6) if np.isfinite(width).any() else 1.0
    )
    raised = {s: _share((shoulders[s][:, 1] - wrists[s][:, 1]) / scale > 0.1) for s in SIDES}
    mid_height = {
        s: _share((wrists[s][:, 1] < pelvis[:, 1]) & (wrists[s][:, 1] > neck[:, 1] - 0.2 * scale))
        for s in SIDES
    }
    bent = {s: _share(wrists[s][:, 1] < elbows[s][:, 1] - 0.05 * scale) for s in SIDES}
    wrist_motion = {
        s: float(np.nanstd(wrists[s][:, :2] - shoulders[s][:, :2], axis=0).sum() / scale)
        if np.isfinite(wrists[s]).any()
        else 0.0
        for s in SIDES
    }
    lower = np.fmax(ankles["left"][:, 1], ankles["right"][:, 1])
    lift = {s: (lower - ankles[s][:, 1]) / scale for s in SIDES}
    ground = np.nanmax(lower) if np.isfinite(lower).any() else np.nan
    airborne = float(np.nanmax((ground - lower) / scale)) if np.isfinite(lower).any() else 0.0
    max_lift = {s: float(np.nanmax(lift[s])) if np.isfinite(lift[s]).any() else 0.0 for s in SIDES}
    legs = np.fmax(np.abs(lift["left"]), np.abs(lift["right"]))
    leg_height = (np.fmax(ankles["left"][:, 1], ankles["right"][:, 1]) - pelvis[:, 1]) / scale
    squat_depth = (
        (np.nanmax(leg_height) - np.nanmin(leg_height)) / max(np.nanmax(leg_height), 1e-6)
        if np.isfinite(leg_height).any()
        else 0.0
    )
    speed = abs(travel) / seconds
    measures = {
        "torso_pixels": round(scale, 2), "travel": round(travel, 3), "speed_per_second": round(speed, 3),
        "vertical_range": round(rise, 3), "airborne": round(airborne, 3), "shoulder_flip": bool(flips), "shoulder_narrowing": round(float(narrowing), 3),
        "wrist_raised": {s: round(v, 2) for s, v in raised.items()}, "wrist_motion": {s: round(v, 3) for s, v in wrist_motion.items()},
        "ankle_lift": {s: round(v, 3) for s, v in max_lift.items()}, "squat_depth": round(float(squat_depth), 3),
        "leg_activity": round(float(np.nanmean(legs)) if np.isfinite(legs).any() else 0.0, 3),
    }  # fmt: skip

    if flips or narrowing < 0.3:
        return MotionReading("turn", None, "turns around", measures)
    if abs(travel) > 0.6:
        if speed > 1.6:
            return MotionReading("run", None, f"runs {_direction(travel)}", measures)
        pace = "slow" if speed < 0.6 else "brisk" if speed > 1.0 else "steady"
        return MotionReading("walk", None, f"walks {_direction(travel)} at a {pace} pace", measures)
    if airborne > 0.25:  # both feet leave the ground
        return MotionReading("jump", None, "jumps up and down", measures)
    if squat_depth > 0.15 and rise > 0.2:  # the hips drop, the feet stay
        return MotionReading("squat", None, "squats down and stands up", measures)
    kick_side = max(SIDES, key=lambda s: max_lift[s])
    other = "right" if kick_side == "left" else "left"
    if max_lift[kick_side] > 0.25 and max_lift[other] < 0.12:
        return MotionReading("kick", kick_side, f"kicks with the {kick_side} leg", measures)
    if min(raised.values()) > 0.3 or min(wrist_motion.values()) > 0.35:
        return MotionReading("dance", None, "dances, swinging both arms", measures)
    wave_side = max(SIDES, key=lambda s: raised[s])
    if raised[wave_side] > 0.5:
        return MotionReading("wave", wave_side, f"waves with the {wave_side} hand", measures)
    busy = max(SIDES, key=lambda s: wrist_motion[s])
    calm = "right" if busy == "left" else "left"
    if (
        wrist_motion[busy] > 0.1
        and wrist_motion[calm] < 0.5 * wrist_motion[busy]
        and mid_height[busy] + bent[busy] > 0.3
    ):
        return MotionReading("talk", busy, f"talks, gesturing with the {busy} hand", measures)
    if not np.isfinite(ankles["left"]).any() and not np.isfinite(ankles["right"]).any():
        return MotionReading("idle", None, "keeps still above the waist (the legs are out of view)", measures)
    return MotionReading("idle", None, "stands still, breathing gently", measures)


def body_part(fmt: str, name: str) -> str:
    """The body part a keypoint belongs to, in words (``right_front_paw`` -> ``right front leg``)."""
    side = "left " if name.startswith("left") else "right " if name.startswith("right") else ""
    if fmt == "ap10k":
        if "front" in name or "shoulder" in name or "elbow" in name:
            return f"{side}front leg"
        if "back" in name or "hip" in name or "knee" in name:
            return f"{side}hind leg"
        return "tail" if "tail" in name else "head"
    if fmt == "bird":
        if "wing" in name:
            return f"{side}wing"
        if "knee" in name or "foot" in name:
            return f"{side}leg"
        return "tail" if "tail" in name else "head"
    if fmt == "blob6":
        return "limbs" if name.startswith("limb") else "face"
    return name.replace("_", " ")


def read_generic_motion(points: np.ndarray, fmt: str, fps: float) -> MotionReading:
    """Any skeleton: travel and which named parts move (no guesses about what they mean)."""
    names = get_format(fmt).keypoints
    present = points[..., 2] > 0.3
    if not present.any():
        return MotionReading("none", None, "", {"reason": "no keypoints"})
    xy = np.where(present[..., None], points[..., :2], np.nan)
    size = max(
        np.nanmax(xy[..., 1]) - np.nanmin(xy[..., 1]), np.nanmax(xy[..., 0]) - np.nanmin(xy[..., 0]), 1e-3
    )
    centre = np.nanmean(xy, axis=1)
    travel = float((centre[-1, 0] - centre[0, 0]) / size) if np.isfinite(centre[[0, -1], 0]).all() else 0.0
    relative = xy - centre[:, None]
    movement = np.nanstd(relative, axis=0).sum(-1) / size
    moving = []
    for i in np.argsort(-np.nan_to_num(movement)):
        part = body_part(fmt, names[i])
        if movement[i] > 0.05 and part not in moving:
            moving.append(part)
    moving = moving[:2]
    measures = {"travel": round(travel, 3), "moving": moving}
    if abs(travel) > 0.3:
        return MotionReading("move", None, f"moves {_direction(travel)}", measures)
    if moving:
        return MotionReading("move", None, f"moves its {' and '.join(moving)}", measures)
    return MotionReading("idle", None, "stays still", measures)
