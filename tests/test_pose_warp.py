"""Moving an image with its skeleton (pose.warp) and the warped-reference model input."""

import numpy as np
import torch

from charanim.conditioning import Condition, InjectionSite
from charanim.engine.reference_warp import warped_reference
from charanim.pose.formats import get_format
from charanim.pose.warp import bone_warp, cleared_of_bones, fill_from_around, near_bones, seen_bones

FORMAT = "coco17"


def _skeleton(shift=(0.0, 0.0)) -> np.ndarray:
    """A standing coco17 figure in a 64x64 frame (every keypoint seen), moved by ``shift``."""
    points = np.zeros((len(get_format(FORMAT)), 3))
    layout = {
        0: (32, 10), 1: (30, 8), 2: (34, 8), 3: (28, 9), 4: (36, 9), 5: (26, 18), 6: (38, 18),
        7: (22, 28), 8: (42, 28), 9: (20, 36), 10: (44, 36), 11: (28, 36), 12: (36, 36),
        13: (27, 46), 14: (37, 46), 15: (27, 56), 16: (37, 56),
    }  # fmt: skip
    for index, (x, y) in layout.items():
        points[index] = (x + shift[0], y + shift[1], 1.0)
    return points


def _figure() -> tuple[np.ndarray, np.ndarray]:
    """A grey backdrop with the skeleton's limbs painted in distinct colours, and its mask."""
    image = np.full((64, 64, 3), 90, np.uint8)
    points = _skeleton()
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    mask = np.zeros((64, 64), bool)
    for index, (a, b) in enumerate(seen_bones(points, FORMAT)):
        (ax, ay), (bx, by) = points[a, :2], points[b, :2]
        t = np.clip(((xs - ax) * (bx - ax) + (ys - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2), 0, 1)
        limb = np.hypot(xs - ax - t * (bx - ax), ys - ay - t * (by - ay)) < 1.5
        image[limb] = (40 + 12 * index, 200 - 9 * index, 30 + 7 * index)
        mask |= limb
    return image, mask


def test_an_unmoved_skeleton_gives_the_image_back_and_base_where_nothing_moves():
    image, mask = _figure()
    base = np.zeros_like(image)
    frames = bone_warp(image, base, mask, _skeleton(), _skeleton()[None].repeat(3, 0), FORMAT)
    assert frames.shape == (3, 64, 64, 3)
    expected = np.where(mask[..., None], image, base)
    assert np.array_equal(frames[0], expected) and np.array_equal(frames[2], expected)


def test_a_moved_skeleton_carries_its_pixels_along():
    image, mask = _figure()
    moved = _skeleton(shift=(6.0, -3.0))[None]
    frame = bone_warp(image, image, mask, _skeleton(), moved, FORMAT)[0]
    # every limb pixel of the image is now 6 px right and 3 px up, over the unchanged backdrop
    ys, xs = np.nonzero(mask)
    assert np.mean(np.all(frame[ys - 3, xs + 6] == image[ys, xs], axis=-1)) > 0.95
    # a hidden bone moves nothing: with every keypoint unseen the frame is the base
    hidden = moved.copy()
    hidden[..., 2] = 0
    assert np.array_equal(bone_warp(image, image, mask, _skeleton(), hidden, FORMAT)[0], image)


def test_near_bones_holds_the_limbs_and_not_the_far_backdrop():
    image, mask = _figure()
    near = near_bones(_skeleton(), FORMAT, (64, 64))
    assert near[mask].all()  # the painted limbs lie on the bones
    assert not near[:, :12].any() and not near[:, 53:].any()  # the frame's left and right sides are far
    assert 0.1 < near.mean() < 0.6


def test_the_warped_reference_follows_the_conditions_skeleton_from_its_cut():
    image, _ = _figure()
    reference = torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1
    still = Condition("rgb", InjectionSite.IN_CONTEXT, video=torch.zeros(3, 4, 64, 64))
    assert torch.equal(warped_reference(still, reference, 4), reference[:, None].expand(-1, 4, -1, -1))
    assert torch.equal(warped_reference(None, reference, 2), reference[:, None].expand(-1, 2, -1, -1))

    motion = np.stack([_skeleton(shift=(float(i), 0.0)) for i in range(6)])
    meta = {"keypoints": motion, "reference_keypoints": _skeleton(), "body_format": FORMAT, "cut": 2}
    condition = Condition("pose", InjectionSite.IN_CONTEXT, video=torch.zeros(3, 4, 64, 64), meta=meta)
    warped = warped_reference(condition, reference, 4)
    assert warped.shape == (3, 4, 64, 64)
    movable = near_bones(_skeleton(), FORMAT, (64, 64))
    pixels = reference.permute(1, 2, 0).numpy()
    expected = bone_warp(pixels, pixels, movable, _skeleton(), motion[2:], FORMAT)
    assert torch.allclose(warped, torch.from_numpy(expected).permute(3, 0, 1, 2))
    assert not torch.equal(warped[:, 1], warped[:, 0])  # frames 2 and 3 of the clip differ
    # a window longer than the skeletons left holds the last pose
    assert torch.equal(warped_reference(condition, reference, 6)[:, 5], warped[:, 3])


def test_a_hole_is_filled_from_the_pixels_around_it_and_nothing_else_changes():
    # left half red, right half blue; a hole across the seam takes each side's colour near it
    image = np.zeros((16, 16, 3), np.float32)
    image[:, :8] = (200, 0, 0)
    image[:, 8:] = (0, 0, 200)
    hole = np.zeros((16, 16), bool)
    hole[4:12, 3:13] = True
    filled = fill_from_around(image, hole)
    assert np.array_equal(filled[~hole], image[~hole])
    assert filled[8, 3, 0] > 150 and filled[8, 3, 2] < 50  # near the red side: red
    assert filled[8, 12, 2] > 150 and filled[8, 12, 0] < 50  # near the blue side: blue
    assert np.all((filled >= 0) & (filled <= 200))  # a blend of what is around, no overshoot
    # a uniform surround fills uniformly; no hole, or nothing known: unchanged
    grey = np.full((16, 16, 3), 90.0, np.float32)
    assert np.allclose(fill_from_around(grey, hole), 90.0)
    assert np.array_equal(fill_from_around(image, np.zeros_like(hole)), image)
    assert np.array_equal(fill_from_around(image, np.ones_like(hole)), image)


def test_a_warp_with_vacated_pixels_clears_behind_a_moved_limb_and_keeps_what_stood_still():
    image, mask = _figure()
    cleared = cleared_of_bones(image, _skeleton(), FORMAT)
    near = near_bones(_skeleton(), FORMAT, (64, 64))
    assert np.array_equal(cleared[~near], image[~near])
    assert np.abs(cleared[mask].astype(int) - 90).max() < 30  # the limbs gone: the grey backdrop, roughly
    # the right forearm (bone 8-10) swung up; the rest of the skeleton stands still
    moved = _skeleton()
    moved[10, :2] = (52, 22)
    ghost = bone_warp(image, image, near, _skeleton(), moved[None], FORMAT)[0]
    clear = bone_warp(image, image, near, _skeleton(), moved[None], FORMAT, vacated=cleared)[0]
    forearm = np.zeros((64, 64), bool)
    forearm[32:37, 43:46] = True  # where the forearm hung (its lower half: nothing moved onto it)
    forearm &= mask
    assert forearm.sum() > 5
    assert np.array_equal(ghost[forearm], image[forearm])  # the limb's ghost
    assert np.abs(clear[forearm].astype(int) - 90).max() < 30  # cleared: the backdrop
    # what stood still (the left leg, far from the moved bone) is the image's own, in both
    leg = mask.copy()
    leg[:, 30:] = False
    leg[:40] = False
    assert np.array_equal(clear[leg], image[leg]) and np.array_equal(ghost[leg], image[leg])
    # and where the forearm landed, both show it
    landed = (ghost != image).any(-1)
    assert landed.sum() > 5 and np.array_equal(clear[landed], ghost[landed])


def test_a_filled_warped_reference_is_the_warp_with_the_reference_cleared_behind_moved_limbs():
    image, _ = _figure()
    reference = torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1
    motion = np.stack([_skeleton(shift=(float(3 * i), 0.0)) for i in range(3)])
    meta = {"keypoints": motion, "reference_keypoints": _skeleton(), "body_format": FORMAT}
    condition = Condition("pose", InjectionSite.IN_CONTEXT, video=torch.zeros(3, 3, 64, 64), meta=meta)
    ghost = warped_reference(condition, reference, 3)
    filled = warped_reference(condition, reference, 3, "filled")
    assert torch.equal(filled[:, 0], ghost[:, 0])  # the first frame does not move
    pixels = reference.permute(1, 2, 0).numpy()
    vacated = cleared_of_bones(pixels, _skeleton(), FORMAT)
    expected = bone_warp(
        pixels, pixels, near_bones(_skeleton(), FORMAT, (64, 64)), _skeleton(), motion, FORMAT, vacated
    )
    assert torch.allclose(filled, torch.from_numpy(expected).permute(3, 0, 1, 2))
    assert not torch.equal(filled[:, 2], ghost[:, 2])


def test_a_bone_of_no_length_in_the_reference_does_not_break_the_warp():
    image, mask = _figure()
    points = _skeleton()
    points[9, :2] = points[7, :2]  # left wrist on the left elbow: the forearm has no length
    moved = _skeleton(shift=(2.0, 1.0))[None]
    frame = bone_warp(image, image, mask, points, moved, FORMAT)[0]
    assert frame.shape == (64, 64, 3) and not np.array_equal(frame, image)


def _owner_everywhere(points, movable, size=(64, 64)):
    """Which bone each pixel moves with, the plain way: every bone's distance at every pixel."""
    bones = seen_bones(points, FORMAT)
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]] + 0.5
    distances = []
    for a, b in bones:
        (ax, ay), (bx, by) = points[a, :2], points[b, :2]
        t = np.clip(
            ((xs - ax) * (bx - ax) + (ys - ay) * (by - ay)) / max((bx - ax) ** 2 + (by - ay) ** 2, 1e-6), 0, 1
        )
        distances.append((xs - ax - t * (bx - ax)) ** 2 + (ys - ay - t * (by - ay)) ** 2)
    distances = np.stack(distances)
    if not isinstance(movable, np.ndarray):
        movable = near_bones(points, FORMAT, size, movable)
    return np.where(movable, distances.argmin(0), -1)


def test_the_pixels_each_bone_owns_are_found_near_the_skeleton_alone_and_cached_per_skeleton():
    from charanim.pose.warp import NEAR_BONE, OWNERSHIP_CACHE, _ownership

    image, mask = _figure()
    for points in (_skeleton(), _skeleton(shift=(-20.0, 15.0))):  # the second partly off the frame
        bones = seen_bones(points, FORMAT)
        for movable in (NEAR_BONE, mask):
            owner, owned = _ownership(points, bones, (64, 64), movable)
            expected = _owner_everywhere(points, movable)
            assert np.array_equal(owner.reshape(64, 64), expected)
            for bone, (count, top, left, bottom, right) in enumerate(owned):
                rows, columns = np.nonzero(expected == bone)
                assert count == len(rows)
                if count:
                    assert (top, left, bottom, right) == (
                        rows.min(),
                        columns.min(),
                        rows.max() + 1,
                        columns.max() + 1,
                    )
    # the same skeleton again is the cached answer, shared, so nobody may write to it
    OWNERSHIP_CACHE.clear()
    points, motion = _skeleton(), _skeleton(shift=(3.0, 2.0))[None].repeat(2, 0)
    first = bone_warp(image, image, NEAR_BONE, points, motion, FORMAT)
    assert len(OWNERSHIP_CACHE) == 1
    (cached,) = OWNERSHIP_CACHE._entries.values()
    assert not cached[0].flags.writeable and not cached[1].flags.writeable
    assert np.array_equal(bone_warp(image, image, NEAR_BONE, points, motion, FORMAT), first)
    assert len(OWNERSHIP_CACHE) == 1
    # the same 17 points read as another format's skeleton are other bones: another entry
    other = bone_warp(image, image, NEAR_BONE, points, motion, "ap10k")
    assert len(OWNERSHIP_CACHE) == 2
    assert np.array_equal(other, bone_warp(image, image, NEAR_BONE, points, motion, "ap10k"))


def test_the_array_cache_keeps_to_its_byte_budget_dropping_the_least_recently_used():
    from charanim.array_cache import ArrayCache

    cache = ArrayCache(budget_bytes=3000)
    made = []

    def make(value):
        made.append(value)
        return np.full(1000, value, np.uint8)

    for value in (1, 2, 3):
        cache.get(value, lambda v=value: make(v))
    cache.get(1, lambda: make(1))  # a hit: 1 becomes the most recently used
    cache.get(4, lambda: make(4))  # over budget: 2, the least recently used, goes
    assert made == [1, 2, 3, 4] and len(cache) == 3 and cache.used == 3000
    cache.get(2, lambda: make(2))
    assert made == [1, 2, 3, 4, 2]  # made again; 3 went
    assert not cache.get(1, lambda: make(1)).flags.writeable
    big = cache.get("big", lambda: np.zeros(5000, np.uint8))  # alone over the budget: returned, not kept
    assert big.shape == (5000,) and "big" not in cache._entries and cache.used <= 3000
