"""Lip sync: does the output's mouth follow the audio? Measured on held-out world talkers.

For each talking sample (world seeds from 5000, close and upper framing as
``synthesize world --audio`` makes them), the model animates the reference with the
driver's skeleton and the driver's voice (``pose+audio-face``), and the per-frame mouth
opening of the output (mouth-coloured pixels in the head box around the *true* target's
nose, :func:`charanim.metrics.mouth_openness`) is correlated with the voice's loudness.
The same is reported for the true target (the ceiling: the measure itself) and, as the
floor, for the model without the audio. Run:

    python benchmarks/lip_sync.py --model runs/tiny-audio-face/model [--cases 24] [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def loudness(sound: np.ndarray, frames: int) -> np.ndarray:
    per_frame = len(sound) // frames
    return np.sqrt([np.mean(sound[i * per_frame : (i + 1) * per_frame] ** 2) for i in range(frames)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from charanim.api import animate, load_pipeline
    from charanim.io.audio import Audio
    from charanim.io.image import image_from_array
    from charanim.io.video import Video
    from charanim.metrics import lip_sync, mouth_openness
    from charanim.pose.keypoints import KeypointSequence, KeypointsHeader
    from charanim.synthetic.samples import WorldConfig, make_sample
    from charanim.synthetic.voice import SAMPLE_RATE, to_float

    size = (args.size, args.size)
    config = WorldConfig(size=size, frames=16, body_plans=("humanoid",), motions=("talk",), audio=True)
    with_audio = load_pipeline(args.model, "pose+audio-face", "cpu")
    without = load_pipeline(args.model, "pose", "cpu")
    scores = {"model": [], "model_without_audio": [], "truth": []}
    for seed in range(5000, 5000 + args.cases):
        sample = make_sample(config, seed, seed)
        header = KeypointsHeader(*size, config.fps, body_format="coco17")
        pose = KeypointSequence.from_body_array(header, sample.driving_keypoints[:, :17])
        reference_pose = KeypointSequence.from_body_array(header, sample.reference_keypoints[None, :17])
        video = Video(sample.driving, config.fps, config.fps, size, np.arange(config.frames))
        sound = to_float(sample.driving_audio)
        target_points = sample.target_keypoints
        nose, eyes = target_points[:, 0, :2], target_points[:, 1:3, :2]
        level = loudness(sound, config.frames)
        for name, pipeline, audio in (
            ("model", with_audio, Audio(sound, SAMPLE_RATE)),
            ("model_without_audio", without, None),
        ):
            frames = animate(
                image_from_array(sample.reference), video, pipeline=pipeline, pose=pose,
                reference_pose=reference_pose, audio=audio, steps=args.steps,
            )["result"].frames  # fmt: skip
            scores[name].append(lip_sync(mouth_openness(frames, nose, eyes), level))
        scores["truth"].append(lip_sync(mouth_openness(sample.target, nose, eyes), level))
    report = {
        name: {"median_r": round(float(np.nanmedian(v)), 3), "mean_r": round(float(np.nanmean(v)), 3),
               "no_mouth_motion": int(np.isnan(v).sum())}
        for name, v in scores.items()
    }  # fmt: skip
    report["cases"] = args.cases
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name in ("model", "model_without_audio", "truth"):
            r = report[name]
            print(
                f"{name:<20} median r {r['median_r']:+.3f}  mean r {r['mean_r']:+.3f}  ({r['no_mouth_motion']} still)"
            )


if __name__ == "__main__":
    main()
