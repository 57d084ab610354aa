"""Engine overhead: ``charanim animate`` vs a bare diffusers denoising loop.

Same model (the charanim-tiny transformer config, random weights), same frames,
steps and seed. Runs alternate between the two so machine noise hits both alike;
medians are reported, with the ratios. Run:

    python benchmarks/engine_overhead.py [--frames 16] [--steps 10] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import charanim
    from charanim.api import _fit_reference
    from charanim.conditioning import Driving, OutputSpec, Reference
    from charanim.io import read_image, read_video
    from charanim.models.config import ModelConfig, SamplerDefaults
    from charanim.models.tiny import save_tiny_model, tiny_transformer_config
    from charanim.testing import write_moving_figure_video, write_reference_image
    from charanim.testing.bare_loop import bare_spatial_denoise

    work = Path(tempfile.mkdtemp(prefix="charanim-bench-"))
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**tiny_transformer_config())
    config = ModelConfig(
        backbone="tiny",
        conditioners=["rgb"],
        width=args.size,
        height=args.size,
        fps=8.0,
        window_frames=args.frames,
        sampler=SamplerDefaults(steps=args.steps),
    )
    save_tiny_model(work / "model", config, transformer)
    drive = write_moving_figure_video(work / "drive.mp4", frames=args.frames, size=(96, 72), fps=8.0)
    ref = write_reference_image(work / "ref.png", size=(72, 96))

    pipeline = charanim.load_pipeline(work / "model", "rgb", device="cpu")
    spec = OutputSpec(args.size, args.size, args.frames, 8.0)
    image = read_image(ref)
    condition = pipeline.conditioners[0].prepare(Driving(read_video(drive, fps=8.0)), Reference(image), spec)
    reference = _fit_reference(image, spec)

    def run_animate():
        charanim.animate(ref, drive, output=work / "out.mp4", pipeline=pipeline, seed=0)

    def run_bare():
        bare_spatial_denoise(pipeline.backbone.transformer, reference, condition.video, args.steps, seed=0)

    run_animate(), run_bare()  # warm-up
    times = {"animate": [], "bare": []}
    for _ in range(args.repeats):
        for name, function in (("animate", run_animate), ("bare", run_bare)):
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    animate_s, bare_s = statistics.median(times["animate"]), statistics.median(times["bare"])
    result = {
        "frames": args.frames,
        "steps": args.steps,
        "size": args.size,
        "parameters": sum(p.numel() for p in transformer.parameters()),
        "animate_seconds": round(animate_s, 4),
        "bare_loop_seconds": round(bare_s, 4),
        "ratio": round(animate_s / bare_s, 3),
        "note": "animate includes decoding the driving video, preparing the condition and writing the mp4",
    }
    print(
        json.dumps(result, indent=2)
        if args.json
        else f"animate {animate_s:.3f} s vs bare diffusers loop {bare_s:.3f} s: ratio {animate_s / bare_s:.3f} "
        f"({args.frames} frames, {args.steps} steps, {args.size}x{args.size}, {result['parameters']:,} params)"
    )


if __name__ == "__main__":
    main()
