"""Training the small per-frame autoencoder of charanim-tiny (``training.task: autoencoder``).

Frames come from the world manifest: characters (driving, target, reference frames)
and their pose maps, since in-context pose conditions go through the same
autoencoder. The loss is L1 + ½·L2 on pixels (the character's pixels weighted by
``training.foreground_weight``), optionally L1 on the image gradients
(``training.edge_weight``: outlines and thin limbs are edges, and they blur first), and a
tiny KL term; the export stores the per-channel latent mean and std, which
``FrameAutoencoder`` uses to normalise.

With ``training.train_encoder: false`` only the decoder of ``model.init`` trains: the
latents, their statistics and so every denoiser trained on them stay valid, while the
decoder — the ceiling of every latent model's output — gets better.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from charanim.errors import CharanimError
from charanim.io.pixels import to_pixels, to_uint8
from charanim.metrics import psnr
from charanim.models.autoencoder import FrameAutoencoder, load_autoencoder
from charanim.pose.render import render_pose
from charanim.training import checkpoint as ckpt
from charanim.training.data import NOISE, ManifestData, batch_indices, sample_rng
from charanim.training.distributed import Group
from charanim.training.ema import EMA
from charanim.training.recipe import Recipe
from charanim.training.sampled_pairs import HeldOutFrames
from charanim.training.stopping import StopOnSignal

DECODER_NEEDS_INIT = (
    "training.train_encoder: false trains the decoder of a trained autoencoder; set model.init to its folder."
)


def build_vae(recipe: Recipe):
    """The autoencoder in ``model.init`` (to fine-tune), or a new one shaped by ``model.vae``."""
    from diffusers import AutoencoderKL

    if recipe.model.init:
        inner = Path(recipe.model.init) / "vae"
        if (inner / "config.json").is_file():
            raise CharanimError(
                f"model.init '{recipe.model.init}' is a charanim model; its autoencoder is '{inner}'."
            )
        autoencoder = load_autoencoder(recipe.model.init)
        if not isinstance(autoencoder, FrameAutoencoder):
            raise CharanimError(
                f"model.init '{recipe.model.init}' is not a per-frame AutoencoderKL; the autoencoder task fine-tunes only those."
            )
        return autoencoder.vae.requires_grad_(True)
    if not recipe.training.train_encoder:
        raise CharanimError(DECODER_NEEDS_INIT)
    spec = recipe.model.vae
    levels = len(spec.block_out_channels)
    torch.manual_seed(recipe.training.seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(spec.block_out_channels),
        layers_per_block=spec.layers_per_block,
        latent_channels=spec.latent_channels,
        norm_num_groups=spec.norm_num_groups,
        mid_block_add_attention=False,
    )


def _frame(
    data: ManifestData, index: int, rng: np.random.Generator, masked: bool = False, pose_share: float = 0.3
) -> tuple[np.ndarray, np.ndarray | None]:
    """A frame and, with ``masked``, where its character is (for a pose map: its bones);
    a pose map with probability ``pose_share`` (``training.pose_share``).

    Masked draws take characters from target frames only, the ones whose mask a sample
    carries; driving and reference frames are other pairs' targets, so nothing is lost.
    """
    sample = data.sample(index, rng)
    if rng.random() < pose_share:
        points = sample.target_keypoints.body_array()[0]  # the crop's first frame
        size = (sample.target.shape[2], sample.target.shape[1])
        pose = render_pose(points, sample.target_keypoints.header.body_format, size)
        return pose, (pose.max(axis=2) > 0) if masked else None
    if masked:
        return sample.target[0], sample.target_mask[0] > 0
    choice = int(rng.integers(3))
    return (sample.target[0], sample.driving[0], sample.reference)[choice], None


def reconstruction_loss(
    output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None, edge_weight: float
) -> torch.Tensor:
    """L1 + ½·L2 per pixel, averaged under ``weights`` [B, H, W] when given, plus edges."""
    error = output - target
    per_pixel = (error.abs() + 0.5 * error.square()).mean(dim=1)
    loss = per_pixel.mean() if weights is None else (per_pixel * weights).sum() / weights.sum()
    if edge_weight:
        loss = loss + edge_weight * gradient_loss(output, target)
    return loss


def gradient_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical pixel differences of ``output`` and ``target``."""
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(output), dx(target)) + F.l1_loss(dy(output), dy(target))


def _pixels(frames: list[np.ndarray]) -> torch.Tensor:
    """Frames ``[H, W, 3]`` uint8 -> a batch of images ``[N, 3, H, W]`` in [-1, 1]."""
    return to_pixels(np.stack(frames)).transpose(0, 1)


def train_autoencoder(recipe: Recipe, run: Path, resume: bool, force: bool, on_progress=None) -> dict:
    from charanim.training.trainer import _append_log, _truncate_log, learning_rate, prepare_run, recipe_hash

    training = recipe.training
    if training.threads:
        torch.set_num_threads(training.threads)
    resume_from = prepare_run(run, recipe, resume, force)
    data = ManifestData(recipe.data, frames=1)
    vae = build_vae(recipe).train()
    if not training.train_encoder:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    parameters = dict(vae.named_parameters())
    trainable = {name: p for name, p in parameters.items() if p.requires_grad}
    masked = training.foreground_weight != 1.0
    optimizer = torch.optim.AdamW(
        trainable.values(),
        lr=recipe.optim.lr,
        betas=tuple(recipe.optim.betas),
        weight_decay=recipe.optim.weight_decay,
    )
    ema = EMA(trainable, training.ema) if training.ema > 0 else None
    step = 0
    if resume_from is not None:
        restored = ckpt.load_checkpoint(resume_from, optimizer)
        vae.load_state_dict(restored["weights"])
        if ema is not None and restored["ema"] is not None:
            ema.load_state_dict(restored["ema"])
        step = restored["state"]["step"]
        _truncate_log(run / "log.jsonl", step)
    from dataclasses import replace

    try:
        held_out = ManifestData(replace(recipe.data, split="test"), frames=1)
    except CharanimError:
        held_out = None
    sampled = _sampled_pairs(recipe, run, on_progress) if training.sampled_share > 0 else None
    sampled_slots = round(training.sampled_share * training.batch_size) if sampled is not None else 0
    started, first = time.perf_counter(), step
    smoothed = None

    def save(at: int) -> Path:
        state = {"recipe_hash": recipe_hash(recipe), "task": "autoencoder"}
        weights = {k: p.detach() for k, p in parameters.items()}
        return ckpt.save_checkpoint(
            run, at, weights, ema.state_dict() if ema else None, optimizer, state, recipe.checkpoint.keep
        )

    with StopOnSignal() as stop:
        while step < training.steps:
            tic = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe, step)
            indices = batch_indices(len(data), training.batch_size, step, training.seed)
            encoded = len(indices) - sampled_slots  # the rest decode the denoiser's own latents
            drawn = [
                _frame(data, index, sample_rng(training.seed, step, slot), masked, training.pose_share)
                for slot, index in enumerate(indices[:encoded])
            ]
            picks = [
                sampled.pick(sample_rng(training.seed, step, slot)) for slot in range(encoded, len(indices))
            ]
            pixels = _pixels([frame for frame, _ in drawn] + [sampled.frame(p) for p in picks])
            weights = None
            if masked:
                characters = [d[1] for d in drawn] + [sampled.character(p) for p in picks]
                weights = (
                    1.0 + (training.foreground_weight - 1.0) * torch.from_numpy(np.stack(characters)).float()
                )
            generator = torch.Generator().manual_seed(
                int(sample_rng(training.seed, step, 0, NOISE).integers(2**62))
            )
            parts, posterior = [], None
            if drawn:
                with torch.set_grad_enabled(training.train_encoder):
                    posterior = vae.encode(pixels[:encoded]).latent_dist
                # Decoding the mean, not a sample: the diffusion model only ever sees the mean, and
                # sampling with the untrained (unit) variance drowns the latents in noise early on.
                parts.append(posterior.sample(generator) if training.sample_latents else posterior.mode())
            if picks:
                parts.append(sampled.raw_latents(picks, vae))
            reconstruction = vae.decode(torch.cat(parts)).sample
            loss = reconstruction_loss(reconstruction, pixels, weights, training.edge_weight)
            if training.train_encoder:
                loss = loss + training.kl_weight * posterior.kl().mean()
            if not torch.isfinite(loss):
                raise CharanimError(f"The loss became {loss.item()} at step {step + 1}; lower optim.lr.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable.values(), recipe.optim.grad_clip)
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
            if held_out is not None and (step % recipe.validation.every == 0 or step == training.steps):
                with ema.applied() if ema else _nothing():
                    score = _validate(vae, held_out, run, step, training.pose_share)
                    if sampled is not None:
                        score |= _validate_sampled(vae, sampled)
                _append_log(run / "log.jsonl", {"step": step, "validation": score})
            if stop.should_stop(Group()):
                raise stop.stopped(step, last if saved else save(step))
    with ema.applied() if ema else _nothing():
        model = _export(vae, data, run / "model", training.pose_share, measure=training.train_encoder)
    return {"run": str(run), "model": str(model), "steps": step, "trained_steps": step - first,
            "seconds": round(time.perf_counter() - started, 1), "final_loss": smoothed,
            "parameters": sum(p.numel() for p in parameters.values())}  # fmt: skip


class _SampledFrames(HeldOutFrames):
    """The denoiser's sampled latents as single frames, with their true frames."""

    def frame(self, pick: tuple[int, int]) -> np.ndarray:
        return self.pairs.target[pick]

    def character(self, pick: tuple[int, int]) -> np.ndarray:
        return self.pairs.mask[pick]

    def raw_latents(self, picks: list[tuple[int, int]], vae) -> torch.Tensor:
        """The picks' latents ``[N, C, h, w]`` in the autoencoder's own scale (the denoiser
        samples them normalised by its latent statistics)."""
        latents = torch.stack([self.pairs.latents[p][:, f] for p, f in picks]).float()
        channels = latents.shape[1]
        mean = torch.tensor(vae.config.latents_mean or [0.0] * channels).view(1, -1, 1, 1)
        std = torch.tensor(vae.config.latents_std or [1.0] * channels).view(1, -1, 1, 1)
        return latents * std + mean


def _sampled_pairs(recipe: Recipe, run: Path, on_progress=None) -> _SampledFrames:
    from charanim.training.sampled_pairs import sampled_pairs_of

    return _SampledFrames(sampled_pairs_of(recipe, run, on_progress, kind="latents"))


@torch.no_grad()
def _validate_sampled(vae, sampled: _SampledFrames) -> dict:
    """PSNR of the held-out sampled pairs' frames decoded from the denoiser's latents."""
    vae.eval()
    picks = sampled.held_out_picks()
    decoded = torch.cat([vae.decode(sampled.raw_latents(chunk, vae)).sample for chunk in _chunks(picks, 64)])
    vae.train()
    out = to_uint8(decoded.transpose(0, 1))
    truth = np.stack([sampled.frame(p) for p in picks])
    character = np.stack([sampled.character(p) for p in picks])
    return {"sampled_psnr": round(psnr(out, truth), 3),
            "sampled_psnr_character": round(psnr(out[character], truth[character]), 3)}  # fmt: skip


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _nothing():
    import contextlib

    return contextlib.nullcontext()


@torch.no_grad()
def _validate(vae, data: ManifestData, run: Path, step: int, pose_share: float, count: int = 32) -> dict:
    """Reconstruction PSNR of ``count`` held-out frames, drawn as training draws them, and
    inside their characters."""
    vae.eval()
    drawn = [
        _frame(data, i % len(data), np.random.default_rng(i), masked=True, pose_share=pose_share)
        for i in range(count)
    ]
    frames = [d[0] for d in drawn]
    pixels = _pixels(frames)
    reconstruction = vae.decode(vae.encode(pixels).latent_dist.mode()).sample
    out = to_uint8(reconstruction.transpose(0, 1))
    vae.train()
    original = np.stack(frames)
    character = np.stack([d[1] for d in drawn])
    folder = run / "samples"
    folder.mkdir(exist_ok=True)
    from PIL import Image

    strip = np.concatenate([np.concatenate(list(original[:8]), 1), np.concatenate(list(out[:8]), 1)], 0)
    Image.fromarray(strip).save(folder / f"step-{step:07d}.png")
    return {"psnr": round(psnr(out, original), 3),
            "psnr_character": round(psnr(out[character], original[character]), 3)}  # fmt: skip


@torch.no_grad()
def _export(
    vae, data: ManifestData, directory: Path, pose_share: float, count: int = 256, measure: bool = True
) -> Path:
    """Save, with the per-channel latent statistics measured on ``count`` frames (``measure``)
    or those it has (a frozen encoder: denoisers learnt its latents normalised by them)."""
    import shutil

    vae.eval()
    if measure:
        drawn = [
            _frame(data, i % len(data), np.random.default_rng(10_000 + i), pose_share=pose_share)
            for i in range(count)
        ]
        frames = [frame for frame, _ in drawn]
        latents = torch.cat([vae.encode(chunk).latent_dist.mode() for chunk in _pixels(frames).split(64)])
        mean = latents.mean(dim=(0, 2, 3)).tolist()
        std = latents.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()
        vae.register_to_config(
            latents_mean=[round(v, 5) for v in mean], latents_std=[round(v, 5) for v in std]
        )
    scratch = directory.with_name(f".{directory.name}.incomplete")
    shutil.rmtree(scratch, ignore_errors=True)
    vae.save_pretrained(scratch, safe_serialization=True)
    if directory.exists():
        shutil.rmtree(directory)
    scratch.rename(directory)
    return directory
