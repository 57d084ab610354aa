"""Training a token conditioner (audio-face) beside the in-context one (pose), on a world
of talking characters with voices: adapters train, checkpoint, resume exactly, export,
and animate loads them."""

import json
import textwrap

import numpy as np
import pytest
import torch

from charanim.config import resolve
from charanim.models.weights import load_safetensors
from charanim.training.recipe import Recipe
from charanim.training.trainer import train


@pytest.fixture(scope="module")
def talking_world(tmp_path_factory):
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, run_world

    out = tmp_path_factory.mktemp("talking")
    config = WorldConfig(
        size=(32, 32), frames=6, body_plans=("humanoid",), cross_plan=0.0, motions=("talk",), audio=True
    )
    run_world(WorldJob(out, count=8, seed=2, config=config, shard_size=4, test_fraction=0.25))
    return out / "manifest.jsonl"


def _recipe(tmp_path, manifest, steps=4):
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(f"""
        model:
          width: 32
          height: 32
          frames: 4
          transformer: {{patch_size: [1, 4, 4], num_attention_heads: 2, attention_head_dim: 12, ffn_dim: 32, num_layers: 2, text_dim: 16, freq_dim: 16, rope_max_seq_len: 64}}
        conditioners: [pose, audio-face]
        data: {{manifest: {manifest}, same_plan: true}}
        training: {{steps: {steps}, batch_size: 2, ema: 0.9, threads: 2, dropout: {{motion: 0.0, text: 0.1}}}}
        optim: {{lr: 1.0e-3, warmup: 1}}
        checkpoint: {{every: 2, keep: 5}}
        validation: {{every: 4, samples: 1, steps: 2}}
        log_every: 1
    """))  # fmt: skip
    return resolve(Recipe, path)


def _losses(run):
    return [
        json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line
    ]


def test_audio_face_adapter_trains_beside_pose_and_animate_uses_it(tmp_path, talking_world):
    recipe = _recipe(tmp_path, talking_world)
    train(recipe, tmp_path / "run")
    model = tmp_path / "run" / "model"
    assert json.loads((model / "charanim.json").read_text())["conditioners"] == ["pose", "audio-face"]
    weights = load_safetensors(model / "conditioners" / "audio-face.safetensors")
    # zero-initialised output projections have moved: the adapter learned something
    assert max(float(v.abs().max()) for k, v in weights.items() if k.endswith("to_out.weight")) > 0

    # resuming from step 2 gives the same curve as the uninterrupted run
    partial = tmp_path / "partial"
    train(_recipe(tmp_path, talking_world, steps=2), partial)
    train(recipe, partial, resume=True)
    np.testing.assert_allclose(_losses(partial), _losses(tmp_path / "run"), rtol=1e-5)

    from charanim.api import animate, load_pipeline
    from charanim.io.audio import write_wav
    from charanim.synthetic.samples import WorldConfig, make_sample
    from charanim.synthetic.voice import to_float

    sample = make_sample(
        WorldConfig(size=(32, 32), frames=8, body_plans=("humanoid",), motions=("talk",), audio=True), 7, 7
    )
    from charanim.io.video import write_video

    drive = write_video(tmp_path / "drive.mp4", sample.driving, 8.0)
    from PIL import Image

    Image.fromarray(sample.reference).save(tmp_path / "ref.png")
    voice = write_wav(tmp_path / "voice.wav", to_float(sample.driving_audio), 16000)
    pipeline = load_pipeline(model, "pose+audio-face", device="cpu")
    from charanim.pose.keypoints import KeypointSequence, KeypointsHeader

    header = KeypointsHeader(32, 32, 8.0, body_format="coco17")
    pose = KeypointSequence.from_body_array(header, sample.driving_keypoints[:, :17])
    reference_pose = KeypointSequence.from_body_array(header, sample.reference_keypoints[None, :17])
    summary = animate(tmp_path / "ref.png", drive, pipeline=pipeline, pose=pose, reference_pose=reference_pose,
                      audio=voice, steps=2)  # fmt: skip
    assert summary["conditioners"] == ["pose", "audio-face"] and summary["frames"] == 8

    # a model's own guidance for a conditioner applies where that conditioner is used
    config = json.loads((model / "charanim.json").read_text())
    config["sampler"]["conditioner_guidance"] = {"audio-face": 3.0}
    (model / "charanim.json").write_text(json.dumps(config))
    guided = load_pipeline(model, "pose+audio-face", device="cpu")
    run = dict(pose=pose, reference_pose=reference_pose, audio=voice, steps=1)
    assert animate(tmp_path / "ref.png", drive, pipeline=guided, **run)["conditioner_guidance"] == {
        "audio-face": 3.0
    }
    overridden = animate(
        tmp_path / "ref.png", drive, pipeline=guided, conditioner_guidance={"audio-face": 1.5}, **run
    )
    assert overridden["conditioner_guidance"] == {"audio-face": 1.5}
    pose_only = load_pipeline(model, "pose", device="cpu")
    assert animate(tmp_path / "ref.png", drive, pipeline=pose_only, pose=pose, reference_pose=reference_pose,
                   steps=1)["conditioner_guidance"] == {}  # fmt: skip

    # the voice alone, in memory (Python API): as many frames as the voice lasts
    from charanim.io.audio import Audio

    voice_only = load_pipeline(model, "audio-face", device="cpu")
    sound = Audio(to_float(sample.driving_audio), 16000)
    talking = animate(tmp_path / "ref.png", None, pipeline=voice_only, audio=sound, steps=2)
    assert talking["frames"] == int(sound.duration * 8.0)


def test_adapter_batches_carry_the_voice(tmp_path, talking_world):
    from charanim.conditioning import OutputSpec
    from charanim.plugins import get_plugins
    from charanim.training.batch import BatchBuilder
    from charanim.training.build import build_backbone
    from charanim.training.data import ManifestData, sample_rng

    recipe = _recipe(tmp_path, talking_world)
    data = ManifestData(recipe.data, 4)
    registry = get_plugins().conditioners
    conditioners = [registry.get(n)() for n in recipe.conditioners]
    backbone = build_backbone(recipe, torch.device("cpu"))
    builder = BatchBuilder(backbone, conditioners, OutputSpec(32, 32, 4, 8.0), "driving")
    samples = [data.sample(i, sample_rng(0, 0, i)) for i in range(2)]
    assert samples[0].driving_audio.duration == pytest.approx(0.5)
    batch = builder.build(samples, [sample_rng(0, 0, i, 1) for i in range(2)], augment=False)
    features = batch.adapter_features["audio-face"]
    assert features.shape == (2, 4, 44)
    assert features[..., -1].min() == 1.0  # the speech stream is present in every frame
    assert features[..., 10:42].max() > 0.3  # and loud somewhere


def test_a_frozen_transformer_gains_a_trained_adapter_and_stays_what_it_was(tmp_path, talking_world):
    from charanim.errors import IncompatibleError

    base = _recipe(tmp_path, talking_world, steps=2)
    base.conditioners = ["pose"]
    train(base, tmp_path / "base")
    recipe = _recipe(tmp_path, talking_world, steps=3)
    recipe.model.init = str(tmp_path / "base" / "model")
    recipe.training.train_transformer = False
    train(recipe, tmp_path / "adapter")

    before = load_safetensors(next((tmp_path / "base" / "model" / "transformer").glob("*.safetensors")))
    after = load_safetensors(next((tmp_path / "adapter" / "model" / "transformer").glob("*.safetensors")))
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    provenance = json.loads((tmp_path / "adapter" / "model" / "charanim.json").read_text())["provenance"]
    base_provenance = json.loads((tmp_path / "base" / "model" / "charanim.json").read_text())["provenance"]
    assert provenance == {
        **base_provenance,
        "adapters": provenance["adapters"],
    }  # the transformer's own history
    assert provenance["adapters"]["warm_start"] == recipe.model.init
    assert provenance["adapters"]["steps"] == 3 and provenance["adapters"]["conditioners"] == ["audio-face"]
    adapter = load_safetensors(tmp_path / "adapter" / "model" / "conditioners" / "audio-face.safetensors")
    assert max(float(v.abs().max()) for k, v in adapter.items() if k.endswith("to_out.weight")) > 0

    # a step where the only trainable adapter is dropped (condition dropout) has nothing to learn
    dropped = _recipe(tmp_path, talking_world, steps=2)
    dropped.model.init, dropped.training.train_transformer = recipe.model.init, False
    dropped.training.dropout.motion = 1.0
    train(dropped, tmp_path / "dropped")
    unchanged = load_safetensors(tmp_path / "dropped" / "model" / "conditioners" / "audio-face.safetensors")
    assert max(float(v.abs().max()) for k, v in unchanged.items() if k.endswith("to_out.weight")) == 0

    # the transformer trained on from the adapter model, for pose alone: no adapter goes
    # with it, and no record of one
    retrained = _recipe(tmp_path, talking_world, steps=1)
    retrained.conditioners = ["pose"]
    retrained.model.init = str(tmp_path / "adapter" / "model")
    train(retrained, tmp_path / "retrained")
    provenance = json.loads((tmp_path / "retrained" / "model" / "charanim.json").read_text())["provenance"]
    assert "adapters" not in provenance and provenance["steps"] == 1
    assert not (tmp_path / "retrained" / "model" / "conditioners").exists()

    pose_only = _recipe(tmp_path, talking_world, steps=2)
    pose_only.conditioners = ["pose"]
    pose_only.model.init = recipe.model.init
    pose_only.training.train_transformer = False
    with pytest.raises(IncompatibleError, match="none of pose has one"):
        train(pose_only, tmp_path / "nothing")
    recipe.model.init = ""
    with pytest.raises(IncompatibleError, match="model.init"):
        train(recipe, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
