"""The Python API takes an already-decoded driving video as well as a path."""

import numpy as np

from charanim.api import animate, load_pipeline
from charanim.io.video import read_video


def test_a_decoded_video_animates_like_its_file(tiny_model, media):
    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    from_file = animate(media["reference"], media["drive"], pipeline=pipeline, steps=2, fps=8.0)
    decoded = read_video(media["drive"], fps=8.0)
    from_memory = animate(media["reference"], decoded, pipeline=pipeline, steps=2)
    assert np.array_equal(from_file["result"].frames, from_memory["result"].frames)
    shorter = animate(media["reference"], decoded, pipeline=pipeline, steps=2, max_frames=5)
    assert shorter["frames"] == 5


def test_a_frame_rate_above_the_driving_video_s_says_its_frames_repeat(tiny_model, media):
    import pytest

    from charanim.errors import CharanimWarning

    pipeline = load_pipeline(tiny_model, "rgb", device="cpu")
    with pytest.warns(
        CharanimWarning, match="above the driving video's 8 fps: its frames are repeated, 36 of"
    ):
        summary = animate(media["reference"], media["drive"], pipeline=pipeline, steps=1, fps=24.0)
    assert summary["frames"] == 36  # 12 frames at 8 fps, 1.5 s at 24
