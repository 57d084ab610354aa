import numpy as np
import pytest

from charanim.io.resize import fit_frames, fit_transform


def _frame(width, height):
    frame = np.full((1, height, width, 3), 50, np.uint8)
    frame[:, height // 2, width // 2] = 255
    return frame


@pytest.mark.parametrize("mode", ["contain", "cover", "stretch"])
def test_output_has_the_requested_size(mode):
    out, _ = fit_frames(_frame(80, 40), (32, 32), mode)
    assert out.shape == (1, 32, 32, 3)


def test_contain_pads_with_the_border_colour_and_maps_points():
    frames = np.zeros((1, 40, 80, 3), np.uint8)
    frames[:] = (10, 20, 30)
    out, transform = fit_frames(frames, (32, 32), "contain")
    assert out[0, 0, 0].tolist() == [10, 20, 30]  # padding continues the background
    assert transform.apply(np.array([[0.0, 0.0]])).tolist() == [[0.0, 8.0]]
    assert transform.apply(np.array([[80.0, 40.0]])).tolist() == [[32.0, 24.0]]


def test_cover_crops_and_transform_inverts():
    _, transform = fit_frames(_frame(80, 40), (32, 32), "cover")
    assert transform.scale_x == pytest.approx(0.8)
    assert transform.apply(np.array([[40.0, 20.0]])).tolist() == [[16.0, 16.0]]
    point = np.array([[3.0, 7.0]])
    assert np.allclose(transform.invert(transform.apply(point)), point)


def test_transform_matches_between_functions():
    assert fit_transform((80, 40), (32, 32), "stretch").scale_y == pytest.approx(0.8)
