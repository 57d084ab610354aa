"""GPU check with real weights: time and peak VRAM of charanim vs diffusers' own pipeline.

For a Wan2.2-Animate diffusers directory: 81 frames at 832x480 from the bundled
example (its driving clip played back and forth, its keypoints), the same pose maps
and face crops handed to (a) ``charanim.animate`` and (b) ``WanAnimatePipeline``
called directly, alternating, on one GPU. Reports seconds and
``torch.cuda.max_memory_allocated`` for each and their ratios. Needs CUDA and the
weights on disk (never downloads). Run through ``benchmarks/gpu_smoke.sh``:

    python benchmarks/gpu_smoke.py --model ~/models/Wan2.2-Animate-14B-Diffusers [--frames 81] [--steps 20]
        [--offload none|model|group] [--repeats 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from long_video import EXAMPLES, looped_inputs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--size", default="832x480")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--offload", default="none")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_smoke: no CUDA device; run this on a GPU machine.")
    from charanim.api import animate, load_pipeline
    from charanim.models.memory import MemorySettings

    width, height = (int(v) for v in args.size.split("x"))
    video, sequence, _ = looped_inputs(args.frames)
    pipeline = load_pipeline(args.model, "pose", "cuda", memory=MemorySettings(offload=args.offload))
    captured = {}
    run_call = type(pipeline).__call__

    def capture(self, reference, conditions, spec, **kwargs):  # keep the exact inputs for diffusers
        captured.update(reference=reference, conditions=conditions, spec=spec)
        return run_call(self, reference, conditions, spec, **kwargs)

    options = dict(
        pipeline=pipeline, pose=sequence, reference_pose=EXAMPLES / "reference.keypoints.jsonl",
        size=(width, height), steps=args.steps, window=77, overlap=1, seed=0,
    )  # fmt: skip

    def ours() -> None:
        animate(EXAMPLES / "reference.png", video, **options)

    def theirs() -> None:
        from charanim.engine.wan_animate_run import _images

        by_name = {c.conditioner: c for c in captured["conditions"]}
        pipeline.backbone.pipe(
            image=_images(captured["reference"][:, None])[0], pose_video=_images(by_name["pose"].video),
            face_video=_images(by_name["face"].video), prompt="", height=height, width=width,
            segment_frame_length=77, num_inference_steps=args.steps, guidance_scale=1.0,
            generator=torch.Generator().manual_seed(0), output_type="np",
        )  # fmt: skip

    type(pipeline).__call__ = capture
    ours()  # warm-up, and it captures the prepared inputs
    type(pipeline).__call__ = run_call
    times, peaks = {"charanim": [], "diffusers": []}, {"charanim": [], "diffusers": []}
    for _ in range(args.repeats):
        for name, run in (("charanim", ours), ("diffusers", theirs)):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            run()
            torch.cuda.synchronize()
            times[name].append(time.perf_counter() - started)
            peaks[name].append(torch.cuda.max_memory_allocated() / 2**30)
    report = {
        "model": args.model, "frames": args.frames, "size": args.size, "steps": args.steps,
        "offload": args.offload, "gpu": torch.cuda.get_device_name(),
        "seconds": {k: round(statistics.median(v), 2) for k, v in times.items()},
        "peak_vram_gib": {k: round(max(v), 2) for k, v in peaks.items()},
    }  # fmt: skip
    report["time_ratio"] = round(report["seconds"]["charanim"] / report["seconds"]["diffusers"], 3)
    report["vram_ratio"] = round(
        report["peak_vram_gib"]["charanim"] / report["peak_vram_gib"]["diffusers"], 3
    )
    print(json.dumps(report, indent=2) if args.json else
          f"{args.frames} frames at {args.size}, {args.steps} steps on {report['gpu']}: charanim "
          f"{report['seconds']['charanim']} s / {report['peak_vram_gib']['charanim']} GiB, diffusers "
          f"{report['seconds']['diffusers']} s / {report['peak_vram_gib']['diffusers']} GiB "
          f"(ratios {report['time_ratio']} / {report['vram_ratio']})")  # fmt: skip


if __name__ == "__main__":
    main()
