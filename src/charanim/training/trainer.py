"""The training loop for the denoiser (and, via ``autoencoder.py``, the VAE).

Per step: a batch that is a pure function of (seed, step), the flow-matching loss,
AdamW with warm-up, gradient clipping, an EMA of the weights. Every ``checkpoint.every``
steps a checkpoint; every ``validation.every`` steps a video grid of held-out samples.
Metrics go to ``RUN/log.jsonl``. The final model (EMA weights) is exported to
``RUN/model`` as a charanim model directory that ``animate --model`` loads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

from charanim.conditioners import check_options_for, create_conditioners
from charanim.conditioning import OutputSpec
from charanim.config import RecipeError, config_hash, to_yaml
from charanim.errors import CharanimError, IncompatibleError
from charanim.io.atomic import write_text_atomic
from charanim.training import checkpoint as ckpt
from charanim.training import distributed
from charanim.training.batch import BatchBuilder
from charanim.training.build import adapter_parameters, attach_adapters, build_backbone
from charanim.training.data import (
    AUGMENT,
    NOISE,
    JoinedData,
    ManifestData,
    batch_indices,
    open_data,
    open_manifests,
    sample_rng,
)
from charanim.training.ema import EMA
from charanim.training.latent_cache import LatentCache, cache_folder
from charanim.training.objective import flow_matching_loss
from charanim.training.recipe import RESUMABLE_CHANGES, Recipe
from charanim.training.stopping import StopOnSignal

ProgressCallback = Callable[[int, int, dict], None]


def recipe_hash(recipe: Recipe) -> str:
    """What a resumed run must share with the original: everything but schedule and length.

    Settings at their default value are left out, so a key that a later charanim adds
    (with a default that keeps the old behaviour) does not orphan the runs made before it."""
    return config_hash(_without_defaults(_hashed_part(recipe), _hashed_part(Recipe())))


def same_recipe(stored: str | None, recipe: Recipe) -> bool:
    """Whether a checkpoint's stored hash is ``recipe``'s, in today's form or in the one
    before default settings were left out."""
    return stored in (recipe_hash(recipe), config_hash(_hashed_part(recipe)))


def _hashed_part(recipe: Recipe) -> dict:
    data = dataclasses.asdict(recipe)
    data["training"].pop("steps", None)
    data["training"].pop("prefetch", None)  # changes speed, not results
    data["training"].pop("cache_latents", None)  # (the same latents, from disk)
    data["training"].pop("compile", None)  # (same numbers up to float rounding)
    for key in RESUMABLE_CHANGES:
        data.pop(key, None)
    return data


def _without_defaults(data: dict, defaults: dict) -> dict:
    kept = {}
    for key, value in data.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            value = _without_defaults(value, default)
            if value:
                kept[key] = value
        elif value != default or key not in defaults:
            kept[key] = value
    return kept


def learning_rate(recipe: Recipe, step: int) -> float:
    optim = recipe.optim
    warm = min(1.0, (step + 1) / max(1, optim.warmup))
    if optim.schedule == "cosine":
        progress = min(1.0, step / max(1, recipe.training.steps))
        return optim.lr * warm * 0.5 * (1 + math.cos(math.pi * progress))
    return optim.lr * warm


def prepare_run(run: Path, recipe: Recipe, resume: bool, force: bool) -> Path | None:
    """Create or check RUN; returns the checkpoint to resume from, if any."""
    if run.exists() and not run.is_dir():
        raise CharanimError(f"Run folder '{run}' is a file.")
    existing = ckpt.list_checkpoints(run)
    if existing and not resume:
        raise CharanimError(
            f"'{run}' already has checkpoints; pass --resume to continue it, or choose a new folder."
        )
    run.mkdir(parents=True, exist_ok=True)
    if resume and existing:
        state = json.loads((existing[-1] / "state.json").read_text())
        if not same_recipe(state.get("recipe_hash"), recipe) and not force:
            raise CharanimError(
                f"'{run}' was trained with another recipe (hash {state.get('recipe_hash')}, now {recipe_hash(recipe)}); "
                "only steps, checkpoint, validation and logging may change on resume (--force to override)."
            )
    write_text_atomic(run / "recipe.yaml", to_yaml(recipe))
    return existing[-1] if (resume and existing) else None


def train(
    recipe: Recipe,
    run: Path,
    resume: bool = False,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
) -> dict:
    check_counts(recipe)
    check_manifest_list(recipe)
    if not recipe.training.train_transformer:
        from charanim.plugins import get_plugins

        _check_frozen_transformer(recipe, get_plugins().conditioners)
    fresh = not run.exists()
    try:
        if recipe.training.task == "autoencoder":
            from charanim.training.autoencoder import train_autoencoder

            return train_autoencoder(recipe, run, resume, force, on_progress)
        if recipe.training.task == "refiner":
            from charanim.training.refiner import train_refiner

            return train_refiner(recipe, run, resume, force, on_progress)
        trainer = DenoiserTrainer(recipe, run, resume, force, on_progress)
    except Exception:
        # a run that failed before its first step (a bad model.init, a broken autoencoder)
        # leaves no folder behind that a retry would have to be told to reuse
        if fresh and run.is_dir() and not ckpt.list_checkpoints(run) and not (run / "log.jsonl").exists():
            shutil.rmtree(run, ignore_errors=True)
        raise
    return trainer.run()


class DenoiserTrainer:
    def __init__(
        self, recipe: Recipe, run: Path, resume: bool, force: bool, on_progress: ProgressCallback | None
    ):
        self.recipe, self.run_dir, self.on_progress = recipe, run, on_progress
        check_options_for(recipe.conditioners, recipe.conditioner_options)
        training = recipe.training
        if training.threads:
            torch.set_num_threads(training.threads)
        self.group = distributed.join()
        self.device = distributed.device_for(self.group)
        if self.group.main:  # the first process creates the run folder, then the others look
            resume_from = prepare_run(run, recipe, resume, force)
        distributed.barrier(self.group)
        if not self.group.main:
            resume_from = ckpt.list_checkpoints(run)[-1] if resume and ckpt.list_checkpoints(run) else None
        if training.batch_size // training.gradient_accumulation % self.group.world:
            raise IncompatibleError(
                f"training.batch_size / gradient_accumulation must be a multiple of the {self.group.world} processes."
            )
        model = recipe.model
        self.spec = OutputSpec(model.width, model.height, model.frames, model.fps)
        self.data = open_data(recipe.data, model.frames, (model.width, model.height))
        self.backbone = build_backbone(recipe, self.device)
        self.conditioners = create_conditioners(recipe.conditioners, self.backbone.config.conditioner_options)
        autoencoder = self.backbone.autoencoder
        if autoencoder.valid_frames(model.frames) != model.frames:
            raise IncompatibleError(
                f"model.frames is {model.frames}, but this autoencoder compresses time by "
                f"{autoencoder.temporal_factor}: use a multiple of it plus one, e.g. "
                f"{autoencoder.valid_frames(model.frames)}."
            )
        latents = _latent_caches(recipe, self.backbone, self.spec)
        self.builder = BatchBuilder(
            self.backbone,
            self.conditioners,
            self.spec,
            recipe.data.pose_source,
            latents,
            face_masks=training.face_weight != 1.0,
            motion_masks=training.motion_weight != 1.0,
        )
        self.adapters = attach_adapters(self.backbone, self.conditioners, model.init)
        self.parameters = self._trainable()
        self.optimizer = torch.optim.AdamW(
            self.parameters.values(),
            lr=recipe.optim.lr,
            betas=tuple(recipe.optim.betas),
            weight_decay=recipe.optim.weight_decay,
        )
        self.ema = EMA(self.parameters, training.ema) if training.ema > 0 else None
        self.step = 0
        if resume_from is not None:
            restored = ckpt.load_checkpoint(resume_from, self.optimizer)
            with torch.no_grad():
                for name, parameter in self.parameters.items():
                    parameter.copy_(restored["weights"][name])
            if self.ema is not None and restored["ema"] is not None:
                self.ema.load_state_dict(restored["ema"])
            self.step = restored["state"]["step"]
            if self.group.main:
                _truncate_log(run / "log.jsonl", self.step)
        self.validation = _validation_set(recipe, model.frames)
        self._pool, self._queued = None, {}

    def _trainable(self) -> dict[str, torch.nn.Parameter]:
        transformer = self.backbone.transformer
        adapters = adapter_parameters(self.adapters)
        for parameter in adapters.values():
            parameter.requires_grad_(True)
        if self.recipe.lora is not None:
            from charanim.training.lora import add_lora

            return {**add_lora(transformer, self.recipe.lora), **adapters}
        if not self.recipe.training.train_transformer:
            transformer.requires_grad_(False)
            return adapters
        transformer.requires_grad_(True)
        if self.recipe.training.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        if self.recipe.training.compile:
            transformer.compile_repeated_blocks(dynamic=False)
        return {**dict(transformer.named_parameters()), **adapters}

    # ------------------------------------------------------------------ loop

    def run(self) -> dict:
        training = self.recipe.training
        started = time.perf_counter()
        first_step = self.step
        self.backbone.transformer.train()
        smoothed = None
        with StopOnSignal() as stop:
            while self.step < training.steps:
                smoothed = self._loop_step(smoothed)
                if stop.should_stop(self.group):
                    raise self._stopped(stop)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.backbone.transformer.eval()
        model_dir = self.export() if self.group.main else self.run_dir / "model"
        distributed.leave(self.group)
        return {
            "run": str(self.run_dir), "model": str(model_dir), "steps": self.step, "trained_steps": self.step - first_step,
            "seconds": round(time.perf_counter() - started, 1), "final_loss": smoothed,
            "parameters": sum(p.numel() for p in self.parameters.values()),
        }  # fmt: skip

    def _loop_step(self, smoothed: float | None) -> float:
        """One step, then its log line, progress, checkpoint and validation when due."""
        recipe, training = self.recipe, self.recipe.training
        tic = time.perf_counter()
        loss = self._train_step()
        smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
        self.step += 1
        seconds = time.perf_counter() - tic
        record = {"step": self.step, "loss": round(loss, 6), "loss_smooth": round(smoothed, 6),
                  "lr": learning_rate(recipe, self.step - 1), "seconds_per_step": round(seconds, 3), "time": round(time.time(), 1)}  # fmt: skip
        if not self.group.main:  # the first process writes; the others only train
            return smoothed
        if self.step % recipe.log_every == 0 or self.step == training.steps:
            _append_log(self.run_dir / "log.jsonl", record)
        if self.on_progress:
            self.on_progress(self.step, training.steps, record)
        if self.step % recipe.checkpoint.every == 0 or self.step == training.steps:
            self.save()
        if self.validation is not None and (
            self.step % recipe.validation.every == 0 or self.step == training.steps
        ):
            self.validate()
        return smoothed

    def _stopped(self, stop: StopOnSignal) -> Exception:
        """Checkpoint the step just finished (unless it was one already), then stop."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        latest = ckpt.list_checkpoints(self.run_dir)
        if self.group.main:
            if latest and latest[-1].name == f"{ckpt.PREFIX}{self.step:07d}":
                self.builder.save_latents()  # save() keeps them otherwise
            else:
                latest = [self.save()]
        distributed.leave(self.group)
        return stop.stopped(self.step, latest[-1] if latest else self.run_dir)

    def _batch(self, step: int, part: int):
        """Micro-batch ``part`` of ``step``: a pure function of (seed, step, slot), so it can
        be built ahead of time, in another thread, with the same result."""
        training = self.recipe.training
        micro = training.batch_size // training.gradient_accumulation
        indices = batch_indices(len(self.data), training.batch_size, step, training.seed)
        slots = range(part * micro + self.group.rank, (part + 1) * micro, self.group.world)
        samples = [self.data.sample(indices[i], sample_rng(training.seed, step, i)) for i in slots]
        rngs = [sample_rng(training.seed, step, i, AUGMENT) for i in slots]
        return self.builder.build(samples, rngs, augment=training.augment)

    def _next_batch(self, step: int, part: int):
        """The batch, from the prefetch thread when it is on; then queue the one after it."""
        training = self.recipe.training
        if not prefetching(training.prefetch, self.device):
            return self._batch(step, part)
        if self._pool is None:
            self._pool = _prefetch_pool()
        key = (step, part)
        future = self._queued.pop(key, None) or self._pool.submit(self._batch, step, part)
        following = (step, part + 1) if part + 1 < training.gradient_accumulation else (step + 1, 0)
        if following[0] < training.steps:
            self._queued = {following: self._pool.submit(self._batch, *following)}
        return future.result()

    def _train_step(self) -> float:
        recipe, training = self.recipe, self.recipe.training
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(recipe, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for part in range(training.gradient_accumulation):
            batch = self._next_batch(self.step, part)
            generator = torch.Generator().manual_seed(
                int(sample_rng(training.seed, self.step, part, NOISE).integers(2**62))
            )
            with _autocast(training.mixed_precision, self.device):
                loss = flow_matching_loss(
                    self.backbone, batch, generator, training.logit_mean, training.logit_std,
                    training.dropout.motion, training.dropout.text,
                    rows=slice(self.group.rank, None, self.group.world),
                    full_batch=training.batch_size // training.gradient_accumulation,
                    foreground_weight=training.foreground_weight,
                    face_weight=training.face_weight,
                    motion_weight=training.motion_weight,
                )  # fmt: skip
            if not torch.isfinite(loss):
                last = ckpt.list_checkpoints(self.run_dir)
                where = f"the last good checkpoint is {last[-1]}" if last else "no checkpoint was written yet"
                raise CharanimError(
                    f"The loss became {loss.item()} at step {self.step + 1}; {where}. Lower optim.lr or check the data."
                )
            if loss.requires_grad:  # not when the only trainable adapter was dropped
                (loss / training.gradient_accumulation).backward()
            total += loss.item() / training.gradient_accumulation
        distributed.average_gradients(self.parameters.values(), self.group)
        total = distributed.mean(total, self.group)
        torch.nn.utils.clip_grad_norm_(self.parameters.values(), recipe.optim.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        return total

    # ------------------------------------------------------------------ outputs

    def save(self) -> Path:
        self.builder.save_latents()
        weights = {name: p.detach() for name, p in self.parameters.items()}
        state = {"recipe_hash": recipe_hash(self.recipe), "task": "denoiser"}
        ema = self.ema.state_dict() if self.ema is not None else None
        return ckpt.save_checkpoint(
            self.run_dir, self.step, weights, ema, self.optimizer, state, self.recipe.checkpoint.keep
        )

    def _with_ema(self):
        import contextlib

        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    def validate(self) -> dict | None:
        from charanim.training.validate import validate

        self.backbone.transformer.eval()
        with self._with_ema():
            result = validate(
                self.backbone,
                self.conditioners,
                self.builder,
                self.validation,
                self.recipe,
                self.run_dir,
                self.step,
            )
        self.backbone.transformer.train()
        _append_log(self.run_dir / "log.jsonl", {"step": self.step, "validation": result})
        return result

    def export(self) -> Path:
        from charanim.training.export import export_model

        with self._with_ema():
            return export_model(self.backbone, self.recipe, self.run_dir / "model", self.step)


def export_latest(recipe: Recipe, run: Path, force: bool = False) -> dict:
    """Export RUN's newest checkpoint (its EMA weights when it has them) to RUN/model,
    without touching the run: safe while training goes on in another process. ``force``
    exports under a recipe that changed since (the exported config is the given recipe's)."""
    found = ckpt.list_checkpoints(run)
    if not found:
        raise CharanimError(f"'{run}' has no checkpoint to export.")
    latest = found[-1]
    restored = ckpt.load_checkpoint(latest)
    state = restored["state"]
    if not same_recipe(state.get("recipe_hash"), recipe) and not force:
        raise CharanimError(
            f"'{run}' was trained with another recipe (hash {state.get('recipe_hash')}, this one is "
            f"{recipe_hash(recipe)}); --force exports it anyway."
        )
    # the average covers the trained weights only (a frozen encoder has none): the rest as saved
    averaged = {**restored["weights"], **(restored["ema"] or {})}
    weights = {k: v for k, v in averaged.items() if not k.startswith("__")}
    if recipe.training.task == "refiner":
        from charanim.training.refiner import build, export, refiner_spec

        net = build(recipe)
        net.load_state_dict(weights)
        model = export(net, refiner_spec(recipe), recipe, run / "model", state["step"])
    elif recipe.training.task == "autoencoder":
        from charanim.training.autoencoder import _export, build_vae

        vae = build_vae(recipe)
        vae.load_state_dict(weights)
        training = recipe.training
        model = _export(
            vae,
            ManifestData(recipe.data, frames=1),
            run / "model",
            training.pose_share,
            measure=training.train_encoder,
        )
    else:
        from charanim.training.export import export_model

        backbone = build_backbone(recipe, torch.device("cpu"))
        adapters = attach_adapters(
            backbone,
            create_conditioners(recipe.conditioners, backbone.config.conditioner_options),
            recipe.model.init,
        )
        if recipe.lora is not None:
            from charanim.training.lora import add_lora

            add_lora(backbone.transformer, recipe.lora)
        parameters = {**dict(backbone.transformer.named_parameters()), **adapter_parameters(adapters)}
        missing = set(weights) - set(parameters)
        if missing:
            raise CharanimError(
                f"Checkpoint '{latest}' holds weights this recipe's model lacks: {sorted(missing)[:3]}"
            )
        with torch.no_grad():
            for name, value in weights.items():
                parameters[name].copy_(value)
        model = export_model(backbone, recipe, run / "model", state["step"])
    return {"run": str(run), "model": str(model), "steps": state["step"], "checkpoint": str(latest),
            "ema": restored["ema"] is not None}  # fmt: skip


def prefetching(setting: bool | None, device: torch.device | None = None) -> bool:
    """``training.prefetch``, or unset: on a GPU, yes (the cores wait for it); on the CPU,
    whether cores are left beside the step's threads."""
    if setting is not None:
        return setting
    if device is not None and device.type != "cpu":
        return True
    return (os.cpu_count() or 1) > torch.get_num_threads()


def _prefetch_pool():
    """The thread that builds the next batch while the step runs: its torch ops on one
    core, at the lowest CPU priority. A second thread running a parallel torch op gets
    an OpenMP team of its own, whose helper spins beside the step's (on 2 cores: a bare
    diffusers step 0.85 -> 1.01 s, for as long as the thread lives); and at equal
    priority the batch takes its time from the step's threads even inside their parallel
    regions, where at the lowest it mostly runs while they wait
    (``benchmarks/train_step_overhead.py``)."""
    from concurrent.futures import ThreadPoolExecutor

    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="charanim-batch", initializer=_background_thread
    )
    pool.submit(int).result()  # the initializer has run
    # set_num_threads also sets the default of threads that start later: back to the step's
    torch.set_num_threads(threads)
    return pool


def _background_thread() -> None:
    """A thread reads torch's thread count once, at its first parallel op: set 1, then run one."""
    torch.set_num_threads(1)
    torch.ones(1 << 16).sum()
    if sys.platform == "linux":  # a thread's own priority (elsewhere this call is the process's)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _autocast(precision: str, device: torch.device):
    import contextlib

    if precision == "no" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _latent_caches(recipe: Recipe, backbone, spec: OutputSpec) -> list[LatentCache]:
    """The latents of a frozen per-frame autoencoder, one cache per manifest, on disk beside
    it when the recipe keeps them (in memory only otherwise)."""
    from charanim.models.autoencoder import FrameAutoencoder

    autoencoder = backbone.autoencoder
    keep = recipe.training.cache_latents and isinstance(autoencoder, FrameAutoencoder)
    manifests = [] if recipe.data.images else recipe.data.manifests
    size = (spec.width, spec.height)
    folders = [cache_folder(Path(m), autoencoder, size, spec.fit) if keep and m else None for m in manifests]
    return [LatentCache(folder) for folder in folders or [None]]


def _validation_set(recipe: Recipe, frames: int) -> ManifestData | JoinedData | None:
    """The held-out pairs: each manifest's test split, the first manifest's first."""
    from dataclasses import replace

    if recipe.validation.samples <= 0 or recipe.data.images:
        return None
    try:
        return open_manifests(replace(recipe.data, split="test"), frames)
    except CharanimError:
        return None


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines after the checkpoint being resumed, so the curve has no duplicates."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def check_manifest_list(recipe: Recipe) -> None:
    """A list in ``data.manifest`` is for the denoiser and refiner tasks, and names each
    manifest once."""
    listed = recipe.data.manifest
    if not isinstance(listed, list):
        return
    if recipe.training.task == "autoencoder":
        raise RecipeError(
            "data.manifest is a list; training.task: autoencoder reads one manifest (its frames and "
            "held-out frames are one world's): name one."
        )
    if not listed or len(set(listed)) < len(listed):
        raise RecipeError("data.manifest must list one manifest or more, each once.")


def check_counts(recipe: Recipe) -> None:
    """Step counts and intervals that must be positive (an interval of 0 would divide by zero),
    loss weights that must be positive, the sampling strength (a fraction) and detail
    restoration (0 or more)."""
    counts = {
        "training.steps": recipe.training.steps,
        "training.batch_size": recipe.training.batch_size,
        "training.gradient_accumulation": recipe.training.gradient_accumulation,
        "checkpoint.every": recipe.checkpoint.every,
        "validation.every": recipe.validation.every,
        "log_every": recipe.log_every,
    }
    for key, value in counts.items():
        if value < 1:
            hint = (
                " (turn validation samples off with validation.samples=0)"
                if key == "validation.every"
                else ""
            )
            raise RecipeError(f"{key} must be at least 1, got {value}{hint}.")
    training = recipe.training
    for key in ("foreground_weight", "face_weight", "motion_weight"):
        if not getattr(training, key) > 0.0:  # a loss weight of 0 or less would drop or reverse it
            raise RecipeError(
                f"training.{key} must be positive (1: no extra weight), got {getattr(training, key):g}."
            )
    if not 0.0 <= training.pose_share <= 1.0:
        raise RecipeError(f"training.pose_share must be in [0, 1], got {training.pose_share:g}.")
    if not 0.0 <= training.sampled_share <= 1.0:
        raise RecipeError(f"training.sampled_share must be in [0, 1], got {training.sampled_share:g}.")
    if training.sampled_share > 0:
        if training.task != "autoencoder" or training.train_encoder:
            raise RecipeError(
                "training.sampled_share trains a decoder on a denoiser's samples: it needs "
                "training.task: autoencoder and training.train_encoder: false (the denoiser's latents are "
                "the frozen encoder's)."
            )
        if not recipe.model.denoiser:
            raise RecipeError(
                "training.sampled_share needs model.denoiser: the pose model whose samples to decode."
            )
    if training.pixel_loss != "l2" and training.task != "refiner":
        raise RecipeError(
            f"training.pixel_loss is the refiner task's loss (training.task: refiner), not the {training.task}'s."
        )
    if training.edge_weight < 0.0:
        raise RecipeError(f"training.edge_weight must be 0 (off) or more, got {training.edge_weight:g}.")
    if training.edge_weight and training.task not in ("autoencoder", "refiner"):
        raise RecipeError(
            "training.edge_weight is a loss of the autoencoder and refiner tasks' pixels, not the "
            f"{training.task}'s latents."
        )
    if training.foreground_inset < 0:
        raise RecipeError(
            f"training.foreground_inset must be 0 (off) or more pixels, got {training.foreground_inset}."
        )
    if training.foreground_inset and training.task != "refiner":
        raise RecipeError(
            f"training.foreground_inset shapes the refiner task's loss (training.task: refiner), not the {training.task}'s."
        )
    if training.task == "refiner":
        if not recipe.model.denoiser:
            raise RecipeError(
                "training.task: refiner needs model.denoiser: the model whose frames it corrects."
            )
        from charanim.training.refiner import refiner_spec

        refiner_spec(recipe)  # its inputs and gate
        if not recipe.model.refiner.block_out_channels or min(recipe.model.refiner.block_out_channels) < 1:
            raise RecipeError("model.refiner.block_out_channels must list positive widths.")
    if training.sampled_share > 0 or training.task == "refiner":
        if training.sampled_pairs < 2:  # one to train on, one held out
            raise RecipeError(f"training.sampled_pairs must be at least 2, got {training.sampled_pairs}.")
    if not 0.0 < recipe.validation.strength <= 1.0:
        raise RecipeError(f"validation.strength must be in (0, 1], got {recipe.validation.strength:g}.")
    from charanim.engine.pipeline import STARTS
    from charanim.engine.scene import SCENES

    if recipe.validation.start not in STARTS:
        raise RecipeError(f"validation.start must be {' or '.join(STARTS)}, got '{recipe.validation.start}'.")
    if recipe.validation.scene not in SCENES:
        raise RecipeError(f"validation.scene must be {' or '.join(SCENES)}, got '{recipe.validation.scene}'.")
    if not 0.0 <= recipe.validation.restore_detail <= 2.0:
        raise RecipeError(
            f"validation.restore_detail must be in [0, 2] (0: off), got {recipe.validation.restore_detail:g}."
        )


def _check_frozen_transformer(recipe: Recipe, registry) -> None:
    """``training.train_transformer: false`` needs a trained transformer to freeze and an
    adapter to train (a conditioner whose site is not ``in_context``)."""
    from charanim.conditioning import InjectionSite

    if recipe.training.task != "denoiser" or recipe.lora is not None or not recipe.model.init:
        raise IncompatibleError(
            "training.train_transformer: false freezes a trained transformer: it needs "
            "training.task: denoiser, model.init set and no lora section."
        )
    if all(registry.get(name).site is InjectionSite.IN_CONTEXT for name in recipe.conditioners):
        raise IncompatibleError(
            "training.train_transformer: false trains only the conditioners' adapters, and "
            f"none of {', '.join(recipe.conditioners)} has one (add e.g. audio-face)."
        )


def _check_model_paths(recipe: Recipe) -> None:
    """The recipe's backbone is one we build, and the folders it starts from exist."""
    from charanim.training.build import BACKBONES

    spec = recipe.model
    if recipe.training.task == "denoiser" and spec.backbone not in BACKBONES:
        raise CharanimError(f"Unknown model.backbone '{spec.backbone}'; use {' or '.join(BACKBONES)}.")
    if spec.init and not Path(spec.init).is_dir():
        raise CharanimError(
            f"model.init '{spec.init}' is not a folder (a model or autoencoder to start from)."
        )
    if spec.autoencoder and not spec.init and not (Path(spec.autoencoder) / "config.json").is_file():
        raise CharanimError(
            f"model.autoencoder '{spec.autoencoder}' is not a diffusers autoencoder folder (no config.json); "
            "train one with recipes/tiny/vae.yaml."
        )
    if recipe.training.task == "refiner":
        from charanim.training.refiner import denoiser_folder

        denoiser_folder(recipe)
    elif recipe.training.sampled_share > 0 and spec.denoiser:  # a name or a folder, found as animate finds it
        from charanim.models.backbones import resolve_model
        from charanim.plugins import get_plugins

        resolve_model(spec.denoiser, get_plugins().backbones)


def check_recipe(recipe: Recipe) -> None:
    """Cheap checks for ``--dry-run`` (before any model is built)."""
    from charanim.plugins import get_plugins

    check_counts(recipe)
    check_manifest_list(recipe)
    _check_model_paths(recipe)
    registry = get_plugins().conditioners
    for name in recipe.conditioners:
        registry.get(name)
    check_options_for(recipe.conditioners, recipe.conditioner_options)
    if recipe.training.batch_size % recipe.training.gradient_accumulation:
        raise IncompatibleError("training.batch_size must be a multiple of training.gradient_accumulation.")
    if recipe.training.task == "denoiser":
        open_data(recipe.data, recipe.model.frames, (recipe.model.width, recipe.model.height))
    else:
        for manifest in recipe.data.manifests:
            if not Path(manifest).is_file():
                raise CharanimError(f"Training manifest '{manifest}' does not exist.")
    if not recipe.training.train_transformer:
        _check_frozen_transformer(recipe, registry)
    if recipe.training.task == "autoencoder" and not recipe.training.train_encoder and not recipe.model.init:
        from charanim.training.autoencoder import DECODER_NEEDS_INIT

        raise CharanimError(DECODER_NEEDS_INIT)
