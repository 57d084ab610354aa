"""Pose maps: skeletons drawn in the OpenPose / DWPose colour convention, at any size.

Human bodies (COCO-17 or OpenPose-18) are drawn as OpenPose-18 in its 17 limb colours
(red at the neck-shoulder, through the spectrum, to magenta at the ears) with joints in
the same palette, limbs at 60 % opacity over black: maps are interchangeable with
those of ControlNet-style tools. Hands use the rainbow of the OpenPose hand renderer;
face points are white dots. Other body formats get an evenly spaced hue per bone.
Missing or low-confidence joints are not drawn, nor are bones that touch them.
"""

from __future__ import annotations

import colorsys
import functools

import numpy as np

from charanim.pose.formats import FORMATS, OPENPOSE18, coco_to_openpose
from charanim.raster import Fill, Part, render_part_tracks, render_parts

#: OpenPose's body palette (RGB), one colour per limb and per joint
OPENPOSE_COLOURS = np.array([
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
    [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
    [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
], np.float32) / 255.0  # fmt: skip
HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
              (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]  # fmt: skip


def _hue(i: int, n: int) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(i / max(n, 1), 1.0, 1.0)


def _body_parts(fmt, present: np.ndarray) -> list[tuple[list[int], str, tuple, float]]:
    """What a body with the joints ``present`` is drawn as, in drawing order (bones, then
    joints): each part's joints, kind, colour and opacity."""
    parts = []
    for i, (a, b) in enumerate(fmt.bones):
        if present[a] and present[b]:
            colour = tuple(OPENPOSE_COLOURS[i % 18]) if fmt is OPENPOSE18 else _hue(i, len(fmt.bones))
            parts.append(([a, b], "capsule", colour, 0.6))
    for i in np.flatnonzero(present):
        colour = tuple(OPENPOSE_COLOURS[i % 18]) if fmt is OPENPOSE18 else _hue(int(i), len(fmt))
        parts.append(([int(i)], "ellipse", colour, 1.0))
    return parts


def default_width(size: tuple[int, int]) -> float:
    """Limb width in pixels: DWPose's 4 px at 512, never below 1.5 px so small maps stay legible."""
    return max(1.5, 4.0 * min(size) / 512.0)


def pose_parts(
    body: np.ndarray,
    body_format: str,
    width: float,
    hands: np.ndarray | None = None,
    face: np.ndarray | None = None,
    threshold: float = 0.3,
) -> list[Part]:
    """The parts of one person's pose map (pixel coordinates)."""
    if body_format == "coco17":
        body, body_format = coco_to_openpose(body), "openpose18"
    parts = [
        Part(kind, body[joints, :2], (width, width), Fill(colour, shade=0.0), outline=False, opacity=opacity)
        for joints, kind, colour, opacity in _body_parts(FORMATS[body_format], body[:, 2] >= threshold)
    ]
    for hand in () if hands is None else hands:
        seen = hand[:, 2] >= threshold
        for i, (a, b) in enumerate(HAND_EDGES):
            if seen[a] and seen[b]:
                parts.append(
                    Part(
                        "capsule",
                        hand[[a, b], :2],
                        (width / 2, width / 2),
                        Fill(_hue(i, 20), shade=0.0),
                        outline=False,
                    )
                )
        for i in np.flatnonzero(seen):
            parts.append(
                Part(
                    "ellipse",
                    hand[i : i + 1, :2],
                    (width / 2, width / 2),
                    Fill((0.0, 0.0, 1.0), shade=0.0),
                    outline=False,
                )
            )
    if face is not None:
        for i in np.flatnonzero(face[:, 2] >= threshold):
            parts.append(
                Part(
                    "ellipse",
                    face[i : i + 1, :2],
                    (width / 3, width / 3),
                    Fill((1.0, 1.0, 1.0), shade=0.0),
                    outline=False,
                )
            )
    return parts


def render_pose(
    body: np.ndarray,
    body_format: str,
    size: tuple[int, int],
    hands: np.ndarray | None = None,
    face: np.ndarray | None = None,
    width: float | None = None,
    threshold: float = 0.3,
    canvas: np.ndarray | None = None,
) -> np.ndarray:
    """One pose map, ``uint8 [H, W, 3]`` (``size`` = (width, height)); over ``canvas`` if given."""
    w, h = size
    base = np.zeros((h, w, 3), np.float32) if canvas is None else canvas.astype(np.float32) / 255.0
    parts = pose_parts(body, body_format, width or default_width(size), hands, face, threshold)
    image, _ = render_parts(parts, base)
    return np.round(image * 255).astype(np.uint8)


def render_pose_sequence(
    bodies: np.ndarray,
    body_format: str,
    size: tuple[int, int],
    width: float | None = None,
    threshold: float = 0.3,
) -> np.ndarray:
    """``[F, K, 3]`` -> ``uint8 [F, H, W, 3]``, drawn in one pass over all frames: the same
    pixels as frame by frame, several times faster. A joint missing from some frames (a
    low-confidence wrist, a limb out of the picture) is part of every frame's drawing,
    with no opacity where it is missing, so the clip still draws in one pass."""
    w, h = size
    width = width or default_width(size)
    bodies = np.asarray(bodies)
    if body_format == "coco17":
        bodies, body_format = coco_to_openpose(bodies), "openpose18"
    # [F, K]: what render_pose would draw (a NaN confidence is not shown; a joint with no
    # finite place falls outside every window there)
    shown = (bodies[..., 2] >= threshold) & np.isfinite(bodies[..., :2]).all(-1)
    anywhere = shown.any(0)
    if not anywhere.any():
        return np.zeros((len(bodies), h, w, 3), np.uint8)
    stand_in = bodies.copy()
    # where a joint is missing, the place of the first frame that shows it
    first_seen = bodies[shown.argmax(0), np.arange(bodies.shape[1]), :2]  # [K, 2]
    missing = ~shown & anywhere
    stand_in[..., :2] = np.where(missing[..., None], first_seen, bodies[..., :2])
    stand_in[..., 2] = np.where(anywhere, 1.0, np.nan)  # NaN: never drawn, whatever the threshold
    # every frame draws the same parts (capsules and round dots) in the same order: each
    # part once, with its joints' places in every frame
    parts, ends = _track_parts(body_format, tuple((stand_in[0, :, 2] >= threshold).tolist()), width)
    tracks = stand_in[:, ends, :2].transpose(1, 0, 2, 3)  # [P, F, 2, 2]
    visible = _part_visibility(shown, anywhere, body_format)
    images = render_part_tracks(parts, tracks, np.zeros((h, w, 3), np.float32), visible)
    images *= 255
    return np.ascontiguousarray(np.round(images, out=images).astype(np.uint8))


@functools.lru_cache(maxsize=256)
def _track_parts(body_format: str, present: tuple[bool, ...], width: float) -> tuple[list[Part], np.ndarray]:
    """The parts :func:`render_pose_sequence` draws for a skeleton with the joints
    ``present`` (the same for every clip of a format: cached), and each part's two joints
    ``[P, 2]`` (a dot: its joint twice)."""
    drawn = _body_parts(FORMATS[body_format], np.array(present))
    parts = [Part(kind, None, (width, width), Fill(colour, shade=0.0), outline=False, opacity=opacity)
             for _, kind, colour, opacity in drawn]  # fmt: skip
    ends = np.array([(joints[0], joints[-1]) for joints, *_ in drawn], int).reshape(-1, 2)
    ends.flags.writeable = False
    return parts, ends


def _part_visibility(shown: np.ndarray, anywhere: np.ndarray, body_format: str) -> np.ndarray:
    """``[F, P]``: 1 where a frame draws each part :func:`pose_parts` makes of a skeleton
    with the joints ``anywhere`` (bones first, then joints, in its order), else 0."""
    bones = [shown[:, a] & shown[:, b] for a, b in FORMATS[body_format].bones if anywhere[a] and anywhere[b]]
    joints = [shown[:, i] for i in np.flatnonzero(anywhere)]
    return np.stack(bones + joints, axis=1).astype(np.float32)
