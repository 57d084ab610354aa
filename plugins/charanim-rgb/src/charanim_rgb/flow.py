"""Where the reference's pixels go, frame by frame, from the driving clip's optical flow.

Models trained with ``reference_warp_channels`` take the reference moved to each target
frame as a hint (:mod:`charanim.engine.reference_warp`). The pose conditioner moves it
bone by bone; with RGB driving there is no skeleton, so the motion comes from the
driver's dense optical flow (OpenCV's DIS) from each frame back to the first, carried
onto the reference by mapping the two characters' boxes onto each other. That is
relative motion: it assumes the reference is posed as the driving clip starts (as
first-order-motion tools do); from another pose it moves the wrong limbs, and a model
trained on such pairs learns to trust it less (docs/charanim-tiny-training.md measures
both).

The boxes come from OpenCV's GrabCut, started with the image's border as background
(on the world's test pairs the box overlaps the true one by 0.84 IoU on average); where
it finds no plausible character the whole frame is the box, so the flow applies unscaled.
Its mask of the reference's character also tells the engine which of the reference's
pixels are scene (:func:`character_region`, for ``animate --scene keep``).
"""

from __future__ import annotations

import hashlib
from functools import cached_property

import cv2
import numpy as np

#: a foreground covering less or more of the image than this is not a character
MIN_SHARE, MAX_SHARE = 0.005, 0.9
#: images smaller than this on a side are all character (GrabCut needs a border around it)
MIN_SIZE = 8
#: images are segmented at most this large (the box is scaled back)
CUT_SIZE = 96
#: the character's mask (:func:`character_region`) reaches this share of the image's
#: shorter side past what GrabCut finds (its edge falls inside the character's rim)
REGION_MARGIN = 0.02
#: optical flow is computed on frames at least this large (smaller ones are upscaled)
FLOW_SIZE = 256
#: characters already found, by image content (training sees each clip's first frame and
#: reference every epoch): their box and their mask at the segmentation's size, packed;
#: bounded, oldest dropped first
_FOUND: dict[bytes, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}
_MAX_FOUND = 50_000


def character_box(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``float32 [x0, y0, x1, y1]`` in pixels: the box of the
    foreground GrabCut finds inside the image's border, or the whole image when that
    is not a plausible character."""
    return _found(image)[0].copy()


def character_mask(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``bool [H, W]``: the character GrabCut finds (its parts
    large enough to count, as in :func:`character_box`), or the whole image when it
    finds no plausible character."""
    _, packed, shape = _found(image)
    small = np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape)
    height, width = image.shape[:2]
    if shape == (height, width):
        return small.astype(bool)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def character_region(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``float32 [H, W]``: 1 on the character :func:`character_mask`
    finds, grown by ``REGION_MARGIN`` and feathered, 0 on the scene around it."""
    height, width = image.shape[:2]
    margin = max(1, round(REGION_MARGIN * min(height, width)))
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    region = cv2.dilate(character_mask(image).astype(np.uint8), grow).astype(np.float32)
    return cv2.blur(region, (3, 3))  # a soft seam, not a cut-out edge


def _found(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    image = np.ascontiguousarray(image)
    key = hashlib.blake2b(image.tobytes(), digest_size=16, person=b"charanim-box").digest() + bytes(
        str(image.shape), "ascii"
    )
    if key not in _FOUND:
        if len(_FOUND) >= _MAX_FOUND:
            del _FOUND[next(iter(_FOUND))]
        box, mask = _grabcut(image)
        _FOUND[key] = (box, np.packbits(mask), mask.shape)
    return _FOUND[key]


def _grabcut(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The character's box in image pixels and its mask at the segmentation's size."""
    height, width = image.shape[:2]
    whole = np.array([0, 0, width, height], np.float32)
    if min(height, width) < MIN_SIZE:  # no room for a border and a character inside it
        return whole, np.ones((height, width), np.uint8)
    factor = min(1.0, CUT_SIZE / max(height, width))
    small = (
        image
        if factor == 1.0
        else cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    )
    h, w = small.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's colour models start from a k-means: the same box every time
    # the outer two pixels are background; GrabCut learns both colour models from there
    cv2.grabCut(small[..., ::-1].copy(), mask, (2, 2, w - 4, h - 4), background, foreground, 3,
                cv2.GC_INIT_WITH_RECT)  # fmt: skip
    found = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if not MIN_SHARE <= found.mean() <= MAX_SHARE:
        return whole, np.ones((h, w), np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(found)
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.flatnonzero(areas >= 0.1 * areas.max())  # specks apart from the character are noise
    parts = stats[1:][kept]
    x0, y0 = parts[:, 0].min(), parts[:, 1].min()
    x1 = (parts[:, 0] + parts[:, 2]).max()
    y1 = (parts[:, 1] + parts[:, 3]).max()
    character = np.isin(labels, kept + 1).astype(np.uint8)
    return np.array([x0, y0, x1, y1], np.float32) / factor, character


class ReferenceFlow:
    """The sampling grid that moves a reference by a driving clip's flow.

    ``driving`` ``uint8 [F, H, W, 3]`` and ``reference`` ``uint8 [H, W, 3]``, both on the
    output grid. Calling it with ``(start, count)`` gives ``float32 [count, H, W, 2]``:
    for each pixel of frames ``start .. start + count - 1``, the (x, y) of the reference
    to sample there. Computed on demand (only models with warp channels ask), each
    frame's flow once.
    """

    def __init__(self, driving: np.ndarray, reference: np.ndarray):
        self.driving, self.reference = driving, reference
        self._grids: dict[int, np.ndarray] = {}
        self._dis = None

    @cached_property
    def gray(self) -> np.ndarray:
        return np.stack([cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in self.driving])

    @cached_property
    def driving_box(self) -> np.ndarray:
        return character_box(self.driving[0])

    @cached_property
    def reference_box(self) -> np.ndarray:
        return character_box(self.reference)

    def __call__(self, start: int, count: int) -> np.ndarray:
        last = len(self.driving) - 1
        return np.stack([self._grid(min(start + i, last)) for i in range(count)])

    def _grid(self, index: int) -> np.ndarray:
        if index not in self._grids:
            self._grids[index] = self._compute(index)
        return self._grids[index]

    def _compute(self, index: int) -> np.ndarray:
        height, width = self.gray.shape[1:]
        ref_box, drv_box = self.reference_box, self.driving_box
        scale = (drv_box[2:] - drv_box[:2]) / np.maximum(ref_box[2:] - ref_box[:2], 1.0)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        # each reference pixel's place on the driver
        dx = drv_box[0] + (xs - ref_box[0]) * scale[0]
        dy = drv_box[1] + (ys - ref_box[1]) * scale[1]
        if index == 0:
            back = np.zeros((height, width, 2), np.float32)
        else:
            if self._dis is None:
                self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            back = self._flow(self.gray[index], self.gray[0])  # frame index -> frame 0
        fx = cv2.remap(back[..., 0], dx, dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fy = cv2.remap(back[..., 1], dx, dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sx = (dx + fx - drv_box[0]) / scale[0] + ref_box[0]
        sy = (dy + fy - drv_box[1]) / scale[1] + ref_box[1]
        return np.stack([sx, sy], axis=-1).astype(np.float32)

    def _flow(self, moving: np.ndarray, first: np.ndarray) -> np.ndarray:
        """DIS flow ``moving -> first``, computed at ``FLOW_SIZE`` at least: on a small grid
        its pyramid is too shallow for motions of a few pixels."""
        height, width = moving.shape
        factor = max(1, int(np.ceil(FLOW_SIZE / max(height, width))))
        if factor == 1:
            return self._dis.calc(moving, first, None)
        size = (width * factor, height * factor)
        up = [cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) for image in (moving, first)]
        flow = self._dis.calc(up[0], up[1], None)
        return cv2.resize(flow, (width, height), interpolation=cv2.INTER_AREA) / factor
