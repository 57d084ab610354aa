"""The pose library on skeletons with known answers."""

import numpy as np
import pytest

from charanim.pose.augment import bone_length_jitter, box_jitter
from charanim.pose.formats import FORMATS, coco_to_openpose, openpose_to_coco
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader, load_keypoints
from charanim.pose.openpose import load_openpose, save_openpose
from charanim.pose.render import OPENPOSE_COLOURS, render_pose, render_pose_sequence
from charanim.pose.retarget import part_mask, retarget
from charanim.pose.skeleton import TREES, bone_lengths, extend, rescale_bones


def t_pose(scale=1.0, x=32.0, y=32.0):
    """A COCO-17 T-pose, arms horizontal; the character's left is +x (front view)."""
    s = scale
    points = {
        "nose": (0, -14), "left_eye": (2, -15), "right_eye": (-2, -15), "left_ear": (4, -14), "right_ear": (-4, -14),
        "left_shoulder": (6, -8), "right_shoulder": (-6, -8), "left_elbow": (12, -8), "right_elbow": (-12, -8),
        "left_wrist": (18, -8), "right_wrist": (-18, -8), "left_hip": (4, 4), "right_hip": (-4, 4),
        "left_knee": (4, 12), "right_knee": (-4, 12), "left_ankle": (4, 20), "right_ankle": (-4, 20),
    }  # fmt: skip
    from charanim.pose.formats import COCO17

    return np.array([[x + s * points[n][0], y + s * points[n][1], 1.0] for n in COCO17.keypoints], np.float32)


def test_coco_openpose_round_trip_and_neck():
    points = t_pose()
    op = coco_to_openpose(points)
    assert op.shape == (18, 3) and np.allclose(op[1, :2], [32, 24])  # mid-shoulder
    assert np.array_equal(openpose_to_coco(op), points)
    missing = points.copy()
    missing[5, 2] = 0
    assert coco_to_openpose(missing)[1, 2] == 0  # no neck without both shoulders


def test_keypoint_files_round_trip(tmp_path):
    body = np.stack([t_pose(x=20 + i) for i in range(4)])
    body[2, :, 2] = 0  # nobody in frame 2
    sequence = KeypointSequence.from_body_array(KeypointsHeader(64, 64, 8.0, estimator="test"), body)
    for name in ("k.jsonl", "k.npz"):
        loaded = load_keypoints(sequence.save(tmp_path / name))
        assert loaded.frames_with_person() == 3 and loaded.header.estimator == "test"
        assert np.allclose(loaded.body_array(), np.where(body[..., 2:] > 0, body, 0), atol=0.01)


def test_openpose_json_round_trip(tmp_path):
    body = np.stack([t_pose(x=20 + i) for i in range(3)])
    sequence = KeypointSequence.from_body_array(KeypointsHeader(64, 48, 8.0), body)
    for target in (tmp_path / "frames", tmp_path / "all.json"):
        loaded = load_openpose(save_openpose(sequence, target), fps=8.0)
        assert (loaded.header.width, loaded.header.height) == (64, 48)
        assert np.allclose(loaded.body_array(), body, atol=0.01)


def test_openpose_body25_and_normalised_coordinates(tmp_path):
    import json

    op = coco_to_openpose(t_pose())
    body25 = np.zeros((25, 3), np.float32)
    body25[[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]] = op
    body25[:, :2] /= [64, 64]  # normalised, as some ComfyUI nodes write
    frame = {
        "canvas_width": 64,
        "canvas_height": 64,
        "people": [{"pose_keypoints_2d": body25.ravel().tolist()}],
    }
    (tmp_path / "f.json").write_text(json.dumps(frame))
    assert np.allclose(load_openpose(tmp_path / "f.json").body_array()[0], t_pose(), atol=1e-3)


def test_render_draws_openpose_colours_where_the_bones_are():
    image = render_pose(t_pose(), "coco17", (64, 64), width=1.5)
    # the right upper arm (OpenPose limb 2: right shoulder -> right elbow) is orange (255, 170, 0)
    pixel = image[24, 23].astype(float) / 255
    assert np.allclose(pixel, OPENPOSE_COLOURS[2] * 0.6, atol=0.12)
    assert image[60, 5].sum() == 0  # background stays black
    missing = t_pose()
    missing[9, 2] = 0  # left wrist missing: its forearm is not drawn, nothing invented
    assert render_pose(missing, "coco17", (64, 64), width=1.5)[24, 47].sum() < image[24, 47].sum() / 3


@pytest.mark.parametrize("gap", [False, True])
def test_a_clip_renders_as_its_frames_do_one_by_one(gap):
    """The one-pass clip renderer draws exactly the per-frame maps, also when joints are
    missing from some frames (drawn there with no opacity)."""
    bodies = np.stack([t_pose(scale=1.0 + 0.1 * i, x=20 + 5 * i, y=30 - 2 * i) for i in range(5)])
    bodies[:, 9, 1] -= np.arange(5) * 3  # a wrist moving on its own
    if gap:
        bodies[2, 9, 2] = 0  # a wrist lost in one frame
        bodies[0, 5, 2] = 0.1  # a shoulder (and with it the neck) in another
        bodies[3:, 15, :] = np.nan  # an ankle gone from the last two
        bodies[:, 16, 2] = 0  # and one never seen
    clip = render_pose_sequence(bodies, "coco17", (64, 48))
    assert clip.shape == (5, 48, 64, 3) and clip.any()
    for frame, body in zip(clip, bodies, strict=True):
        assert np.array_equal(frame, render_pose(body, "coco17", (64, 48)))


@pytest.mark.parametrize("body_format", sorted(FORMATS))
def test_random_clips_render_as_their_frames_do_one_by_one(body_format):
    """float32 keypoints as the estimators write them, joints dropping in and out, places
    off the canvas or not finite: the one-pass renderer still draws each frame's own map."""
    rng = np.random.default_rng(7)
    joints = len(FORMATS[body_format])
    for _ in range(6):
        frames = int(rng.integers(1, 7))
        bodies = np.zeros((frames, joints, 3), np.float32)
        bodies[..., :2] = rng.uniform(-5, 60, (joints, 2)) + rng.normal(0, 3, (frames, joints, 2)).cumsum(0)
        bodies[..., 2] = rng.choice([0.0, 0.2, 0.9, np.nan], p=[0.1, 0.1, 0.75, 0.05], size=(frames, joints))
        bodies[rng.random((frames, joints)) < 0.05, 0] = np.nan  # a confident joint with no place
        size = (int(rng.integers(32, 72)), int(rng.integers(32, 72)))
        clip = render_pose_sequence(bodies, body_format, size)
        for frame, body in zip(clip, bodies, strict=True):
            assert np.array_equal(frame, render_pose(body, body_format, size))
    nothing = np.zeros((3, joints, 3), np.float32)  # no joint anywhere: black frames
    assert not render_pose_sequence(nothing, body_format, (32, 32)).any()


def test_bone_jitter_keeps_the_skeleton_connected_and_in_range():
    rng = np.random.default_rng(0)
    motion = np.stack([t_pose(x=30 + i) for i in range(5)])
    jittered, scales = bone_length_jitter(motion, "coco17", rng)
    ratio = bone_lengths(TREES["coco17"], jittered) / bone_lengths(TREES["coco17"], motion)
    assert np.all((ratio > 0.8 - 1e-4) & (ratio < 1.2 + 1e-4))
    assert np.allclose(ratio, ratio[0], atol=1e-4)  # the same factor in every frame
    assert np.allclose(ratio[0], scales, atol=1e-4)  # connected: each bone changed only by its factor
    boxed = box_jitter(motion, (64, 64), rng)
    assert not np.allclose(boxed, motion) and np.allclose(boxed[..., 2], motion[..., 2])


def test_retarget_takes_the_reference_proportions_and_place():
    driving = np.stack([t_pose(scale=1.0, x=20 + 2 * i, y=30) for i in range(4)])
    driving[:, 9, 1] -= np.arange(4) * 2  # the left wrist rises over time (the motion)
    reference = t_pose(scale=1.5, x=40, y=34)
    moved = retarget(driving, reference, "coco17")
    # each bone's typical (90th percentile) driving length becomes the reference's length
    lengths = np.percentile(bone_lengths(TREES["coco17"], moved), 90, axis=0)
    assert np.allclose(lengths, bone_lengths(TREES["coco17"], reference), rtol=0.02)
    assert np.allclose(
        moved[0, 11:13, :2].mean(0), reference[11:13, :2].mean(0), atol=1e-3
    )  # placed on the reference
    travel = moved[3, 11:13, :2].mean(0) - moved[0, 11:13, :2].mean(0)
    assert np.allclose(travel, [6 * 1.5, 0], atol=0.2)  # root travel scaled by the size ratio
    assert moved[3, 9, 1] < moved[0, 9, 1]  # the wrist still rises


def test_retarget_draws_only_the_limbs_the_reference_has():
    from charanim.pose.formats import COCO17

    driving = np.stack([t_pose(x=20 + 2 * i) for i in range(4)])
    driving[:, COCO17.index("left_wrist"), 1] -= np.arange(4) * 2
    reference = t_pose(x=40)
    wrist = COCO17.index("left_wrist")
    reference[wrist, 2] = 0.0  # the image shows where the hand would be: it has none
    moved = retarget(driving, reference, "coco17", reference_box=(0, 0, 64, 64))
    assert (moved[:, wrist, 2] == 0).all()
    assert (moved[:, COCO17.index("left_elbow"), 2] > 0).all()
    # a hand outside the reference's image is cropped, not missing: the driver's is drawn
    cropped = retarget(driving, reference, "coco17", reference_box=(0, 0, 56, 64))
    assert (cropped[:, wrist, 2] > 0).all() and np.allclose(cropped[..., :2], moved[..., :2])


def test_retarget_holds_the_reference_limbs_a_close_up_driver_never_shows():
    from charanim.pose.formats import COCO17

    legs = [COCO17.index(f"{s}_{j}") for s in ("left", "right") for j in ("knee", "ankle")]
    driving = np.stack([t_pose(x=20 + 2 * i) for i in range(4)])
    driving[:, legs, 2] = 0.0  # cropped at the hips, every frame
    reference = t_pose(x=40)
    moved = retarget(driving, reference, "coco17")
    assert (moved[:, legs, 2] > 0).all()
    hips = [COCO17.index("left_hip"), COCO17.index("right_hip")]
    hip_of_leg = [hips[0], hips[0], hips[1], hips[1]]  # the order of ``legs``
    # each leg keeps the reference's shape below the hips and moves with them
    expected = reference[legs, :2] - reference[hip_of_leg, :2]
    for frame in moved:
        assert np.allclose(frame[legs, :2] - frame[hip_of_leg, :2], expected, atol=1e-4)
    # the size ratio compares the bones both show: the same body, so the travel is unscaled
    travel = moved[3, hips, :2].mean(0) - moved[0, hips, :2].mean(0)
    assert np.allclose(travel, [6, 0], atol=0.2)


def test_retarget_holds_the_whole_lower_body_when_the_driver_crops_at_the_waist():
    from charanim.pose.formats import COCO17

    # no hips either: the tree's root (the pelvis, made from the hips) is missing too,
    # so the reference's hips and legs are carried by the neck (the mid-shoulder)
    lower = [COCO17.index(f"{s}_{j}") for s in ("left", "right") for j in ("hip", "knee", "ankle")]
    driving = np.stack([t_pose(x=20 + 2 * i) for i in range(4)])
    driving[:, lower, 2] = 0.0
    reference = t_pose(x=40)
    moved = retarget(driving, reference, "coco17")
    assert (moved[:, lower, 2] > 0).all()
    shoulders = [COCO17.index("left_shoulder"), COCO17.index("right_shoulder")]
    expected = reference[lower, :2] - reference[shoulders, :2].mean(0)
    for frame in moved:
        assert np.allclose(frame[lower, :2] - frame[shoulders, :2].mean(0), expected, atol=1e-4)
    # and they travel with the upper body
    assert np.allclose(moved[3, lower, 0] - moved[0, lower, 0], 6, atol=0.2)


def test_partial_transfer_keeps_the_rest_of_the_reference():
    driving = np.stack([t_pose(x=20 + i) for i in range(3)])
    reference = t_pose(x=40)
    upper = retarget(driving, reference, "coco17", part="upper")
    legs = ~part_mask("coco17", "upper")
    assert np.array_equal(upper[:, legs], np.repeat(reference[None, legs], 3, axis=0))
    with pytest.raises(Exception, match="Unknown --transfer"):
        part_mask("coco17", "tail")


def test_frames_the_estimator_missed_are_filled_from_their_neighbours():
    from charanim.pose.smooth import fill_missed_frames

    body = np.stack([t_pose(x=20 + 2 * i) for i in range(6)])
    body[3, 9, 2] = 0.0  # one joint missing from a found pose: left alone
    missed = body.copy()
    missed[[0, 2], :, 2] = 0.0  # nobody found: before the first find, and between two
    filled = fill_missed_frames(missed)
    others = [i for i in range(17) if i != 9]
    assert np.allclose(filled[2, others, :2], (body[1, others, :2] + body[3, others, :2]) / 2)
    assert np.allclose(filled[2, others, 2], 0.5)
    assert np.array_equal(filled[2, 9], [0, 0, 0])  # not seen on both sides: not invented
    assert np.allclose(filled[0, :, :2], body[1, :, :2]) and np.allclose(filled[0, :, 2], 0.5)  # held
    assert np.array_equal(filled[[1, 3, 4, 5]], missed[[1, 3, 4, 5]])
    assert filled[3, 9, 2] == 0
    nobody = np.zeros_like(body)
    assert np.array_equal(fill_missed_frames(nobody), nobody)


def test_rescaling_bones_level_by_level_moves_every_joint_as_edge_by_edge_does():
    def edge_by_edge(tree, points, scales):  # the definition: parents before children, one edge at a time
        names, full = tree.names, extend(tree, points)
        moved = full.copy()
        for edge, (parent, child) in enumerate(tree.edges):
            p, c = names.index(parent), names.index(child)
            both = (full[..., p, 2] > 0) & (full[..., c, 2] > 0)
            stretch = (scales[..., edge, None] - 1.0) * (full[..., c, :2] - full[..., p, :2])
            moved[..., c, :2] = (
                full[..., c, :2]
                + (moved[..., p, :2] - full[..., p, :2])
                + np.where(both[..., None], stretch, 0.0)
            )
        return moved[..., : len(tree.format), :]

    rng = np.random.default_rng(0)
    for tree in TREES.values():
        points = rng.uniform(0, 64, (5, len(tree.format), 3))
        points[..., 2] = rng.random(points.shape[:2]) > 0.2  # some joints unseen
        scales = rng.uniform(0.5, 1.5, (5, len(tree.edges)))
        assert np.array_equal(rescale_bones(tree, points, scales), edge_by_edge(tree, points, scales))
