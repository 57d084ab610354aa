"""charanim train, task autoencoder: a tiny VAE from scratch, then its decoder alone."""

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from charanim.config import resolve
from charanim.errors import CharanimError
from charanim.training.recipe import Recipe
from charanim.training.trainer import export_latest, train

WEIGHTS = "diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from charanim.testing import write_humanoid_world

    out = tmp_path_factory.mktemp("world")
    return write_humanoid_world(out, count=8, seed=3, frames=4, shard_size=4, test_fraction=0.25)


def _recipe(tmp_path: Path, world: Path, name: str, training: str, model: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model:
          vae: {{block_out_channels: [8, 16], layers_per_block: 1, latent_channels: 4, norm_num_groups: 4}}
          {model}
        data: {{manifest: {world}}}
        training: {{task: autoencoder, batch_size: 4, ema: 0.9, threads: 2, {training}}}
        optim: {{lr: 2.0e-3, warmup: 1}}
        checkpoint: {{every: 3}}
        validation: {{every: 3}}
        log_every: 1
    """)
    )
    return path


@pytest.fixture(scope="module")
def vae(tmp_path_factory, world) -> Path:
    root = tmp_path_factory.mktemp("vae")
    train(resolve(Recipe, _recipe(root, world, "vae", "steps: 6"), []), root / "run")
    return root / "run" / "model"


def _encoder_weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(folder / WEIGHTS).items() if not k.startswith("decoder.")}


def test_decoder_only_training_keeps_the_latent_space_and_changes_the_decoder(tmp_path, world, vae):
    recipe = resolve(
        Recipe,
        _recipe(
            tmp_path,
            world,
            "decoder",
            "steps: 6, train_encoder: false, foreground_weight: 4.0, edge_weight: 0.5",
            f"init: {vae}",
        ),
        [],
    )
    summary = train(recipe, tmp_path / "run")
    new = tmp_path / "run" / "model"

    before, after = _encoder_weights(vae), _encoder_weights(new)
    encoder_keys = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert encoder_keys and all(torch.equal(before[k], after[k]) for k in encoder_keys)
    old_decoder, new_decoder = load_file(vae / WEIGHTS), load_file(new / WEIGHTS)
    changed = [
        k for k in old_decoder if k.startswith("decoder.") and not torch.equal(old_decoder[k], new_decoder[k])
    ]
    assert changed, "the decoder did not train"
    # the normalisation the denoisers learnt under is kept, not measured again
    old_config, new_config = (json.loads((f / "config.json").read_text()) for f in (vae, new))
    assert new_config["latents_mean"] == old_config["latents_mean"]
    assert new_config["latents_std"] == old_config["latents_std"]
    assert summary["steps"] == 6

    validation = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    scores = [r["validation"] for r in validation if "validation" in r]
    assert scores and all(0 < s["psnr_character"] < 60 and 0 < s["psnr"] < 60 for s in scores)

    # exporting the run again merges the averaged decoder with the saved (frozen) encoder
    exported = export_latest(recipe, tmp_path / "run")
    assert all(torch.equal(after[k], _encoder_weights(Path(exported["model"]))[k]) for k in encoder_keys)


def test_decoder_only_training_needs_an_autoencoder_to_start_from(tmp_path, world, vae):
    with pytest.raises(CharanimError, match="set model.init"):
        train(
            resolve(Recipe, _recipe(tmp_path, world, "a", "steps: 2, train_encoder: false"), []),
            tmp_path / "a",
        )
    not_a_vae = tmp_path / "not-a-vae"
    not_a_vae.mkdir()
    with pytest.raises(CharanimError, match="not a diffusers autoencoder"):
        train(
            resolve(Recipe, _recipe(tmp_path, world, "b", "steps: 2", f"init: {not_a_vae}"), []),
            tmp_path / "b",
        )
    model = tmp_path / "a-model"  # a charanim model folder: its autoencoder is in vae/
    shutil.copytree(vae, model / "vae")
    with pytest.raises(CharanimError, match="its autoencoder is '.*a-model/vae'"):
        train(
            resolve(Recipe, _recipe(tmp_path, world, "c", "steps: 2", f"init: {model}"), []),
            tmp_path / "c",
        )
    assert not any((tmp_path / run).exists() for run in "abc")  # nothing half-made left behind


def test_foreground_weight_leans_the_loss_on_the_character():
    from charanim.training.autoencoder import reconstruction_loss

    target = torch.zeros(1, 3, 4, 4)
    output = target.clone()
    output[..., 0, 0] = 1.0  # one wrong pixel, inside the character
    character = torch.zeros(1, 4, 4)
    character[0, 0, 0] = 1.0
    plain = reconstruction_loss(output, target, None, 0.0)
    weighted = reconstruction_loss(output, target, 1.0 + 3.0 * character, 0.0)
    assert plain == pytest.approx(1.5 / 16)
    assert weighted == pytest.approx(4 * 1.5 / 19)
    assert reconstruction_loss(output, target, None, 1.0) > plain


def test_shipping_a_model_with_a_fine_tuned_decoder_checks_the_encoder(tmp_path, world, vae):
    import importlib.util

    from safetensors.torch import save_file

    spec = importlib.util.spec_from_file_location(
        "ship_model", Path(__file__).parents[1] / "tools" / "ship_model.py"
    )
    ship_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship_model)

    decoder = _recipe(tmp_path, world, "decoder", "steps: 2, train_encoder: false", f"init: {vae}")
    train(resolve(Recipe, decoder, []), tmp_path / "decoder")
    model = tmp_path / "model"  # a model folder: a transformer and the autoencoder it learnt on
    (model / "transformer").mkdir(parents=True)
    save_file({"w": torch.ones(2)}, model / "transformer" / WEIGHTS)
    shutil.copytree(vae, model / "vae")
    ship_model.ship(model, tmp_path / "shipped", tmp_path / "decoder" / "model")
    shipped = load_file(tmp_path / "shipped" / "vae" / WEIGHTS)
    fine_tuned = load_file(tmp_path / "decoder" / "model" / WEIGHTS)
    assert all(v.dtype == torch.float16 for v in shipped.values())
    assert torch.allclose(
        shipped["decoder.conv_out.weight"].float(), fine_tuned["decoder.conv_out.weight"], atol=1e-3
    )
    # the warm-started decoder's config names the folder it was loaded from; the shipped one not
    assert "_name_or_path" in json.loads((tmp_path / "decoder" / "model" / "config.json").read_text())
    shipped_config = json.loads((tmp_path / "shipped" / "vae" / "config.json").read_text())
    assert "_name_or_path" not in shipped_config and shipped_config["latent_channels"] > 0

    with pytest.raises(SystemExit, match="is not a model folder"):
        ship_model.ship(tmp_path / "no-such-model", tmp_path / "shipped")

    # an autoencoder trained apart has other latents: refused, the target left as it was
    other = _recipe(tmp_path, world, "other", "steps: 2, seed: 7")
    train(resolve(Recipe, other, []), tmp_path / "other")
    with pytest.raises(SystemExit, match="does not share the model's encoder"):
        ship_model.ship(model, tmp_path / "shipped", tmp_path / "other" / "model")
    assert torch.equal(
        load_file(tmp_path / "shipped" / "vae" / WEIGHTS)["decoder.conv_out.weight"],
        shipped["decoder.conv_out.weight"],
    )


def test_pose_share_sets_how_many_frames_are_pose_maps(world):
    import numpy as np

    from charanim.training.autoencoder import _frame
    from charanim.training.data import ManifestData
    from charanim.training.recipe import DataSpec

    data = ManifestData(DataSpec(manifest=str(world)), frames=1)

    def poses(share: float) -> int:  # pose maps are black but for their bones
        frames = [
            _frame(data, i % len(data), np.random.default_rng(i), pose_share=share)[0] for i in range(40)
        ]
        return sum(int((frame.max(-1) == 0).mean() > 0.5) for frame in frames)

    assert poses(0.0) == 0
    assert poses(1.0) == 40
    assert 0 < poses(0.3) < 40


def test_pose_share_outside_zero_to_one_is_refused(tmp_path, world):
    with pytest.raises(CharanimError, match=r"training.pose_share must be in \[0, 1\], got 1.5"):
        train(resolve(Recipe, _recipe(tmp_path, world, "p", "steps: 2, pose_share: 1.5"), []), tmp_path / "p")
    assert not (tmp_path / "p").exists()


def _pose_denoiser(root: Path, world: Path, vae: Path) -> Path:
    """A tiny pose model on ``vae``'s latents (two training steps: what it samples only
    has to be its own)."""
    recipe = root / "denoiser.yaml"
    recipe.write_text(
        textwrap.dedent(f"""
        model:
          autoencoder: {vae}
          width: 32
          height: 32
          frames: 4
          transformer: {{patch_size: [1, 2, 2], num_attention_heads: 2, attention_head_dim: 12, ffn_dim: 32, num_layers: 1, text_dim: 16, freq_dim: 16, rope_max_seq_len: 64}}
        conditioners: [pose]
        data: {{manifest: {world}, same_plan: true}}
        training: {{steps: 2, batch_size: 2, ema: 0, threads: 2}}
        validation: {{samples: 0, steps: 2}}
    """)
    )
    return Path(train(resolve(Recipe, recipe, []), root / "denoiser")["model"])


def test_a_decoder_learns_to_decode_the_denoisers_own_samples(tmp_path, world, vae):
    import numpy as np

    from charanim.training.data import ManifestData
    from charanim.training.sampled_pairs import sample_pairs

    denoiser = _pose_denoiser(tmp_path, world, vae)
    recipe = resolve(
        Recipe,
        _recipe(
            tmp_path,
            world,
            "sampled",
            "steps: 3, train_encoder: false, foreground_weight: 4.0, sampled_share: 0.5, sampled_pairs: 4",
            f"init: {vae}\n          denoiser: {denoiser}",
        ),
        [],
    )
    reported = []
    train(
        recipe,
        tmp_path / "run",
        on_progress=lambda done, total, record: reported.append((done, total, record)),
    )
    new = tmp_path / "run" / "model"
    # the sampling is reported pair by pair (a bar, not minutes of silence), then the steps
    assert [(d, t, r.get("stage")) for d, t, r in reported[:4]] == [
        (n, 4, "Sampling pairs") for n in (1, 2, 3, 4)
    ]
    assert [d for d, _, r in reported[4:] if "stage" not in r] == [1, 2, 3]
    chunk = load_file(tmp_path / "run" / "sampled" / "chunk-00000.safetensors")
    assert chunk["latents"].shape[:3] == (4, 4, 4) and chunk["target"].shape == (4, 4, 32, 32, 3)
    # each pair's true masks, as the data holds them (0/255 in a world's shards)
    first = ManifestData(recipe.data, frames=4).sample(0, np.random.default_rng(0))
    assert np.array_equal(chunk["mask"][0].numpy() > 0, first.target_mask > 0)
    assert chunk["mask"].any() and not chunk["mask"].all()
    before, after = _encoder_weights(vae), _encoder_weights(new)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("encoder.", "quant_conv.")))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"sampled_pairs": 4, "of": 4}.items() <= log[0].items()
    scores = [r["validation"] for r in log if "validation" in r]
    assert scores and all(0 < s["sampled_psnr_character"] < 60 for s in scores)

    # the pairs are sampled once: a rerun (or a resumed run) reads the chunks, loads no model
    pairs = sample_pairs("no-such-model", recipe.data, 4, tmp_path / "run" / "sampled")
    assert torch.equal(pairs.latents, chunk["latents"])


def test_the_kept_latents_are_what_the_frames_were_decoded_from(world, vae, tmp_path):
    """``keep_latents``: the sampled latents are exactly the ones ``animate`` decodes."""
    import numpy as np

    from charanim.api import load_pipeline
    from charanim.engine.pipeline import SamplingSettings
    from charanim.io.pixels import to_pixels, to_uint8
    from charanim.training.data import ManifestData

    pipeline = load_pipeline(str(_pose_denoiser(tmp_path, world, vae)), device="cpu")
    recipe = resolve(Recipe, _recipe(tmp_path, world, "data", "steps: 1"), [])
    from charanim.conditioning import OutputSpec
    from charanim.training.batch import BatchBuilder

    spec = OutputSpec(32, 32, 4, 8.0)
    builder = BatchBuilder(pipeline.backbone, pipeline.conditioners, spec, "retarget")
    sample = ManifestData(recipe.data, frames=4).sample(0, np.random.default_rng(0))
    condition, _, _ = builder.motion_condition(sample, np.random.default_rng(0))
    result = pipeline(
        to_pixels(builder._fit(sample.reference)), [condition], spec,
        settings=SamplingSettings(restore_detail=0.0), keep_latents=True,
    )  # fmt: skip
    assert len(result.latents) == 1
    decoded = to_uint8(pipeline.backbone.autoencoder.decode(result.latents[0])[0])
    assert np.array_equal(decoded, result.frames)


@pytest.mark.parametrize(
    ("training", "model", "message"),
    [
        ("sampled_share: 0.5", "", "needs training.task: autoencoder and training.train_encoder: false"),
        ("sampled_share: 0.5, train_encoder: false", "", "needs model.denoiser"),
        ("sampled_share: 1.5, train_encoder: false", "", r"sampled_share must be in \[0, 1\]"),
    ],
)
def test_sampled_share_settings_are_checked(tmp_path, world, vae, training, model, message):
    recipe = resolve(Recipe, _recipe(tmp_path, world, "x", f"steps: 2, {training}", f"init: {vae}"), [])
    with pytest.raises(CharanimError, match=message):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()
