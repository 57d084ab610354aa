import numpy as np
import pytest
import torch

from charanim.io.pixels import to_pixels, to_uint8


@pytest.mark.parametrize("shape", [(5, 7, 3), (4, 5, 7, 3)], ids=["image", "clip"])
def test_uint8_round_trip_is_exact_and_channel_first(shape):
    frames = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    pixels = to_pixels(frames)
    assert pixels.shape == (3, *shape[:-1]) and pixels.dtype == torch.float32
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert np.array_equal(to_uint8(pixels), frames)


def test_to_uint8_clamps_and_rounds():
    pixels = torch.tensor([-3.0, -1.0, 0.0, 0.004, 1.0, 2.5]).view(1, 1, 6).expand(3, 1, 6)
    assert to_uint8(pixels)[0, :, 0].tolist() == [0, 0, 128, 128, 255, 255]


def test_non_contiguous_frames_convert():
    frames = np.arange(2 * 4 * 3 * 3, dtype=np.uint8).reshape(2, 4, 3, 3)[:, ::2]
    assert np.array_equal(to_uint8(to_pixels(frames)), frames)
