"""motion_space: pixels — pose maps folded space-to-depth onto the latent grid instead of
going through the autoencoder; trained, saved, loaded and sampled like any tiny model."""

import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image

from charanim.config import resolve
from charanim.errors import CharanimError, ModelLoadError
from charanim.models.backbones import space_to_depth
from charanim.training.recipe import Recipe
from charanim.training.trainer import train


def test_space_to_depth_moves_every_pixel_into_its_cells_channels():
    video = torch.zeros(1, 3, 2, 8, 8)
    video[0, 2, 1, 5, 3] = 1.0  # channel 2, frame 1, row 5, column 3: one thin pixel
    folded = space_to_depth(video, 4)
    assert folded.shape == (1, 48, 2, 2, 2)
    # cell (5 // 4, 3 // 4); channel c·16 + (row % 4)·4 + column % 4
    assert folded[0, 2 * 16 + 1 * 4 + 3, 1, 1, 0] == 1.0 and folded.sum() == 1.0
    ramp = torch.arange(2 * 3 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 3, 8, 8)
    assert torch.equal(space_to_depth(ramp, 1), ramp)
    assert sorted(space_to_depth(ramp, 2).flatten().tolist()) == ramp.flatten().tolist()
    # torch's own fold, frame by frame, agrees everywhere
    frames_first = ramp.transpose(1, 2).reshape(6, 3, 8, 8)
    unshuffled = torch.nn.functional.pixel_unshuffle(frames_first, 2).reshape(2, 3, 12, 4, 4).transpose(1, 2)
    assert torch.equal(space_to_depth(ramp, 2), unshuffled)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from charanim.testing import write_humanoid_world

    out = tmp_path_factory.mktemp("world")
    return write_humanoid_world(out, count=6, seed=5, frames=6, shard_size=6, test_fraction=0.2)


@pytest.fixture(scope="module")
def autoencoder(tmp_path_factory) -> Path:
    """A seeded random per-frame AutoencoderKL with a spatial factor of 2."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=[8, 8],
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
    )
    folder = tmp_path_factory.mktemp("vae") / "vae"
    vae.save_pretrained(folder, safe_serialization=True)
    return folder


def _recipe(tmp_path: Path, manifest: Path, autoencoder: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model:
          autoencoder: {autoencoder}
          motion_space: pixels
          reference_channels: true
          width: 32
          height: 32
          frames: 4
          transformer: {{patch_size: [2, 2, 2], num_attention_heads: 2, attention_head_dim: 12, ffn_dim: 32, num_layers: 2, text_dim: 16, freq_dim: 16, rope_max_seq_len: 64}}
        conditioners: [pose]
        data: {{manifest: {manifest}, same_plan: true}}
        training: {{steps: 2, batch_size: 2, ema: 0.9, threads: 2}}
        optim: {{lr: 1.0e-3, warmup: 1}}
        checkpoint: {{every: 2}}
        validation: {{samples: 0}}
        log_every: 1
    """)
    )
    return path


def test_a_pixel_motion_model_trains_loads_and_animates(tmp_path, world, autoencoder):
    from charanim.api import animate, load_pipeline
    from charanim.bench.cases import world_suite
    from charanim.io.video import write_video
    from charanim.training.build import build_backbone

    recipe = resolve(Recipe, _recipe(tmp_path, world, autoencoder))
    backbone = build_backbone(recipe, torch.device("cpu"))
    assert backbone.motion_channels == 3 * 2 * 2
    # latents 4 + motion 12 + masks 2 + reference latents 4
    assert backbone.transformer.config.in_channels == 22
    pose = torch.rand(1, 3, 4, 32, 32) * 2 - 1
    assert torch.equal(backbone.encode_motion(pose), space_to_depth(pose, 2))
    dropped = backbone.pack(torch.zeros(1, 4, 1, 16, 16), torch.zeros(1, 4, 4, 16, 16))
    assert dropped.condition.shape == (1, 12, 4, 16, 32) and dropped.condition.abs().sum() == 0
    assert backbone.valid_frames(5) == 6  # whole temporal patches

    summary = train(recipe, tmp_path / "run")
    assert summary["steps"] == 2
    pipeline = load_pipeline(tmp_path / "run" / "model", device="cpu")
    assert pipeline.backbone.config.motion_space == "pixels"
    case = world_suite(tmp_path, 1, frames=6, size=32)[0]  # a test-split pair
    drive = write_video(tmp_path / "drive.mp4", case.driving, case.fps)
    Image.fromarray(case.reference).save(tmp_path / "reference.png")
    result = animate(
        tmp_path / "reference.png",
        drive,
        pipeline=pipeline,
        pose=case.driving_keypoints,
        reference_pose=case.reference_keypoints,
        max_frames=5,
        steps=2,
    )["result"]
    assert result.frames.shape == (5, 32, 32, 3) and result.frames.std() > 0


def test_a_warm_start_keeps_its_motion_space(tmp_path, world, autoencoder):
    from charanim.training.build import build_backbone

    recipe_path = _recipe(tmp_path, world, autoencoder)
    train(resolve(Recipe, recipe_path, ["training.steps=1", "checkpoint.every=1"]), tmp_path / "run")
    model = tmp_path / "run" / "model"
    kept = build_backbone(
        resolve(Recipe, recipe_path, [f"model.init={model}", "model.motion_space=null"]), torch.device("cpu")
    )
    assert kept.config.motion_space == "pixels"
    with pytest.raises(CharanimError, match="motion in the pixels space.*trained from scratch"):
        build_backbone(
            resolve(Recipe, recipe_path, [f"model.init={model}", "model.motion_space=latent"]),
            torch.device("cpu"),
        )

    # a model folder whose charanim.json disagrees with its transformer is refused at load
    config = model / "charanim.json"
    config.write_text(config.read_text().replace('"motion_space": "pixels"', '"motion_space": "latent"'))
    from charanim.api import load_pipeline

    with pytest.raises(ModelLoadError, match="needs 14"):
        load_pipeline(model, device="cpu")


def test_latents_are_kept_beside_the_manifest_and_a_new_run_starts_warm(tmp_path, world, autoencoder):
    """The frozen autoencoder's latents of the clips are saved beside the manifest at each
    checkpoint; a second run on the same data loads them instead of encoding, and trains
    exactly as the first did."""
    import json
    import shutil

    from charanim.training.trainer import DenoiserTrainer

    data = tmp_path / "data"
    shutil.copytree(world.parent, data)  # the module's world stays without a cache
    recipe = resolve(Recipe, _recipe(tmp_path, data / world.name, autoencoder))
    train(recipe, tmp_path / "first")
    folders = list((data / ".latents").iterdir())
    assert len(folders) == 1 and list(folders[0].glob("*.safetensors"))

    second = DenoiserTrainer(recipe, tmp_path / "second", resume=False, force=False, on_progress=None)
    (cache,) = second.builder.latents
    assert len(cache) >= 2 and cache.folder == folders[0]
    cache.put = None  # any encode would now fail: the clips must come from disk
    second.run()
    losses = [
        [json.loads(line)["loss"] for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        for run in ("first", "second")
    ]
    assert losses[0] == losses[1]

    # without the cache the run keeps its latents in memory only
    off = DenoiserTrainer(
        resolve(Recipe, _recipe(tmp_path, data / world.name, autoencoder), ["training.cache_latents=false"]),
        tmp_path / "third", resume=False, force=False, on_progress=None,
    )  # fmt: skip
    assert [(c.folder, len(c)) for c in off.builder.latents] == [(None, 0)]


def test_a_denoiser_trains_on_several_manifests_joined_each_caching_its_own_latents(
    tmp_path, world, autoencoder
):
    """``data.manifest=[a,b]``: the entries of both, in order; each sample says which world it
    came from, and each world's latents are cached beside its own manifest (ids repeat
    across worlds, so one cache would hand one world's clip to the other)."""
    import shutil

    import numpy as np

    from charanim.io.pixels import to_pixels
    from charanim.testing import write_humanoid_world
    from charanim.training.data import JoinedData, open_data
    from charanim.training.trainer import DenoiserTrainer, check_recipe

    first = tmp_path / "first"
    shutil.copytree(world.parent, first)
    second = write_humanoid_world(
        tmp_path / "second", count=6, seed=9, frames=6, shard_size=6, test_fraction=0.2
    )
    recipe = resolve(Recipe, _recipe(tmp_path, first / world.name, autoencoder),
                     [f"data.manifest=[{first / world.name},{second}]", "training.steps=6"])  # fmt: skip
    check_recipe(recipe)
    joined = open_data(recipe.data, 4, (32, 32))
    alone = [
        open_data(resolve(Recipe, _recipe(tmp_path, m, autoencoder)).data, 4, (32, 32))
        for m in (first / world.name, second)
    ]
    assert isinstance(joined, JoinedData) and len(joined) == len(alone[0]) + len(alone[1])
    assert {e["id"] for e in alone[0].entries} & {e["id"] for e in alone[1].entries}  # ids repeat
    last = joined.sample(len(joined) - 1, np.random.default_rng(0))
    expected = alone[1].sample(len(alone[1]) - 1, np.random.default_rng(0))
    assert last.source == 1 and np.array_equal(last.target, expected.target)
    assert joined.sample(0, np.random.default_rng(0)).source == 0

    trainer = DenoiserTrainer(recipe, tmp_path / "run", resume=False, force=False, on_progress=None)
    trainer.run()
    caches = trainer.builder.latents
    assert [c.folder.parent.parent for c in caches] == [first, second.parent]
    assert all(len(c) == len(part) for c, part in zip(caches, alone, strict=True))  # 6 steps of 2: all seen
    some = alone[1].entries[0]["id"]
    sample = alone[1].sample(0, np.random.default_rng(0))
    encoded = trainer.backbone.autoencoder.encode(to_pixels(trainer.builder._fit(sample.target_clip))[None])
    assert not torch.equal(caches[0].get(some)[0], caches[1].get(some)[0])
    assert torch.allclose(caches[1].get(some)[0].float(), encoded[0].float(), atol=2e-2)
    assert all(list(c.folder.glob("*.safetensors")) for c in caches)
