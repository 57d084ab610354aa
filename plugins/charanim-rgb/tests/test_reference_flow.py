"""The RGB conditioner's reference warp: the reference moved by the driver's optical flow."""

import numpy as np
import torch

from charanim.conditioning import Driving, OutputSpec, Reference
from charanim.engine.reference_warp import warped_reference
from charanim.io.image import image_from_array
from charanim.io.video import Video

SIZE = 64


def _striped_background() -> np.ndarray:
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    stripes = ((xs + ys) // 4) % 2 == 0
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[stripes], image[~stripes] = (30, 70, 160), (20, 50, 120)
    return image


def _paste(image: np.ndarray, x: int, y: int, width: int, height: int, colours) -> np.ndarray:
    """A patch of 2x2 blocks of the two colours, drawn at random (a texture the flow can
    follow without the ambiguity of a periodic one), at (x, y)."""
    out = image.copy()
    blocks = np.random.default_rng(0).random(((height + 1) // 2, (width + 1) // 2)) < 0.5
    first = np.kron(blocks, np.ones((2, 2), bool))[:height, :width]
    patch = np.where(first[..., None], np.array(colours[0]), np.array(colours[1])).astype(np.uint8)
    out[y : y + height, x : x + width] = patch
    return out


def _centre_x(frame: np.ndarray, colour) -> float:
    near = np.linalg.norm(frame.astype(float) - np.array(colour, float), axis=-1) < 40
    return float(np.nonzero(near)[1].mean())


def test_character_box_finds_a_figure_on_a_patterned_background():
    from charanim_rgb.flow import character_box

    image = _paste(_striped_background(), 20, 10, 18, 40, ((230, 200, 40), (200, 40, 40)))
    box = character_box(image)
    assert np.abs(box - np.array([20, 10, 38, 50])).max() <= 2
    # nothing but background: the whole image, so the flow applies unscaled
    assert np.array_equal(character_box(_striped_background()), [0, 0, SIZE, SIZE])
    assert np.array_equal(character_box(image[:4, :4]), [0, 0, 4, 4])  # too small to segment


def test_the_reference_follows_the_drivers_motion_scaled_by_the_two_boxes():
    from charanim_rgb.conditioner import RGBConditioner

    background = np.full((SIZE, SIZE, 3), 128, np.uint8)
    # the driver: a 12x12 patch moving 1 px right per frame; the reference: 18x18 (1.5x)
    frames = np.stack(
        [_paste(background, 8 + t, 24, 12, 12, ((250, 250, 250), (10, 10, 10))) for t in range(5)]
    )
    reference = _paste(background, 30, 20, 18, 18, ((240, 30, 30), (30, 30, 240)))
    spec = OutputSpec(SIZE, SIZE, 5, 8.0)
    driving = Driving(video=Video(frames, 8.0, 8.0, (SIZE, SIZE), np.arange(5)))
    condition = RGBConditioner().prepare(driving, Reference(image_from_array(reference)), spec)

    pixels = torch.from_numpy(reference).permute(2, 0, 1).float() / 127.5 - 1
    moved = warped_reference(condition, pixels, spec.frames)
    assert moved.shape == (3, 5, SIZE, SIZE)
    moved = ((moved.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    assert np.array_equal(moved[0], reference)  # frame 0: the reference as it is
    shifts = [_centre_x(frame, (240, 30, 30)) - _centre_x(reference, (240, 30, 30)) for frame in moved]
    assert np.allclose(shifts, 1.5 * np.arange(5), atol=0.8), shifts

    # a training crop (cut) is warped as the same frames of the whole clip
    cut = warped_reference(condition.cut(2), pixels, 3)
    whole = warped_reference(condition, pixels, 5)
    assert torch.allclose(cut, whole[:, 2:])


def test_the_reference_character_region_covers_the_figure_and_not_the_scene():
    from charanim_rgb.flow import character_region

    figure = _paste(_striped_background(), 30, 12, 12, 36, ((240, 30, 30), (230, 200, 40)))
    region = character_region(figure)
    assert region.shape == (SIZE, SIZE) and region.min() >= 0 and region.max() <= 1
    assert (region[12:48, 30:42] > 0.8).all() and (region[14:46, 32:40] == 1).all()  # the figure
    assert (region[:, :26] == 0).all() and (region[:, 46:] == 0).all()  # the scene beside it
    assert (region[:8] == 0).all() and (region[52:] == 0).all()
    # no character found: all of it is character, so no scene is kept
    assert (character_region(_striped_background()) == 1).all()
