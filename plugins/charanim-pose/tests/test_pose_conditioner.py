import numpy as np
import pytest
import torch

from charanim.conditioning import Driving, OutputSpec, Reference
from charanim.errors import ConditionerInputError
from charanim.io.image import image_from_array
from charanim.io.video import Video
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader
from charanim.synthetic.samples import WorldConfig, make_sample
from charanim.testing import ConditionerContract


def world_inputs(plan="humanoid", seed=3, size=(64, 64), frames=8):
    """A world sample as the conditioner sees it: frames plus ground-truth keypoints."""
    config = WorldConfig(
        size=size, frames=frames, body_plans=(plan,), cross_plan=0.0, motions=("wave", "dance")
    )
    sample = make_sample(config, seed, seed)
    fmt = sample.meta["driving"]["keypoint_format"]
    count = 17 if fmt in ("coco17", "ap10k") else 16
    header = KeypointsHeader(size[0], size[1], 8.0, body_format=fmt)
    video = Video(sample.driving, 8.0, 8.0, size, np.arange(frames))
    driving = Driving(
        video=video, keypoints=KeypointSequence.from_body_array(header, sample.driving_keypoints[:, :count])
    )
    reference = Reference(
        image_from_array(sample.reference),
        keypoints=KeypointSequence.from_body_array(header, sample.reference_keypoints[None, :count]),
    )
    return driving, reference, sample


class TestPoseContract(ConditionerContract):
    conditioner_name = "pose"

    def make_inputs(self, tmp_path):
        driving, reference, _ = world_inputs(frames=self.spec.frames)
        return driving, reference


def _conditioner(**options):
    from charanim_pose.conditioner import PoseConditioner

    return PoseConditioner(**options)


@pytest.mark.parametrize("plan", ["humanoid", "quadruped", "bird", "blob"])
def test_pose_maps_land_on_the_target_character(plan):
    driving, reference, sample = world_inputs(plan)
    condition = _conditioner().prepare(driving, reference, OutputSpec(64, 64, 8, 8.0))
    drawn = (condition.video.max(0).values > -0.9).numpy()  # pixels the skeleton covers
    on_character = sample.target_mask > 0
    grown = (
        on_character
        | np.roll(on_character, 2, 1)
        | np.roll(on_character, -2, 1)
        | np.roll(on_character, 2, 2)
        | np.roll(on_character, -2, 2)
    )
    assert (drawn & grown).sum() / drawn.sum() > 0.75, "the retargeted skeleton lies on the true target"


def test_reference_map_and_validity():
    driving, reference, _ = world_inputs()
    condition = _conditioner().prepare(driving, reference, OutputSpec(64, 64, 8, 8.0))
    assert condition.reference.shape == (3, 1, 64, 64) and condition.reference.max() > 0
    assert condition.valid.shape == (1, 8, 64, 64) and condition.valid.min() == 1.0
    empty = KeypointSequence.from_body_array(driving.keypoints.header, np.zeros((8, 17, 3), np.float32))
    with pytest.raises(ConditionerInputError, match="No coco17 skeleton found in the driving video"):
        _conditioner().prepare(
            Driving(video=driving.video, keypoints=empty), reference, OutputSpec(64, 64, 8, 8.0)
        )


@pytest.mark.parametrize("plan", ["humanoid", "quadruped"])
def test_clip_and_reference_maps_are_drawn_as_render_pose_draws_each(plan):
    """The clip's maps and the reference's, drawn in one pass, are exactly the maps of
    each retargeted frame and of the reference drawn on their own."""
    from charanim.pose.render import render_pose

    driving, reference, _ = world_inputs(plan)
    condition = _conditioner().prepare(driving, reference, OutputSpec(64, 64, 8, 8.0))
    meta = condition.meta

    def pixels(tensor):
        return np.round((tensor.numpy() + 1.0) * 127.5).astype(np.uint8)

    for frame, body in zip(pixels(condition.video.permute(1, 2, 3, 0)), meta["keypoints"], strict=True):
        assert np.array_equal(frame, render_pose(body, meta["body_format"], (64, 64)))
    own = render_pose(meta["reference_keypoints"], meta["body_format"], (64, 64))
    assert np.array_equal(pixels(condition.reference[:, 0].permute(1, 2, 0)), own) and own.any()


def test_a_wider_limb_width_draws_the_same_skeleton_thicker():
    driving, reference, _ = world_inputs()
    spec = OutputSpec(64, 64, 8, 8.0)
    thin, thick = (
        _conditioner().prepare(driving, reference, spec),
        _conditioner(limb_width=4.0).prepare(driving, reference, spec),
    )
    drawn_thin, drawn_thick = (thin.video.max(0).values > -0.9), (thick.video.max(0).values > -0.9)
    assert drawn_thick.sum() > 1.8 * drawn_thin.sum()
    # the same skeleton: nearly every thin pixel lies under the thick drawing (antialiased
    # edges aside), in every frame and on the reference's own map
    assert (drawn_thin & drawn_thick).sum() / drawn_thin.sum() > 0.98
    assert (thick.reference > -0.9).sum() > 1.8 * (thin.reference > -0.9).sum()
    np.testing.assert_array_equal(thick.meta["keypoints"], thin.meta["keypoints"])
    with pytest.raises(ConditionerInputError, match="limb_width must be positive"):
        _conditioner(limb_width=0)


def test_mixed_body_formats_are_refused_with_advice():
    driving, _, _ = world_inputs("quadruped")
    _, reference, _ = world_inputs("humanoid")
    with pytest.raises(ConditionerInputError, match="use --conditioner rgb across body plans"):
        _conditioner().prepare(driving, reference, OutputSpec(64, 64, 8, 8.0))


def test_a_reference_without_a_skeleton_suggests_rgb():
    driving, reference, _ = world_inputs()
    nobody = KeypointSequence.from_body_array(reference.keypoints.header, np.zeros((1, 17, 3), np.float32))
    with pytest.raises(ConditionerInputError, match="use --conditioner rgb"):
        _conditioner().prepare(
            driving, Reference(reference.image, keypoints=nobody), OutputSpec(64, 64, 8, 8.0)
        )


def test_augment_changes_proportions_not_the_reference():
    driving, reference, _ = world_inputs()
    conditioner = _conditioner()
    condition = conditioner.prepare(driving, reference, OutputSpec(64, 64, 8, 8.0))
    augmented = conditioner.augment(condition, torch.Generator().manual_seed(1))
    assert torch.equal(augmented.reference, condition.reference)
    assert not torch.equal(augmented.video, condition.video)
    assert not np.allclose(augmented.meta["keypoints"], condition.meta["keypoints"])


def test_upper_body_transfer_keeps_the_reference_legs():
    driving, reference, _ = world_inputs()
    condition = _conditioner(transfer="upper").prepare(driving, reference, OutputSpec(64, 64, 8, 8.0))
    legs = condition.meta["keypoints"][:, 11:17]
    assert np.allclose(legs, legs[0:1])  # legs stay where the reference has them
    with pytest.raises(ConditionerInputError):
        _conditioner(transfer="tail")


def test_two_people_are_each_retargeted_to_their_partner_and_drawn_together():
    from charanim_pose.conditioner import PoseConditioner

    from charanim.synthetic.samples import make_duet

    config = WorldConfig(size=(64, 64), frames=8, body_plans=("humanoid",), motions=("wave", "kick"))
    duet = make_duet(config, 41, 2)
    header = KeypointsHeader(64, 64, 8.0, body_format="coco17")
    people = np.stack([duet.driving_keypoints, duet.others["driving_keypoints"][0]])
    # the file lists the right-hand person first: pairing goes by position, not file order
    driving = Driving(keypoints=KeypointSequence.from_people_array(header, people[::-1]))
    references = np.stack([duet.reference_keypoints, duet.others["reference_keypoints"][0]])[:, None]
    reference = Reference(
        image_from_array(duet.reference), KeypointSequence.from_people_array(header, references)
    )
    spec = OutputSpec(64, 64, 8, 8.0)
    condition = PoseConditioner().prepare(driving, reference, spec)
    moved = condition.meta["people_keypoints"]
    assert moved.shape[:2] == (2, 8)
    truth = [duet.target_keypoints, duet.others["target_keypoints"][0]]
    for person, target in zip(moved, truth, strict=True):
        seen = (person[..., 2] > 0) & (target[..., 2] > 0)
        assert np.linalg.norm(person[..., :2] - target[..., :2], axis=-1)[seen].mean() < 4.0
    # both skeletons are on the map: bright pixels near each person's neck
    image = (condition.video.permute(1, 2, 3, 0).numpy() + 1) * 127.5
    for person in moved:
        x, y = person[0, 0, :2].astype(int)
        assert image[0, max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4].max() > 100
    # augmentation jitters every person
    augmented = PoseConditioner().augment(condition, torch.Generator().manual_seed(0))
    assert augmented.meta["people_keypoints"].shape == moved.shape
    assert not np.allclose(augmented.meta["people_keypoints"][1], moved[1])
    # one reference person for two drivers: only the left driver is kept
    single = Reference(reference.image, KeypointSequence.from_people_array(header, references[:1]))
    assert PoseConditioner().prepare(driving, single, spec).meta["people_keypoints"].shape[0] == 1
