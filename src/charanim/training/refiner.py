"""Training a model's refiner (``training.task: refiner``; :mod:`charanim.engine.refine`).

``model.denoiser`` — a trained pose model — is run once on ``training.sampled_pairs``
training pairs, as ``animate`` runs it (:mod:`charanim.training.sampled_pairs`, kind
``frames``); the refiner then learns, frame by frame, the correction that takes each
finished frame to the pair's true frame, given what the model was given, inside the gate
where it will be allowed to change anything. The loss is the squared error, the measure
the bench's PSNR reads, or the absolute error (``training.pixel_loss``), which leaves
fewer pale halos round the limbs; the character's pixels are weighted by
``training.foreground_weight`` (on the character shrunk by ``training.foreground_inset``
pixels), and ``training.edge_weight`` adds the absolute error of the image gradients.
The model itself is frozen: the run's model is the denoiser's folder with the refiner
added, which ``animate`` runs by default and ``--refine off`` leaves out.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from charanim.engine.refine import correct, dilate
from charanim.errors import CharanimError
from charanim.io.pixels import to_pixels
from charanim.metrics import foreground_mask, psnr
from charanim.models.refiner import FOLDER, RefinerSpec, build_refiner, load_refiner
from charanim.training import checkpoint as ckpt
from charanim.training.autoencoder import gradient_loss
from charanim.training.data import sample_rng
from charanim.training.distributed import Group
from charanim.training.ema import EMA
from charanim.training.recipe import Recipe
from charanim.training.sampled_pairs import HeldOutFrames
from charanim.training.stopping import StopOnSignal


def refiner_spec(recipe: Recipe) -> RefinerSpec:
    spec = recipe.model.refiner
    try:
        return RefinerSpec(
            tuple(spec.inputs),
            spec.tolerance,
            spec.dilation,
            spec.motion_drawn,
            spec.reference_bones,
            spec.warp_behind,
        )
    except ValueError as exc:
        raise CharanimError(f"model.refiner: {exc}.") from None


def denoiser_folder(recipe: Recipe) -> Path:
    """``model.denoiser``'s folder: a charanim model (a name or a folder), the only kind
    whose loading attaches a refiner."""
    from charanim.models.backbones import resolve_model
    from charanim.models.tiny import TinyFamily
    from charanim.plugins import get_plugins

    family, folder = resolve_model(recipe.model.denoiser, get_plugins().backbones)
    if family is not TinyFamily:
        raise CharanimError(
            f"model.denoiser '{recipe.model.denoiser}' is a {family.name} model; refiners are trained for "
            "charanim's own models (charanim.json + transformer/)."
        )
    return folder


def build(recipe: Recipe):
    """The refiner to train: ``model.init``'s (a refiner folder, or a model with one), or a new one."""
    spec = refiner_spec(recipe)
    if recipe.model.init:
        folder = Path(recipe.model.init)
        folder = folder / FOLDER if (folder / FOLDER).is_dir() else folder
        return load_refiner(folder, spec).requires_grad_(True)
    widths = tuple(recipe.model.refiner.block_out_channels)
    return build_refiner(spec, widths, recipe.model.refiner.layers_per_block, recipe.training.seed)


def inset(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Masks ``[N, 1, H, W]`` in {0, 1} shrunk by ``pixels`` (a square's steps): the
    backdrop grown over them."""
    return 1.0 - dilate(1.0 - mask, pixels)


#: what a sampled frame brings to its correction: :func:`correct`'s arguments
GIVEN = ("frame", "warp", "motion", "reference", "bones", "reference_motion")


def _correct(net, spec: RefinerSpec, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    frames, warp, motion, reference, bones, reference_motion = map(batch.get, GIVEN)
    return correct(net, spec, frames, warp, motion, reference, bones=bones, reference_motion=reference_motion)


class _Frames(HeldOutFrames):
    """The sampled finished frames and what the model was given, in [-1, 1]."""

    def batch(self, picks: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        pairs = self.pairs
        frames = [f for _, f in picks]
        index = [p for p, _ in picks]

        def pixels(array: np.ndarray) -> torch.Tensor:  # [N, H, W, 3] -> [N, 3, H, W]
            return to_pixels(array).transpose(0, 1)

        return {
            "frame": pixels(pairs.frames[index, frames]),
            "warp": pixels(pairs.warp[index, frames]),
            "motion": pixels(pairs.motion[index, frames]),
            "reference": pixels(pairs.reference[index]),
            "bones": torch.from_numpy(pairs.bones[index])[:, None],
            "reference_motion": pixels(pairs.reference_motion[index]),
            "target": pixels(pairs.target[index, frames]),
            "mask": torch.from_numpy(pairs.mask[index, frames]).float()[:, None],
        }


def train_refiner(recipe: Recipe, run: Path, resume: bool, force: bool, on_progress=None) -> dict:
    from charanim.training.sampled_pairs import sampled_pairs_of
    from charanim.training.trainer import _append_log, _truncate_log, learning_rate, prepare_run, recipe_hash

    training = recipe.training
    if training.threads:
        torch.set_num_threads(training.threads)
    denoiser_folder(recipe)  # before the run folder: a wrong model costs nothing
    resume_from = prepare_run(run, recipe, resume, force)
    spec = refiner_spec(recipe)
    net = build(recipe).train()
    parameters = dict(net.named_parameters())
    optimizer = torch.optim.AdamW(
        parameters.values(),
        lr=recipe.optim.lr,
        betas=tuple(recipe.optim.betas),
        weight_decay=recipe.optim.weight_decay,
    )
    ema = EMA(parameters, training.ema) if training.ema > 0 else None
    step = 0
    if resume_from is not None:
        restored = ckpt.load_checkpoint(resume_from, optimizer)
        net.load_state_dict(restored["weights"])
        if ema is not None and restored["ema"] is not None:
            ema.load_state_dict(restored["ema"])
        step = restored["state"]["step"]
        _truncate_log(run / "log.jsonl", step)
    frames = _Frames(sampled_pairs_of(recipe, run, on_progress, kind="frames"))
    started, first, smoothed, last = time.perf_counter(), step, None, None

    def save(at: int) -> Path:
        state = {"recipe_hash": recipe_hash(recipe), "task": "refiner"}
        weights = {k: p.detach() for k, p in parameters.items()}
        return ckpt.save_checkpoint(
            run, at, weights, ema.state_dict() if ema else None, optimizer, state, recipe.checkpoint.keep
        )

    with StopOnSignal() as stop:
        while step < training.steps:
            tic = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe, step)
            batch = frames.batch(
                [frames.pick(sample_rng(training.seed, step, slot)) for slot in range(training.batch_size)]
            )
            weights = 1.0 + (training.foreground_weight - 1.0) * inset(
                batch["mask"], training.foreground_inset
            )
            output = _correct(net, spec, batch)
            difference = output - batch["target"]
            error = (difference.abs() if training.pixel_loss == "l1" else difference.square()).mean(
                1, keepdim=True
            )
            loss = (error * weights).sum() / weights.sum()
            if training.edge_weight:
                loss = loss + training.edge_weight * gradient_loss(output, batch["target"])
            if not torch.isfinite(loss):
                raise CharanimError(f"The loss became {loss.item()} at step {step + 1}; lower optim.lr.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters.values(), recipe.optim.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update()
            step += 1
            value = loss.item()
            smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
            record = {"step": step, "loss": round(value, 6), "loss_smooth": round(smoothed, 6), "lr": learning_rate(recipe, step - 1),
                      "seconds_per_step": round(time.perf_counter() - tic, 3), "time": round(time.time(), 1)}  # fmt: skip
            if step % recipe.log_every == 0 or step == training.steps:
                _append_log(run / "log.jsonl", record)
            if on_progress:
                on_progress(step, training.steps, record)
            saved = step % recipe.checkpoint.every == 0 or step == training.steps
            if saved:
                last = save(step)
            if step % recipe.validation.every == 0 or step == training.steps:
                with ema.applied() if ema else contextlib.nullcontext():
                    score = validate(net, spec, frames)
                _append_log(run / "log.jsonl", {"step": step, "validation": score})
            if stop.should_stop(Group()):
                raise stop.stopped(step, last if saved else save(step))
    with ema.applied() if ema else contextlib.nullcontext():
        model = export(net, spec, recipe, run / "model", step)
    return {"run": str(run), "model": str(model), "steps": step, "trained_steps": step - first,
            "seconds": round(time.perf_counter() - started, 1), "final_loss": smoothed,
            "parameters": sum(p.numel() for p in parameters.values())}  # fmt: skip


@torch.no_grad()
def validate(net, spec: RefinerSpec, frames: _Frames) -> dict:
    """PSNR over the held-out pairs' frames, whole and inside the character, as the model
    made them and refined (pooled over frames), and the share of the backdrop's pixels
    that a silhouette would count as character (the bench's fg IoU: more than 24 from the
    true frame, which shows the backdrop there)."""
    was_training = net.training
    net.eval()
    picks = frames.held_out_picks()
    made, refined, truth, character = [], [], [], []
    for start in range(0, len(picks), 64):
        batch = frames.batch(picks[start : start + 64])
        made.append(batch["frame"])
        refined.append(_correct(net, spec, batch))
        truth.append(batch["target"])
        character.append(batch["mask"])
    net.train(was_training)

    def uint8(parts: list[torch.Tensor]) -> np.ndarray:
        return (
            ((torch.cat(parts) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        )

    before, after, true = uint8(made), uint8(refined), uint8(truth)
    mask = torch.cat(character)[:, 0].numpy() > 0

    def stray(frames: np.ndarray) -> float:
        return round(float((foreground_mask(frames, true)[~mask]).mean()), 4)

    return {"psnr_model": round(psnr(before, true), 3), "psnr": round(psnr(after, true), 3),
            "psnr_character_model": round(psnr(before[mask], true[mask]), 3),
            "psnr_character": round(psnr(after[mask], true[mask]), 3),
            "stray_model": stray(before), "stray": stray(after)}  # fmt: skip


def export(net, spec: RefinerSpec, recipe: Recipe, directory: Path, steps: int) -> Path:
    """RUN/model: ``model.denoiser``'s folder with this refiner in ``refiner/`` and its
    settings in charanim.json, written atomically; ``animate --model RUN/model`` runs it."""
    from charanim.models.config import read_model_config, write_model_config

    source = denoiser_folder(recipe)
    scratch = directory.with_name(f".{directory.name}.incomplete")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(source, scratch, ignore=shutil.ignore_patterns(FOLDER, "README.md"))
    net.eval()
    net.save_pretrained(scratch / FOLDER, safe_serialization=True)
    config = read_model_config(scratch)
    config.refiner = spec.to_json()
    config.provenance["refiner"] = {"steps": steps, "denoiser": str(recipe.model.denoiser),
                                    "data": recipe.data.manifest, "sampled_pairs": recipe.training.sampled_pairs,
                                    "pixel_loss": recipe.training.pixel_loss,
                                    "warm_start": recipe.model.init}  # fmt: skip
    write_model_config(scratch, config)
    if directory.exists():
        shutil.rmtree(directory)
    scratch.rename(directory)
    return directory
