"""Long videos: colour drift across windows (with and without the overlap colour
correction) and peak memory of a clip 10x longer, in one run.

The bundled example's driving motion (16 frames at 8 fps, with its keypoints) is
played back and forth to the wanted length (a ping-pong loop has no jump at the
seams), and animated with a pose model (default: the shipped charanim-tiny). Drift is ``colour_drift`` of the result: the largest distance, in RGB
units 0-255, between the mean colour of any window's own frames and the first
window's, and the same measured on (output - true target), which leaves out the colour
changes the motion itself makes. One clip's drift is one draw of the model's noise, so it
is averaged over ``--seeds`` seeds (each mode sees the same seeds). Memory is the peak RSS
(VmHWM) of a fresh process per length. Run:

    python benchmarks/long_video.py [--model DIR] [--frames 64] [--window 16] [--overlap 4]
                                    [--seeds 3] [--skip-memory] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def looped_inputs(frames: int):
    """The example's driving video frames and keypoints, ping-ponged to ``frames``."""
    import numpy as np

    from charanim.io.video import Video, read_video
    from charanim.pose.estimate import keypoints_from
    from charanim.pose.keypoints import KeypointSequence

    video = read_video(EXAMPLES / "driving.mp4")
    target = read_video(EXAMPLES / "target.mp4")
    keypoints = keypoints_from(EXAMPLES / "driving.keypoints.jsonl")
    cycle = list(range(len(video))) + list(range(len(video) - 2, 0, -1))
    order = [cycle[i % len(cycle)] for i in range(frames)]
    looped = Video(video.frames[order], video.fps, video.fps, video.source_size, np.arange(frames))
    sequence = KeypointSequence(keypoints.header, [keypoints.frames[i] for i in order])
    return looped, sequence, target.frames[order]


def drift_against_truth(frames, truth, windows) -> float:
    """Largest change, from the first window, of (output mean colour - true mean colour)
    over a window's own frames: the drift the model adds, with the motion's own colour
    changes (a limb crossing the frame) taken out."""
    import numpy as np

    errors = []
    for window in windows:
        own = slice(window.start + window.context, window.start + window.frames)
        if len(frames[own]):
            errors.append(frames[own].reshape(-1, 3).mean(0) - truth[own].reshape(-1, 3).mean(0))
    return float(max(np.linalg.norm(e - errors[0]) for e in errors))


def run_once(
    model: str, frames: int, window: int, overlap: int, correction: str, steps: int, seed: int
) -> dict:
    from charanim.api import animate, load_pipeline
    from charanim.bench.speed import peak_rss_mb

    video, sequence, truth = looped_inputs(frames)
    summary = animate(
        EXAMPLES / "reference.png", video, pipeline=load_pipeline(model, "pose", "cpu"),
        pose=sequence, reference_pose=EXAMPLES / "reference.keypoints.jsonl",
        window=window, overlap=overlap, colour_correction=correction, steps=steps, seed=seed,
    )  # fmt: skip
    return {
        "frames": frames,
        "windows": summary["windows"],
        "colour_drift": summary["colour_drift"],
        "drift_vs_truth": round(
            drift_against_truth(summary["result"].frames, truth, summary["result"].windows), 3
        ),
        "seconds": summary["seconds"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def in_child(args: list[str]) -> dict:
    """Run one measurement in a fresh process (``args``: --model and the --child values)."""
    command = [sys.executable, __file__, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="charanim-tiny")
    parser.add_argument(
        "--frames", type=int, default=64, help="the drift clip; memory compares 1x and 10x of --short"
    )
    parser.add_argument("--short", type=int, default=32)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3, help="drift is averaged over this many seeds")
    parser.add_argument("--skip-memory", action="store_true", help="measure the drift only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.child:
        frames, window, overlap, correction, steps, seed = args.child
        print(json.dumps(run_once(args.model, int(frames), int(window), int(overlap), correction, int(steps), int(seed))))  # fmt: skip
        return

    common = [str(args.window), str(args.overlap)]
    model = ["--model", args.model, "--threads", str(args.threads)]

    def child(frames: int, correction: str, seed: int) -> dict:
        return in_child([*model, "--child", str(frames), *common, correction, str(args.steps), str(seed)])

    drift = {
        correction: [child(args.frames, correction, seed) for seed in range(args.seeds)]
        for correction in ("none", "overlap", "mean")
    }

    def mean(runs: list[dict], key: str) -> float:
        return round(sum(r[key] for r in runs) / len(runs), 3)

    report = {
        "model": args.model,
        "drift": {
            "frames": args.frames,
            "windows": drift["none"][0]["windows"],
            "seeds": args.seeds,
            "without_correction": mean(drift["none"], "colour_drift"),
            "with_correction": mean(drift["overlap"], "colour_drift"),
            "vs_truth_without_correction": mean(drift["none"], "drift_vs_truth"),
            "vs_truth_with_correction": mean(drift["overlap"], "drift_vs_truth"),
            "with_mean_correction": mean(drift["mean"], "colour_drift"),
            "vs_truth_with_mean_correction": mean(drift["mean"], "drift_vs_truth"),
            "per_seed_vs_truth": {mode: [r["drift_vs_truth"] for r in runs] for mode, runs in drift.items()},
        },
    }
    if not args.skip_memory:
        short, long = child(args.short, "overlap", 0), child(args.short * 10, "overlap", 0)
        report["memory"] = {
            "short_frames": short["frames"],
            "long_frames": long["frames"],
            "short_peak_rss_mb": short["peak_rss_mb"],
            "long_peak_rss_mb": long["peak_rss_mb"],
            "ratio": round(long["peak_rss_mb"] / short["peak_rss_mb"], 3),
            "long_seconds": long["seconds"],
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    d = report["drift"]
    print(f"colour drift over {d['frames']} frames ({d['windows']} windows, mean of {d['seeds']} seeds): "
          f"{d['without_correction']:.2f} without correction, {d['with_correction']:.2f} with (RGB units); "
          f"against the true target: {d['vs_truth_without_correction']:.2f} without, "
          f"{d['vs_truth_with_correction']:.2f} with; means only: {d['with_mean_correction']:.2f}, "
          f"{d['vs_truth_with_mean_correction']:.2f} against the target")  # fmt: skip
    if "memory" not in report:
        return
    m = report["memory"]
    print(f"peak RSS: {m['short_peak_rss_mb']:.0f} MB for {m['short_frames']} frames, "
          f"{m['long_peak_rss_mb']:.0f} MB for {m['long_frames']} frames (ratio {m['ratio']:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
