"""Flow-matching sampling.

The forward process interpolates data and noise, ``x_σ = (1 - σ)·x0 + σ·ε``, and
the model predicts the velocity ``v = dx/dσ = ε - x0``. Sampling integrates that
ODE from pure noise at σ = 1 to data at σ = 0 with a diffusers scheduler (Euler or
UniPC). ``flow_shift`` warps the σ grid towards high noise, ``σ' = sσ / (1 + (s-1)σ)``,
which larger frames need (Wan uses 3 at 480p, 5 at 720p).

Classifier-free guidance has two separate scales, one for text and one for the
motion condition, nested so that each costs a model pass only when it is not 1::

    v = v(m, t) + (s_text - 1)·(v(m, t) - v(m, ∅)) + (s_motion - 1)·(v(m, ∅) - v(∅, ∅))

With several conditioners, each may also have its own scale (``--conditioner-guidance
audio-face=2``): one more pass without that conditioner, ``+ (s_c - 1)·(v(all) - v(all but c))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

SAMPLERS = ("euler", "unipc")
NUM_TRAIN_TIMESTEPS = 1000


def shift_sigmas(sigmas: torch.Tensor | np.ndarray, shift: float):
    """``σ' = shift·σ / (1 + (shift - 1)·σ)``: the same warp diffusers applies."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def make_scheduler(name: str, shift: float):
    """A diffusers flow-matching scheduler. ``euler`` is first order; ``unipc`` is the
    multistep solver Wan ships with (better at few steps)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if name == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=shift)
    if name == "unipc":
        return UniPCMultistepScheduler(
            num_train_timesteps=NUM_TRAIN_TIMESTEPS,
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            flow_shift=shift,
        )
    raise ValueError(f"unknown sampler {name!r}; choose from {SAMPLERS}")


def set_schedule(scheduler, steps: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Set ``steps`` timesteps spanning σ = 1 → 0 and return them (σ·1000, the model's scale).

    diffusers' Euler default ends its grid at σ = 1/1000 and spends the last step going
    from there to 0; passing an evenly spaced grid uses every step on real work.
    """
    if steps < 1:
        raise ValueError("steps must be at least 1")
    if type(scheduler).__name__ == "FlowMatchEulerDiscreteScheduler":
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1], device=device)
    else:
        scheduler.set_timesteps(steps, device=device)
    return scheduler.timesteps


Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def first_step(steps: int, strength: float) -> int:
    """The step a run of ``steps`` starts at for ``strength`` in (0, 1]: it runs the last
    ``int(steps·strength)`` steps of the grid (at least one), as diffusers' img2img
    pipelines count them, so 1 is the whole run from pure noise."""
    if not 0.0 < strength <= 1.0:
        raise ValueError("strength must be in (0, 1]")
    return steps - min(steps, max(1, int(steps * strength)))


def sample(
    velocity: Velocity,
    noise: torch.Tensor,
    scheduler,
    steps: int,
    project: Callable[[torch.Tensor, float], torch.Tensor] | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
    init: torch.Tensor | None = None,
    strength: float = 1.0,
) -> torch.Tensor:
    """Integrate from ``noise`` (σ = 1) to a sample (σ = 0).

    ``velocity(x, t)`` returns the (guided) velocity at timestep ``t`` (σ·1000).
    ``project(x, σ)`` runs before each model call and on the result: the in-context
    pipeline re-imposes the clean reference there, and the known context frames of a
    window noised to the current σ. ``on_step(i, x)`` is called after each step.

    With ``init`` (a clean guess at the sample, e.g. the reference repeated over the
    frames) and ``strength`` < 1, sampling starts part-way down the same σ grid from
    ``init`` noised to that σ, the SDEdit / img2img start: the guess fixes the layout
    and colours, the remaining steps the details.
    """
    timesteps = set_schedule(scheduler, steps, device=noise.device)
    sigmas = [float(s) for s in scheduler.sigmas]
    x = noise
    start = 0
    if init is not None and strength < 1.0:
        start = first_step(steps, strength)
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        x = (1.0 - sigmas[start]) * init + sigmas[start] * noise
    for i, t in enumerate(timesteps):
        if i < start:
            continue
        if project is not None:
            x = project(x, sigmas[i])
        # The model gets the exact σ·1000: UniPC rounds its own timesteps to integers,
        # which would tell the model a slightly different noise level than the update uses.
        v = velocity(x, torch.tensor(sigmas[i] * NUM_TRAIN_TIMESTEPS, device=noise.device))
        x = scheduler.step(v.to(x.dtype), t, x, return_dict=False)[0]
        if on_step is not None:
            on_step(i, x)
    return project(x, 0.0) if project is not None else x


@dataclass(frozen=True)
class GuidancePass:
    """One model evaluation: which conditions are kept (``drop``: conditioners left out
    of an otherwise full pass, for per-conditioner guidance)."""

    text: bool
    motion: bool
    drop: frozenset[str] = frozenset()


def guidance_passes(
    text_scale: float, motion_scale: float, per_conditioner: dict[str, float] | None = None
) -> list[GuidancePass]:
    """The passes the nested guidance formula needs: full first, then text dropped,
    then both dropped, then one pass without each conditioner that has its own scale.
    A scale of 1 switches its pass off."""
    passes = [GuidancePass(text=True, motion=True)]
    if text_scale != 1.0 or motion_scale != 1.0:
        passes.append(GuidancePass(text=False, motion=True))
    if motion_scale != 1.0:
        passes.append(GuidancePass(text=False, motion=False))
    for name, scale in sorted((per_conditioner or {}).items()):
        if scale != 1.0:
            passes.append(GuidancePass(text=True, motion=True, drop=frozenset({name})))
    return passes


def combine_guidance(
    outputs: list[torch.Tensor],
    text_scale: float,
    motion_scale: float,
    per_conditioner: dict[str, float] | None = None,
) -> torch.Tensor:
    """Combine the outputs of :func:`guidance_passes`, in that order. Each conditioner
    with its own scale ``s_c`` adds ``(s_c - 1)·(v(all) - v(all but c))``."""
    v = outputs[0]
    guided = v
    used = 1
    if text_scale != 1.0 or motion_scale != 1.0:
        v_motion_only = outputs[1]
        guided = v + (text_scale - 1.0) * (v - v_motion_only)
        used = 2
        if motion_scale != 1.0:
            guided = guided + (motion_scale - 1.0) * (v_motion_only - outputs[2])
            used = 3
    for scale in (s for _, s in sorted((per_conditioner or {}).items()) if s != 1.0):
        guided = guided + (scale - 1.0) * (v - outputs[used])
        used += 1
    return guided
