"""synthesize bootstrap end to end with a tiny (untrained) pose model."""

import json

import numpy as np
import pytest

from charanim.errors import CharanimError, IncompatibleError
from charanim.synthesis.bootstrap import BootstrapJob, refilter, run_bootstrap
from charanim.synthesis.quality import score_video
from charanim.testing import make_tiny_model


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from charanim.testing import write_humanoid_world

    out = tmp_path_factory.mktemp("world")
    return write_humanoid_world(out, count=8, seed=2, frames=8, shard_size=8, test_fraction=0.0)


@pytest.fixture(scope="module")
def pose_model(tmp_path_factory):
    return make_tiny_model(
        tmp_path_factory.mktemp("m") / "pose",
        conditioners=("pose",),
        window_frames=4,
        window_overlap=1,
        steps=2,
    )


def test_bootstrap_writes_scored_triplets_in_the_real_target_orientation(tmp_path, world, pose_model):
    job = BootstrapJob(
        str(pose_model), world, world, tmp_path / "boot", count=6, steps=2, min_score=0.0, shard_size=3
    )
    summary = run_bootstrap(job)
    assert summary["candidates"] == 6 and summary["kept"] == summary["scored"] > 0
    entry = json.loads((tmp_path / "boot" / "manifest.jsonl").read_text().splitlines()[0])
    assert set(entry["scores"]) == {"motion", "identity", "stability", "artefacts", "score"}
    from charanim.synthetic.world import load_shard_sample

    arrays = load_shard_sample(tmp_path / "boot", entry)
    source = entry["provenance"]["source_clip"]
    world_entry = next(
        json.loads(line) for line in world.read_text().splitlines() if json.loads(line)["id"] == source
    )
    truth = load_shard_sample(world.parent, world_entry)
    # the target is the real clip; the reference is one of its frames; the driving is generated
    assert np.array_equal(arrays["target"], truth["target"][: entry["frames"]])
    assert np.array_equal(arrays["reference"], truth["target"][entry["provenance"]["reference_frame"]])
    assert not np.array_equal(arrays["driving"], arrays["target"])


def test_the_filter_rejects_a_planted_bad_sample(tmp_path, world, pose_model):
    planted = []

    def plant(index, frames, reference):
        """The first candidate becomes noise; the others a still of the character (an
        untrained model makes noise of every candidate, a trained one does not)."""
        if not planted:
            planted.append(index)
            return np.random.default_rng(0).integers(0, 256, frames.shape, dtype=np.uint8)
        return np.repeat(reference[None], len(frames), axis=0)

    job = BootstrapJob(
        str(pose_model), world, world, tmp_path / "boot", count=5, steps=2, min_score=0.0, shard_size=5
    )
    run_bootstrap(job, tamper=plant)
    candidates = [
        json.loads(line) for line in (tmp_path / "boot" / "candidates.jsonl").read_text().splitlines()
    ]
    scores = {c["index"]: c["scores"]["score"] for c in candidates if "scores" in c}
    bad, others = scores[planted[0]], [v for k, v in scores.items() if k != planted[0]]
    assert others and bad < min(others)
    summary = refilter(tmp_path / "boot", (bad + min(others)) / 2, 1.0)  # refilter without generating again
    kept = [
        json.loads(line)["index"] for line in (tmp_path / "boot" / "manifest.jsonl").read_text().splitlines()
    ]
    assert planted[0] not in kept and len(kept) == summary["kept"] == len(others)


def test_quality_scores_on_known_videos():
    reference = np.zeros((32, 32, 3), np.uint8)
    reference[8:24, 12:20] = (200, 30, 30)  # a red character on black
    frames = np.repeat(reference[None], 4, axis=0)
    keypoints = np.tile(np.array([[16, 10, 1], [16, 20, 1]], np.float32), (4, 1, 1))
    skeletons = np.zeros((4, 32, 32), bool)
    skeletons[:, 10:21, 16] = True
    good = score_video(frames, keypoints, skeletons, reference, None)
    assert good["identity"] > 0.95 and good["motion"] > 0.9 and good["stability"] == 1.0
    grey = score_video(np.full_like(frames, 128), keypoints, skeletons, reference, None)
    assert grey["score"] < good["score"] - 0.3


def test_bad_inputs(tmp_path, world, pose_model):
    rgb_model = make_tiny_model(tmp_path / "rgb", conditioners=("rgb",))
    with pytest.raises(IncompatibleError, match="pose-based model"):
        run_bootstrap(BootstrapJob(str(rgb_model), world, world, tmp_path / "a", count=1))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CharanimError, match="holds no images"):
        run_bootstrap(BootstrapJob(str(pose_model), world, tmp_path / "empty", tmp_path / "b", count=1))


def test_each_motion_is_given_a_character_of_its_own_body_format(tmp_path, pose_model):
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, run_world

    config = WorldConfig(size=(32, 32), frames=8, cross_plan=0.0)
    run_world(WorldJob(tmp_path / "world", count=12, seed=4, config=config, shard_size=12, test_fraction=0.0))
    manifest = tmp_path / "world" / "manifest.jsonl"
    formats = {json.loads(line)["reference"]["keypoint_format"] for line in manifest.read_text().splitlines()}
    assert len(formats) >= 2  # a world of several body plans
    job = BootstrapJob(
        str(pose_model), manifest, manifest, tmp_path / "boot", count=8, steps=1, min_score=0.0
    )
    run_bootstrap(job)
    records = [json.loads(line) for line in (tmp_path / "boot" / "candidates.jsonl").read_text().splitlines()]
    assert len(records) == 8
    assert not [r for r in records if r.get("skipped") == "different body formats"]
    assert sum("scores" in r for r in records) >= 6  # only a character paired with itself is skipped
