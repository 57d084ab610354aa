"""Validation during training: held-out samples animated with the current (EMA) weights.

Writes ``RUN/samples/step-XXXXXXX.mp4`` (rows: reference | driving | condition | output |
target) and a PNG of its middle frame, and returns PSNR over the whole frame and inside
the character, next to the static-reference baseline.
"""

from __future__ import annotations

import numpy as np
import torch

from charanim.engine.pipeline import AnimatePipeline, SamplingSettings
from charanim.io.pixels import to_pixels, to_uint8
from charanim.io.video import write_video
from charanim.metrics import psnr
from charanim.training.data import ManifestData


def validate(backbone, conditioners, builder, data: ManifestData, recipe, run, step: int) -> dict:
    pipeline = AnimatePipeline(backbone, conditioners)
    count = min(recipe.validation.samples, len(data))
    rows, scores = [], {"psnr": [], "psnr_character": [], "static_psnr": [], "static_psnr_character": []}
    for index in range(count):
        sample = data.sample(index, np.random.default_rng(index))
        condition, driving, reference = builder.motion_condition(
            sample, np.random.default_rng(index), pose_source="retarget"
        )
        extras = [c.prepare(driving, reference, builder.spec) for c in builder.adapter_conditioners]
        result = pipeline(
            to_pixels(builder._fit(sample.reference)),
            [condition, *extras],
            builder.spec,
            prompt=sample.prompt,
            # the model's defaults: the build set them from recipe.validation (sampler_defaults)
            settings=SamplingSettings(),
            generator=torch.Generator().manual_seed(index),
        )
        target = builder._fit(sample.target)
        static = np.repeat(builder._fit(sample.reference)[None], len(target), axis=0)
        mask = sample.target_mask
        scores["psnr"].append(psnr(result.frames, target))
        scores["psnr_character"].append(psnr(result.frames, target, mask))
        scores["static_psnr"].append(psnr(static, target))
        scores["static_psnr_character"].append(psnr(static, target, mask))
        shown = to_uint8(condition.video)
        rows.append(
            np.concatenate([static, builder._fit(sample.driving), shown, result.frames, target], axis=2)
        )
    folder = run / "samples"
    folder.mkdir(exist_ok=True)
    grid = np.concatenate(rows, axis=1)
    write_video(folder / f"step-{step:07d}.mp4", grid.repeat(2, 1).repeat(2, 2), builder.spec.fps)
    from PIL import Image

    Image.fromarray(grid[len(grid) // 2]).save(folder / f"step-{step:07d}.png")
    return {key: round(float(np.mean(values)), 3) for key, values in scores.items()}
