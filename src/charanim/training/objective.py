"""The flow-matching objective on the in-context sequence.

    σ ~ sigmoid(N(μ, s))                 logit-normal: most samples at mid noise
    x_σ = (1 - σ)·x0 + σ·ε               the target half only; the reference stays clean
    loss = ‖ v_θ(x_σ, σ, c) - (ε - x0) ‖²  on the target half

For a model whose flow starts from its warp (``flow_source: warp``) the source ε is the
reference moved by the motion condition, encoded, instead of Gaussian noise: the model
regresses the warp's error (warp - x0) along the straight path between the two, so where
it cannot tell better its output stays at the warp (a flow between paired images, as
image-restoration flows such as InDI train) rather than at a blurred mean drawn from noise.

The sequence is built by ``Backbone.pack``, as sampling builds it, with the motion
condition zeroed for the samples chosen for condition dropout.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from charanim.engine.layout import per_token_timesteps, reference_token_mask
from charanim.models.backbones import Backbone


@dataclass
class EncodedBatch:
    """Everything the denoiser objective needs, already in latent space."""

    target: torch.Tensor  # [B, C, F, h, w]
    reference: torch.Tensor  # [B, C, 1, h, w]
    motion: torch.Tensor | None  # [B, C, F, h, w]
    motion_valid: torch.Tensor | None  # [B, 1, F, h, w]
    reference_motion: torch.Tensor | None  # [B, C, 1, h, w]
    text: torch.Tensor  # [B, L, D]
    null_text: torch.Tensor  # [B, L, D]
    #: where the target's character is, on the latent grid (for ``foreground_weight``)
    target_mask: torch.Tensor | None = None  # [B, 1, F, h, w]
    face_mask: torch.Tensor | None = None  # [B, 1, F, h, w], the targets' faces
    motion_mask: torch.Tensor | None = None  # [B, 1, F, h, w], where targets differ from references
    image_embeds: torch.Tensor | None = None  # Wan2.1's CLIP tokens of the references
    #: models with reference_warp_channels: the references ``[B, Cm, 1, h, w]`` and the
    #: references warped to the targets' skeletons ``[B, Cm, F, h, w]`` (motion space)
    warp: tuple[torch.Tensor, torch.Tensor] | None = None
    #: models with ``flow_source: warp``: the flow's start, the warped references encoded
    #: by the autoencoder ``[B, C, F, h, w]`` (in place of Gaussian noise)
    source: torch.Tensor | None = None
    #: conditioners feeding adapters: their sites, features ``[B, F, D]``, videos ``[B, C, F, H, W]``
    adapter_sites: dict = field(default_factory=dict)
    adapter_features: dict = field(default_factory=dict)
    adapter_videos: dict = field(default_factory=dict)


def logit_normal(batch: int, generator: torch.Generator, mean: float, std: float) -> torch.Tensor:
    return torch.sigmoid(mean + std * torch.randn(batch, generator=generator))


def flow_matching_loss(
    backbone: Backbone,
    batch: EncodedBatch,
    generator: torch.Generator,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    drop_motion: float = 0.0,
    drop_text: float = 0.0,
    rows: slice | None = None,
    full_batch: int | None = None,
    foreground_weight: float = 1.0,
    face_weight: float = 1.0,
    motion_weight: float = 1.0,
) -> torch.Tensor:
    """``rows`` of a ``full_batch``: in data-parallel training each process holds some rows
    of the batch and draws the same random numbers as one process would for the whole
    batch, keeping its own rows (so N processes train exactly like one).

    With ``foreground_weight`` w ≠ 1 the squared error is weighted 1 + (w - 1)·mask over
    the target's character mask and divided by the mean weight, so the loss keeps the
    unweighted loss's scale. ``face_weight`` adds (w - 1)·face mask on top, and
    ``motion_weight`` (w - 1)·motion mask (where the target differs from the reference)."""
    x0 = batch.target
    size = full_batch or x0.shape[0]
    rows = rows if rows is not None else slice(None)
    device = x0.device
    noise = torch.randn((size, *x0.shape[1:]), generator=generator)[rows].to(device)
    sigma = logit_normal(size, generator, logit_mean, logit_std)[rows].to(device)
    keep_motion = (torch.rand(size, generator=generator) >= drop_motion)[rows].float().to(device)
    keep_text = (torch.rand(size, generator=generator) >= drop_text)[rows].to(device)

    if batch.source is not None:  # drawn all the same, so the other draws do not shift
        noise = batch.source
    s = sigma.view(-1, 1, 1, 1, 1)
    noisy = (1 - s) * x0 + s * noise

    def kept(tensor):
        return None if tensor is None else tensor * keep_motion.view(-1, *[1] * (tensor.ndim - 1))

    warp = None
    if batch.warp is not None:  # a dropped motion condition leaves the reference standing still
        still, moved = batch.warp
        keep = keep_motion.view(-1, 1, 1, 1, 1)
        warp = (still, keep * moved + (1 - keep) * still)
    packed = backbone.pack(
        batch.reference,
        noisy,
        kept(batch.motion),
        kept(batch.motion_valid),
        kept(batch.reference_motion),
        warp,
    )
    timestep = model_timesteps(backbone, packed, sigma)
    text = torch.where(keep_text.view(-1, 1, 1), batch.text, batch.null_text)
    feeding = _adapter_feeding(backbone, batch, packed, x0.shape[2], generator, drop_motion)
    with backbone.injector.feeding(feeding) if backbone.injector is not None else contextlib.nullcontext():
        prediction = backbone.velocity(backbone.assemble(packed), timestep, text, batch.image_embeds)
    predicted = backbone.layout.unpack(prediction.float(), x0.shape[2])
    weights = [
        (batch.target_mask, foreground_weight),
        (batch.face_mask, face_weight),
        (batch.motion_mask, motion_weight),
    ]
    return weighted_mse(predicted, noise - x0, weights)


def model_timesteps(backbone: Backbone, packed, sigma: torch.Tensor) -> torch.Tensor:
    """The transformer's timestep input for noise levels ``sigma`` ``[B]``: σ·1000, per token
    (0 on the clean reference's tokens) when the model was trained that way."""
    reference_tokens = None
    if backbone.config.reference_timestep_zero:
        reference_tokens = reference_token_mask(packed.reference_mask, backbone.patch_size)
    return per_token_timesteps(sigma * 1000.0, reference_tokens)


def weighted_mse(
    predicted: torch.Tensor, target: torch.Tensor, weights: list[tuple[torch.Tensor | None, float]]
) -> torch.Tensor:
    """Mean squared error, weighted 1 + Σ (w - 1)·mask over ``(mask, w)`` pairs and divided
    by the mean weight (so the scale stays the unweighted loss's); masks broadcast over
    channels."""
    used = [(mask, w) for mask, w in weights if mask is not None and w != 1.0]
    if not used:
        return F.mse_loss(predicted, target)
    squared = (predicted - target) ** 2
    weight = torch.ones_like(squared[:, :1])
    for mask, w in used:
        weight = weight + (w - 1.0) * mask.to(predicted)
    weight = weight.expand_as(squared)
    return (weight * squared).sum() / weight.sum()


def _adapter_feeding(
    backbone, batch: EncodedBatch, packed, latent_frames: int, generator, drop: float
) -> dict:
    """Adapter inputs for the batch. Each adapter conditioner is dropped for the whole
    micro-batch with probability ``drop`` (at sampling, "without it" means not fed at all,
    which a per-sample zero would not match)."""
    if not batch.adapter_sites:
        return {}
    from charanim.engine.pipeline import adapter_inputs

    kept = {
        name: site for name, site in sorted(batch.adapter_sites.items())
        if float(torch.rand((), generator=generator)) >= drop
    }  # fmt: skip
    return adapter_inputs(backbone, kept, batch.adapter_features, batch.adapter_videos, packed, latent_frames)
