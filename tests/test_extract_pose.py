"""extract-pose on real photos (a person from matplotlib's sample data) and edge cases."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from charanim.cli.app import app
from charanim.io import write_video
from charanim.pose.keypoints import load_keypoints
from charanim.pose.smooth import interpolate_gaps, jitter, one_euro

mediapipe = pytest.importorskip("mediapipe", reason="the pose extra (mediapipe) is not installed")
runner = CliRunner()


@pytest.fixture(scope="module")
def person_photo(tmp_path_factory):
    import matplotlib.cbook

    path = tmp_path_factory.mktemp("photo") / "grace_hopper.jpg"
    shutil.copy(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), path)
    return path


@pytest.fixture(scope="module")
def person_clip(person_photo, tmp_path_factory):
    """A real photo of a person, panned and zoomed over 12 frames, then 3 empty frames."""
    photo = np.asarray(Image.open(person_photo).convert("RGB"))
    frames = []
    for i in range(12):
        top, left, size = 10 + i * 3, 20 - i, 420 - i * 4
        crop = Image.fromarray(photo[top : top + size * 600 // 512, left : left + size])
        frames.append(np.asarray(crop.resize((256, 300))))
    frames += [np.full_like(frames[0], 40)] * 3  # nobody
    path = tmp_path_factory.mktemp("clip") / "pan.mp4"
    write_video(path, np.stack(frames), 12.0)
    return path


def test_person_found_in_every_frame_that_shows_one(tmp_path, person_clip):
    out = tmp_path / "pan.jsonl"
    result = runner.invoke(app, ["extract-pose", str(person_clip), "-o", str(out), "--json", "--no-face"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 15 and summary["frames_with_person"] >= 11  # >= 90 % of the 12 with a person
    sequence = load_keypoints(out)
    assert sequence.frames[-1] == [] and sequence.header.width == 256  # no person invented in empty frames
    shoulders = sequence.body_array()[:12, 5:7]
    assert (shoulders[..., 2] > 0.5).all()
    # the shoulders are where the photo puts them: left shoulder (image right) right of the right one
    assert (shoulders[:, 0, 0] > shoulders[:, 1, 0]).all()


def test_skeleton_render_overlays_the_person(tmp_path, person_photo):
    out, video = tmp_path / "p.jsonl", tmp_path / "p.mp4"
    result = runner.invoke(
        app, ["extract-pose", str(person_photo), "-o", str(out), "--render", str(video), "--overlay"]
    )
    assert result.exit_code == 0, result.output
    from charanim.io import read_video

    frame = read_video(video).frames[0].astype(int)
    body = load_keypoints(out).body_array()[0]
    x, y = ((body[5, :2] + body[6, :2]) / 2).astype(int)  # mid-shoulder: the red shoulder line passes here
    patch = frame[y - 3 : y + 4, x - 3 : x + 4]
    assert (patch[..., 0] > patch[..., 2] + 60).any()  # red/orange limb colour over the dark jacket


def test_openpose_export_and_reuse_by_animate(tmp_path, person_photo):
    result = runner.invoke(app, ["extract-pose", str(person_photo), "-o", str(tmp_path / "op")])
    assert result.exit_code == 0 and list((tmp_path / "op").glob("*_keypoints.json"))


def test_no_person_is_a_clear_error_unless_allowed(tmp_path):
    empty = tmp_path / "empty.mp4"
    write_video(empty, np.full((4, 64, 64, 3), 90, np.uint8), 8)
    result = runner.invoke(app, ["extract-pose", str(empty), "-o", str(tmp_path / "e.jsonl")])
    assert result.exit_code == 1 and "No person found" in result.stderr
    assert not (tmp_path / "e.jsonl").exists()
    result = runner.invoke(
        app, ["extract-pose", str(empty), "-o", str(tmp_path / "e.jsonl"), "--allow-empty"]
    )
    assert result.exit_code == 0 and load_keypoints(tmp_path / "e.jsonl").frames_with_person() == 0


def test_bad_inputs(tmp_path, person_photo):
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    cases = [
        (["extract-pose", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "a.jsonl")], "does not exist"),
        (["extract-pose", str(tmp_path / "broken.mp4"), "-o", str(tmp_path / "a.jsonl")], "corrupt"),
        (["extract-pose", str(person_photo), "-o", str(tmp_path / "a.txt")], "must end in"),
        (
            ["extract-pose", str(person_photo), "-o", str(tmp_path / "a.jsonl"), "--estimator", "dwpose"],
            "Unknown pose estimator",
        ),
    ]
    for arguments, message in cases:
        result = runner.invoke(app, arguments)
        assert result.exit_code == 1 and message in result.stderr, (arguments, result.stderr)


def test_large_rgba_image_is_downscaled_for_the_estimator_but_reported_in_source_pixels(
    tmp_path, person_photo
):
    big = Image.open(person_photo).convert("RGBA").resize((2048, 2400))
    big.save(tmp_path / "big.png")
    result = runner.invoke(
        app,
        [
            "extract-pose",
            str(tmp_path / "big.png"),
            "-o",
            str(tmp_path / "b.jsonl"),
            "--no-face",
            "--no-hands",
        ],
    )
    assert result.exit_code == 0
    body = load_keypoints(tmp_path / "b.jsonl").body_array()[0]
    small = runner.invoke(
        app, ["extract-pose", str(person_photo), "-o", str(tmp_path / "s.jsonl"), "--no-face", "--no-hands"]
    )
    assert small.exit_code == 0
    reference = load_keypoints(tmp_path / "s.jsonl").body_array()[0]
    assert np.allclose(body[5:7, :2] / 4, reference[5:7, :2], atol=6)


def test_one_euro_reduces_jitter_and_gaps_fill_only_when_asked():
    rng = np.random.default_rng(0)
    t = np.arange(40)
    truth = np.stack([np.stack([10 + t * 0.5, 20 + 0 * t, np.ones(40)], -1)] * 3, axis=1).astype(np.float32)
    noisy = truth.copy()
    noisy[..., :2] += rng.normal(0, 1.5, noisy[..., :2].shape)
    smoothed = one_euro(noisy, fps=25.0)
    assert jitter(smoothed) < jitter(noisy) / 2
    assert np.abs(smoothed[..., :2] - truth[..., :2]).mean() < np.abs(noisy[..., :2] - truth[..., :2]).mean()
    holed = truth.copy()
    holed[10:13, :, 2] = 0
    filled = interpolate_gaps(holed)
    assert np.allclose(filled[11, :, :2], truth[11, :, :2]) and (filled[11, :, 2] == 0.5).all()
    holed[-3:, :, 2] = 0
    assert (interpolate_gaps(holed)[-1, :, 2] == 0).all()  # never extrapolated past the last detection
