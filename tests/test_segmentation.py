"""Foreground masks for dropping the driving background: by motion against a still
camera (any character) and by person segmentation (MediaPipe, people)."""

import numpy as np
import pytest

from charanim.errors import ConditionerInputError
from charanim.segmentation import foreground_masks, motion_masks


def _moving_square(frames=8, size=32):
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)  # busy but still
    clip = np.repeat(background[None], frames, axis=0)
    truth = np.zeros((frames, size, size), bool)
    for i in range(frames):
        x = 2 + 3 * i
        clip[i, 10:18, x : x + 6] = (250, 30, 30)
        truth[i, 10:18, x : x + 6] = True
    return clip, truth


def test_motion_masks_find_the_moving_character_on_a_busy_still_background():
    clip, truth = _moving_square()
    masks = motion_masks(clip, grow=0)
    iou = (masks & truth).sum() / (masks | truth).sum()
    assert iou > 0.9
    assert motion_masks(clip, grow=1).sum() > masks.sum()  # grown by a pixel for outlines


def test_a_moving_camera_is_refused_not_masked_wrongly():
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)  # every pixel changes
    with pytest.raises(ConditionerInputError, match="background moves"):
        motion_masks(clip)
    with pytest.raises(ConditionerInputError, match="at least 3"):
        motion_masks(clip[:2])


def test_auto_falls_back_to_motion_when_there_is_no_person():
    clip, truth = _moving_square()
    masks, method = foreground_masks(clip, "auto")
    assert method == "motion" and (masks & truth).sum() / truth.sum() > 0.95
    with pytest.raises(ConditionerInputError, match="Unknown background method"):
        foreground_masks(clip, "magic")


def test_person_segmentation_keeps_a_real_person(media_photo_clip):
    pytest.importorskip("mediapipe")
    masks, method = foreground_masks(media_photo_clip, "person")
    assert method == "person"
    share = masks.mean()
    assert 0.2 < share < 0.9  # the person, not the whole frame nor nothing
    # the centre of the photo is the person, the top corners are background
    assert masks[:, masks.shape[1] // 2, masks.shape[2] // 2].all()
    assert not masks[:, :4, :4].any()


@pytest.fixture
def media_photo_clip():
    import matplotlib.cbook
    from PIL import Image

    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB").resize((128, 160))
    return np.repeat(np.asarray(photo)[None], 3, axis=0)
