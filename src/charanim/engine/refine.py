"""A learned last pass in pixel space, where the character moved.

A latent model's frames come back through its autoencoder, and where a limb moved the
denoiser's latents are a blurred guess: charanim-tiny's moving parts are smears. A
*refiner* (a small diffusers ``UNet2DModel`` trained by ``charanim train`` with
``training.task: refiner``) looks at each finished frame beside what the model was
given — the reference, the reference moved bone by bone to the frame's skeleton (the
warp), the frame's motion condition (its pose map) and, where its spec names it, the
reference's own pose map — and predicts a correction, trained against true frames on the
model's own outputs.

The correction is applied only where something moves (the *gate*): where the frame or
the warp differs from the reference by more than ``tolerance`` ([-1, 1] units, any
channel), or the pose map draws a limb, or (``reference_bones``) the reference's own
skeleton lies — where a limb that moved away may stand on in the frame and in the warp
alike, a ghost the other tests do not see — dilated by ``dilation`` pixels. The rest of the
frame — the background the model kept, detail restored from the reference — stays as
it is, exactly, and so does what ``keep_out`` marks: the regions another conditioner
drives (an audio-face adapter's mouth), which a refiner trained on pose-driven runs would
redraw as it saw them there — closed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from charanim.conditioning import Condition
from charanim.models.refiner import RefinerSpec


def refine_gate(
    frames: torch.Tensor,
    warp: torch.Tensor,
    motion: torch.Tensor | None,
    reference: torch.Tensor,
    spec: RefinerSpec,
    bones: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[F, 1, H, W]`` in {0, 1}: where a refiner may change ``frames`` ``[F, 3, H, W]``
    (``warp`` and ``motion`` ``[F, 3, H, W]``, ``reference`` ``[3, H, W]``, all [-1, 1];
    ``bones``, where the reference's skeleton lies: ``[1, H, W]`` or ``[F, 1, H, W]``, read
    if the spec says ``reference_bones``)."""
    moved = (frames - reference).abs().amax(1, keepdim=True) > spec.tolerance
    moved |= (warp - reference).abs().amax(1, keepdim=True) > spec.tolerance
    if spec.motion_drawn and motion is not None:
        moved |= motion.amax(1, keepdim=True) > -0.9  # the pose map's black is -1
    if spec.reference_bones and bones is not None:
        moved |= bones.to(moved.device) > 0
    return dilate(moved.float(), spec.dilation)


def dilate(masks: torch.Tensor, pixels: int) -> torch.Tensor:
    """Masks ``[N, 1, H, W]`` in {0, 1} grown by ``pixels`` (a square's steps)."""
    return F.max_pool2d(masks, 2 * pixels + 1, stride=1, padding=pixels)


def correct(
    refiner,
    spec: RefinerSpec,
    frames: torch.Tensor,
    warp: torch.Tensor,
    motion: torch.Tensor | None,
    reference: torch.Tensor,
    *,
    bones: torch.Tensor | None = None,
    keep_out: torch.Tensor | None = None,
    reference_motion: torch.Tensor | None = None,
) -> torch.Tensor:
    """One batch of ``frames`` ``[N, 3, H, W]`` corrected inside the gate (``reference``
    and ``reference_motion``, its pose map, ``[3, H, W]``, or one per frame ``[N, 3, H,
    W]``, as training draws them, and so ``bones``, :func:`refine_gate`'s; all in [-1,
    1]), except where ``keep_out`` ``[N, 1, H, W]`` is 1. A motion or reference motion not
    given reads as the pose maps' black: nothing drawn."""
    nothing = torch.full_like(frames, -1.0)
    parts = {
        "frame": frames,
        "warp": warp,
        "motion": motion if motion is not None else nothing,
        "reference": reference.expand_as(frames),
        "reference_motion": reference_motion.expand_as(frames) if reference_motion is not None else nothing,
    }
    inputs = torch.cat([parts[name] for name in spec.inputs], 1)
    delta = refiner(inputs.to(refiner.dtype), 0).sample.float()
    gate = refine_gate(frames, warp, motion, reference, spec, bones)
    if keep_out is not None:
        gate = gate * (1.0 - keep_out.to(gate))
    return (frames + gate * delta).clamp(-1.0, 1.0)


def refine(
    refiner,
    spec: RefinerSpec,
    frames: torch.Tensor,
    warp: torch.Tensor,
    motion: torch.Tensor | None,
    reference: torch.Tensor,
    *,
    bones: torch.Tensor | None = None,
    keep_out: torch.Tensor | None = None,
    reference_motion: torch.Tensor | None = None,
    batch: int = 32,
) -> torch.Tensor:
    """``frames`` ``[F, 3, H, W]`` in [-1, 1], corrected by ``refiner`` inside the gate
    (``bones`` ``[1, H, W]``: :func:`refine_gate`'s) but outside ``keep_out``
    ``[F, 1, H, W]``, a batch of frames at a time (``reference_motion`` ``[3, H, W]``:
    :func:`correct`'s)."""

    def part(tensor: torch.Tensor | None, i: int) -> torch.Tensor | None:
        return None if tensor is None else tensor[i : i + batch]

    return torch.cat([
        correct(refiner, spec, frames[i : i + batch], warp[i : i + batch], part(motion, i), reference,
                bones=bones, keep_out=part(keep_out, i), reference_motion=reference_motion)
        for i in range(0, len(frames), batch)
    ])  # fmt: skip


def reference_bones(condition: Condition | None, size: tuple[int, int]) -> torch.Tensor | None:
    """``bool [1, H, W]``: the pixels near the bones of the reference's skeletons (every
    person's) that a pose condition carries in ``meta`` — the pixels its warp moves
    (:func:`charanim.pose.warp.near_bones`); None for a condition without skeletons.
    ``size`` is (width, height)."""
    from charanim.pose.warp import near_bones

    people = condition_skeletons(condition, "reference_keypoints")
    if not people or condition.meta.get("body_format") is None:
        return None
    width, height = size
    near = np.zeros((height, width), bool)
    for points in people:
        near |= near_bones(np.asarray(points, np.float64), condition.meta["body_format"], size)
    return torch.from_numpy(near)[None]


def condition_skeletons(condition: Condition | None, key: str) -> list[np.ndarray]:
    """Every person's skeletons a pose condition carries in ``meta`` under ``key``
    (``keypoints``: the driving ones, ``[F, K, 3]`` each; ``reference_keypoints``: the
    reference's, ``[K, 3]``): ``people_<key>``, or ``key`` for a condition that gives one
    person only; none for a condition without skeletons."""
    meta = condition.meta if condition is not None else {}
    if meta.get(f"people_{key}") is not None:
        return list(meta[f"people_{key}"])
    return [meta[key]] if meta.get(key) is not None else []
