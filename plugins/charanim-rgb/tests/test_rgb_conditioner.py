import numpy as np
import torch

from charanim.conditioning import OutputSpec
from charanim.testing import ConditionerContract


class TestRGBContract(ConditionerContract):
    conditioner_name = "rgb"


def _prepared(tmp_path):
    contract = TestRGBContract()
    driving, reference = contract.make_inputs(tmp_path)
    from charanim_rgb.conditioner import RGBConditioner

    return RGBConditioner(), driving, reference, contract.spec


def test_prepare_is_the_driving_frames_on_the_output_grid(tmp_path):
    conditioner, driving, reference, spec = _prepared(tmp_path)
    condition = conditioner.prepare(driving, reference, spec)
    frames = ((condition.video.permute(1, 2, 3, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    from charanim.io.resize import fit_frames

    expected, _ = fit_frames(driving.video.frames[: spec.frames], (spec.width, spec.height), spec.fit)
    assert np.array_equal(frames, expected)
    assert (
        condition.valid is None and condition.reference is None
    )  # the driver's look never sits beside the reference


def test_short_clips_hold_their_last_frame(tmp_path):
    conditioner, driving, reference, _ = _prepared(tmp_path)
    spec = OutputSpec(32, 32, 12, 8.0)
    condition = conditioner.prepare(driving, reference, spec)
    assert condition.video.shape[1] == 12
    assert torch.equal(condition.video[:, -1], condition.video[:, len(driving.video) - 1])


def test_augment_moves_colours_and_geometry_the_same_way_on_every_frame(tmp_path):
    conditioner, driving, reference, spec = _prepared(tmp_path)
    condition = conditioner.prepare(driving, reference, spec)
    augmented = conditioner.augment(condition, torch.Generator().manual_seed(3))
    assert not torch.allclose(augmented.video, condition.video)
    # the same transform on every frame: frames that were equal stay equal
    still = condition.replace(video=condition.video[:, :1].expand(-1, spec.frames, -1, -1).clone())
    moved = conditioner.augment(still, torch.Generator().manual_seed(3)).video
    assert torch.allclose(moved, moved[:, :1].expand_as(moved))
    assert augmented.valid is not None and 0 < augmented.valid.mean() <= 1


def test_background_removal_greys_out_all_but_the_moving_figure(tmp_path):
    from charanim_rgb.conditioner import RGBConditioner

    _, driving, reference, spec = _prepared(tmp_path)
    kept = RGBConditioner().prepare(driving, reference, spec)
    removed = RGBConditioner(background="motion").prepare(driving, reference, spec)
    assert removed.meta["background"] == "motion" and 0 < removed.meta["foreground_share"] < 0.6
    background = (removed.video == 0).all(0)  # [F, H, W], mid grey in every channel
    assert background.float().mean() > 0.4
    assert torch.equal(removed.video[:, ~background], kept.video[:, ~background])


def test_unknown_background_policy_is_a_clear_error():
    import pytest
    from charanim_rgb.conditioner import RGBConditioner

    from charanim.errors import ConditionerInputError

    with pytest.raises(ConditionerInputError, match="keep, remove"):
        RGBConditioner(background="blur")
