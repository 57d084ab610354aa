"""Probe a trained in-context model: what it knows at each noise level, and whether it
reads its motion condition.

On held-out manifest pairs (the recipe's data, ``split: test``), for each σ: the
flow-matching loss with the motion condition and with it zeroed, and the PSNR (whole
frame and inside the character) of the model's one-step estimate of the clean clip,
``x̂0 = x_σ - σ·v̂``, next to the static-reference baseline and to the autoencoder's own
reconstruction (the ceiling of any latent model). A model whose one-step estimates beat
the static reference while its samples do not is unsure, not broken; a loss that barely
moves when the condition is zeroed means the model is not yet using the motion. The
loss with only the reference's own pose map zeroed shows how much the model compares
the reference's pose with the target's; for a model with ``reference_warp_channels``, the
loss with the warped reference replaced by the still one shows how much it reads the warp.
For a model whose flow starts from its warp (``flow_source: warp``) the path starts at
the warp's latents instead of noise, and each row also gives the loss of predicting no
change (the warp itself): the model must be under it to add anything to its warp.

    python tools/probe_denoiser.py runs/tiny-stage1/model [--pairs 8] [--split train] [--json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

SIGMAS = (0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a charanim model directory from 'charanim train'")
    parser.add_argument("--manifest", help="the pairs' manifest (default: the model's training manifests)")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "train"),
        help="whose pairs: the held-out ones, or the training ones (their gap shows overfitting)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = probe(args.model, args.manifest, args.pairs, args.split)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    ceiling, static = report["autoencoder"], report["static"]
    print(f"autoencoder ceiling {ceiling['psnr']:.2f} dB ({ceiling['psnr_character']:.2f} in character); "
          f"static reference {static['psnr']:.2f} ({static['psnr_character']:.2f})")  # fmt: skip
    if "warp" in report:
        print(
            f"the flow starts at the warp: {report['warp']['psnr']:.2f} dB ({report['warp']['psnr_character']:.2f})"
        )
    warp = "loss_without_warp" in report["sigmas"][0]
    bridge = "loss_of_no_change" in report["sigmas"][0]
    print("sigma  loss   without-motion  without-reference-pose  x0-psnr  x0-psnr-in-character"
          + ("  without-warp" if warp else "") + ("  no-change" if bridge else ""))  # fmt: skip
    for row in report["sigmas"]:
        print(f"{row['sigma']:.2f}   {row['loss']:.3f}  {row['loss_without_motion']:.3f}"
              f"           {row['loss_without_reference_pose']:.3f}"
              f"                   {row['x0_psnr']:.2f}    {row['x0_psnr_character']:.2f}"
              + (f"                 {row['loss_without_warp']:.3f}" if warp else "")
              + (f"         {row['loss_of_no_change']:.3f}" if bridge else ""))  # fmt: skip


@torch.no_grad()
def probe(model: Path, manifest: str | None, pairs: int, split: str = "test") -> dict:
    from charanim.conditioners import create_conditioners
    from charanim.config import resolve
    from charanim.metrics import psnr
    from charanim.training.batch import BatchBuilder
    from charanim.training.build import build_backbone
    from charanim.training.data import open_manifests, sample_rng
    from charanim.training.objective import model_timesteps
    from charanim.training.recipe import Recipe

    overrides = [f"model.init={model}"] + ([f"data.manifest={manifest}"] if manifest else [])
    recipe = resolve(Recipe, model / "training_recipe.yaml", overrides)
    spec_model = recipe.model
    backbone = build_backbone(recipe, torch.device("cpu"))
    backbone.transformer.eval()
    conditioners = create_conditioners(recipe.conditioners, backbone.config.conditioner_options)
    from charanim.conditioning import OutputSpec

    spec = OutputSpec(spec_model.width, spec_model.height, spec_model.frames, spec_model.fps)
    builder = BatchBuilder(backbone, conditioners, spec, "retarget")
    data = open_manifests(replace(recipe.data, split=split), spec_model.frames)
    samples = [data.sample(i, np.random.default_rng(i)) for i in range(min(pairs, len(data)))]
    batch = builder.build(samples, [sample_rng(1000, 0, i) for i in range(len(samples))], augment=False)
    targets = [builder._fit(s.target) for s in samples]
    masks = [s.target_mask for s in samples]
    autoencoder = backbone.autoencoder

    def to_uint8(latents):
        pixels = autoencoder.decode(latents).clamp(-1, 1)
        return ((pixels + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()

    def scores(videos) -> dict:
        triples = list(zip(videos, targets, masks, strict=True))
        return {
            "psnr": round(float(np.mean([psnr(v, t) for v, t, _ in triples])), 2),
            "psnr_character": round(float(np.mean([psnr(v, t, m) for v, t, m in triples])), 2),
        }

    static = [np.repeat(builder._fit(s.reference)[None], len(s.target), axis=0) for s in samples]
    report = {"pairs": len(samples), "autoencoder": scores(to_uint8(batch.target)), "static": scores(static)}
    if batch.source is not None:  # the warp, through the autoencoder: where the flow starts
        report["warp"] = scores(to_uint8(batch.source))

    def velocity(noisy, sigma, keep_motion: bool, keep_reference_pose: bool = True, keep_warp: bool = True):
        def kept(tensor, keep=keep_motion):
            return tensor if tensor is None or keep else torch.zeros_like(tensor)

        warp = batch.warp
        if warp is not None and not (keep_motion and keep_warp):
            warp = (warp[0], warp[0].expand_as(warp[1]))  # the reference held still

        packed = backbone.pack(
            batch.reference,
            noisy,
            kept(batch.motion),
            kept(batch.motion_valid),
            kept(batch.reference_motion, keep_motion and keep_reference_pose),
            warp,
        )
        timestep = model_timesteps(backbone, packed, torch.full((len(samples),), sigma))
        out = backbone.velocity(backbone.assemble(packed), timestep, batch.text, batch.image_embeds)
        return backbone.layout.unpack(out.float(), batch.target.shape[2])

    rows = []
    for sigma in SIGMAS:
        x0 = batch.target
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
        if batch.source is not None:
            noise = batch.source
        noisy = (1 - sigma) * x0 + sigma * noise
        with_motion, without = velocity(noisy, sigma, True), velocity(noisy, sigma, False)
        without_reference_pose = velocity(noisy, sigma, True, keep_reference_pose=False)
        estimate = scores(to_uint8(noisy - sigma * with_motion))
        row = {
            "sigma": sigma,
            "loss": round(float(((with_motion - (noise - x0)) ** 2).mean()), 4),
            "loss_without_motion": round(float(((without - (noise - x0)) ** 2).mean()), 4),
            "loss_without_reference_pose": round(float(((without_reference_pose - (noise - x0)) ** 2).mean()), 4),
            "x0_psnr": estimate["psnr"], "x0_psnr_character": estimate["psnr_character"],
        }  # fmt: skip
        if batch.warp is not None:
            without_warp = velocity(noisy, sigma, True, keep_warp=False)
            row["loss_without_warp"] = round(float(((without_warp - (noise - x0)) ** 2).mean()), 4)
        if batch.source is not None:
            row["loss_of_no_change"] = round(float(((noise - x0) ** 2).mean()), 4)
        rows.append(row)
    report["sigmas"] = rows
    return report


if __name__ == "__main__":
    main()
