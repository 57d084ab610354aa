"""LoRA training: a Wan image-to-video backbone (tiny random config of the real classes)
and few-shot personalisation of a tiny model from a folder of images."""

import textwrap

import numpy as np
import pytest
import torch

from charanim.config import resolve
from charanim.errors import CharanimError
from charanim.training.recipe import Recipe
from charanim.training.trainer import train


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, run_world

    out = tmp_path_factory.mktemp("world")
    run_world(
        WorldJob(
            out,
            count=6,
            seed=3,
            config=WorldConfig(size=(32, 32), frames=6, body_plans=("humanoid",), cross_plan=0.0),
            shard_size=6,
            test_fraction=0.0,
        )
    )
    return out / "manifest.jsonl"


def _write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_wan_lora_trains_saves_in_diffusers_format_and_animate_loads_it(tmp_path, world, tiny_wan_i2v, media):
    recipe = resolve(
        Recipe,
        _write(
            tmp_path,
            f"""
        model: {{backbone: wan-i2v, init: {tiny_wan_i2v}, width: 32, height: 32, frames: 5, reference_timestep_zero: false}}
        conditioners: [pose]
        lora: {{rank: 4, alpha: 4, targets: [ffn, attention], name: pose}}
        data: {{manifest: {world}, same_plan: true}}
        training: {{steps: 3, batch_size: 1, ema: 0, threads: 2}}
        optim: {{lr: 1.0e-2, warmup: 1}}
        checkpoint: {{every: 3}}
        validation: {{samples: 0}}
    """,
        ),
    )
    summary = train(recipe, tmp_path / "run")
    model = tmp_path / "run" / "model"
    assert (model / "pytorch_lora_weights.safetensors").is_file()
    assert summary["parameters"] < 20_000  # only the adapter trains
    # diffusers' own loader reads it
    from diffusers import WanImageToVideoPipeline

    pipe = WanImageToVideoPipeline.from_pretrained(tiny_wan_i2v, local_files_only=True)
    before = {k: v.clone() for k, v in pipe.transformer.state_dict().items()}
    pipe.load_lora_weights(model, weight_name="pytorch_lora_weights.safetensors")
    assert any("lora" in k for k in pipe.transformer.state_dict()) and len(before)
    # and so does animate, which then knows the LoRA's conditioner
    from charanim.api import load_pipeline

    pipeline = load_pipeline(tiny_wan_i2v, device="cpu", loras=[str(model)])
    assert pipeline.backbone.config.conditioners == ["pose"] and pipeline.conditioners[0].name == "pose"


def _character_folder(folder, count=6):
    """One procedural character in several poses, with its keypoints beside each image."""
    from charanim.pose.keypoints import KeypointSequence, KeypointsHeader
    from charanim.synthetic.motions import channels_at, motion_channels, sample_motion
    from charanim.synthetic.scene import Camera, render_clip, sample_character

    rng = np.random.default_rng(0)
    character = sample_character(rng, "humanoid")
    folder.mkdir()
    from PIL import Image

    for i in range(count):
        channels = motion_channels(sample_motion(np.random.default_rng(i), ("dance",)), 8, 8.0, seed=i)
        still = {k: np.array([v]) for k, v in channels_at(channels, i % 8).items()}
        clip = render_clip(character, still, Camera(28.0, 16.0, 28.0), np.full((32, 32, 3), 0.8, np.float32))
        Image.fromarray(clip.frames[0]).save(folder / f"pose{i}.png")
        header = KeypointsHeader(32, 32, 1.0)
        KeypointSequence.from_body_array(header, clip.keypoints).save(folder / f"pose{i}.pose.jsonl")
    return folder


def test_few_shot_personalisation_lora_on_a_tiny_model(tmp_path, media):
    from charanim.testing import make_tiny_model

    base = make_tiny_model(tmp_path / "base", conditioners=("pose",))
    images = _character_folder(tmp_path / "me")
    recipe = resolve(
        Recipe,
        _write(
            tmp_path,
            f"""
        model: {{backbone: tiny, init: {base}, width: 32, height: 32, frames: 1}}
        conditioners: [pose]
        lora: {{rank: 2, alpha: 2, targets: [ffn], name: me}}
        data: {{images: {images}, pose_source: target}}
        training: {{steps: 4, batch_size: 2, ema: 0, threads: 2}}
        optim: {{lr: 1.0e-2, warmup: 1}}
        checkpoint: {{every: 4}}
        validation: {{samples: 0}}
    """,
        ),
    )
    train(recipe, tmp_path / "run")
    from charanim.api import load_pipeline

    plain = load_pipeline(base, device="cpu")
    tuned = load_pipeline(base, device="cpu", loras=[str(tmp_path / "run" / "model")])
    weights = dict(tuned.backbone.transformer.named_parameters())
    assert any("lora_B" in name and p.abs().sum() > 0 for name, p in weights.items())
    assert len(list(plain.backbone.transformer.parameters())) < len(weights)


def test_too_few_images_is_a_clear_error(tmp_path):
    folder = tmp_path / "few"
    folder.mkdir()
    recipe = resolve(Recipe, _write(tmp_path, f"data: {{images: {folder}}}\nmodel: {{frames: 1}}\n"))
    with pytest.raises(CharanimError, match="at least 5 images"):
        train(recipe, tmp_path / "run")


def test_lora_spec_errors(tmp_path, world):
    recipe = resolve(
        Recipe,
        _write(
            tmp_path,
            f"""
        model: {{width: 32, height: 32, frames: 4, transformer: {{patch_size: [1, 4, 4], num_attention_heads: 2, attention_head_dim: 12, ffn_dim: 32, num_layers: 1, text_dim: 16, freq_dim: 16, rope_max_seq_len: 64}}}}
        lora: {{targets: [everything]}}
        data: {{manifest: {world}, same_plan: true}}
        validation: {{samples: 0}}
    """,
        ),
    )
    with pytest.raises(CharanimError, match="lora.targets"):
        train(recipe, tmp_path / "run")


@pytest.mark.parametrize(
    "option", ["motion_space: pixels", "reference_channels: true", "reference_motion_channels: true"]
)
def test_tiny_only_model_options_are_refused_for_wan(tmp_path, tiny_wan_i2v, option):
    from charanim.training.build import build_backbone

    path = _write(tmp_path, f"model: {{backbone: wan-i2v, init: {tiny_wan_i2v}, {option}}}\n")
    with pytest.raises(CharanimError, match="tiny backbone"):
        build_backbone(resolve(Recipe, path), torch.device("cpu"))


def test_a_wan_lora_keeps_the_conditioner_settings_it_is_trained_with(tmp_path, tiny_wan_i2v):
    from charanim.training.build import build_backbone

    path = _write(
        tmp_path,
        f"model: {{backbone: wan-i2v, init: {tiny_wan_i2v}}}\nconditioner_options: {{pose: {{limb_width: 6}}}}\n",
    )
    backbone = build_backbone(resolve(Recipe, path), torch.device("cpu"))
    assert backbone.config.conditioner_options == {"pose": {"limb_width": 6}}
