"""Lip sync: does the output's mouth follow the audio? Measured on held-out world talkers.

For each talking sample (humanoids of world seeds from 5000, framed as
``synthesize world --audio`` frames them: close, upper body or full), the model animates the reference with the
driver's skeleton and the driver's voice (``pose+audio-face``), and the per-frame mouth
opening of the output (mouth-coloured pixels in the head box around the *true* target's
nose, :func:`charanim.metrics.mouth_openness`) is correlated with the voice's loudness;
also with the voice alone (``audio-face``, no driving video: the body stays as the
reference stands, the mouth must follow the voice; measured around the reference's nose).
The same is reported for the true target (the ceiling of the measure itself), for the
true target passed through the model's autoencoder (the ceiling of anything the model can
draw) and, as the floor, for the model without the audio. Run:

    python benchmarks/lip_sync.py --model runs/tiny-audio-face/model [--cases 24] [--audio-guidance 2] [--refine on] [--json] [--strip s.png]

``--strip`` writes the first case's frames as rows (truth, autoencoder, model, model
with the voice alone, model without the audio), 4x enlarged, to look at.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def write_strip(path: str, rows: list[np.ndarray], frames: int = 8, scale: int = 4) -> None:
    from PIL import Image

    grid = np.concatenate([np.concatenate(list(row[:frames]), axis=1) for row in rows], axis=0)
    Image.fromarray(np.kron(grid, np.ones((scale, scale, 1), np.uint8))).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--audio-guidance",
        type=float,
        default=None,
        help="guidance scale of the audio-face conditioner (default: the model's)",
    )
    parser.add_argument(
        "--refine",
        choices=("on", "off"),
        default=None,
        help="run the model's refiner or not (default: as animate decides)",
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--strip", default=None, help="PNG of the first case's frames")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from charanim.api import animate, load_pipeline
    from charanim.io.audio import Audio
    from charanim.io.image import image_from_array
    from charanim.io.video import Video
    from charanim.metrics import lip_sync, loudness, mouth_openness
    from charanim.pose.keypoints import KeypointSequence, KeypointsHeader
    from charanim.synthetic.samples import WorldConfig, make_sample
    from charanim.synthetic.voice import SAMPLE_RATE, to_float

    size = (args.size, args.size)
    config = WorldConfig(size=size, frames=16, body_plans=("humanoid",), motions=("talk",), audio=True)
    with_audio = load_pipeline(args.model, "pose+audio-face", "cpu")
    without = load_pipeline(args.model, "pose", "cpu")
    audio_only = load_pipeline(args.model, "audio-face", "cpu")
    scores = {
        name: [] for name in ("model", "model_audio_only", "model_without_audio", "truth", "autoencoder")
    }
    rows = {}
    for seed in range(5000, 5000 + args.cases):
        sample = make_sample(config, seed, seed)
        header = KeypointsHeader(*size, config.fps, body_format="coco17")
        pose = KeypointSequence.from_body_array(header, sample.driving_keypoints[:, :17])
        reference_pose = KeypointSequence.from_body_array(header, sample.reference_keypoints[None, :17])
        video = Video(sample.driving, config.fps, config.fps, size, np.arange(config.frames))
        sound = to_float(sample.driving_audio)
        target_points = sample.target_keypoints
        nose, eyes = target_points[:, 0, :2], target_points[:, 1:3, :2]
        # with the voice alone the head stays where the reference's is
        still = np.repeat(sample.reference_keypoints[None], config.frames, axis=0)
        still_nose, still_eyes = still[:, 0, :2], still[:, 1:3, :2]
        level = loudness(sound, config.frames)
        voice = Audio(sound, SAMPLE_RATE)
        for name, pipeline, audio in (
            ("model", with_audio, voice),
            ("model_audio_only", audio_only, voice),  # no driving video: a still body that talks
            ("model_without_audio", without, None),
        ):
            frames = animate(
                image_from_array(sample.reference), None if pipeline is audio_only else video,
                pipeline=pipeline, pose=pose, reference_pose=reference_pose, audio=audio, steps=args.steps,
                refine=None if args.refine is None or pipeline is audio_only else args.refine == "on",
                conditioner_guidance={"audio-face": args.audio_guidance}
                if audio is not None and args.audio_guidance is not None
                else {},
            )["result"].frames  # fmt: skip
            face = (still_nose, still_eyes) if pipeline is audio_only else (nose, eyes)
            scores[name].append(lip_sync(mouth_openness(frames, *face), level))
            rows.setdefault(name, frames)
        through = with_audio.backbone.autoencoder.round_trip(sample.target)
        scores["autoencoder"].append(lip_sync(mouth_openness(through, nose, eyes), level))
        scores["truth"].append(lip_sync(mouth_openness(sample.target, nose, eyes), level))
        rows.setdefault("truth", sample.target)
        rows.setdefault("autoencoder", through)
    report = {
        name: {"median_r": round(float(np.nanmedian(v)), 3), "mean_r": round(float(np.nanmean(v)), 3),
               "no_mouth_motion": int(np.isnan(v).sum()), "r": [round(float(x), 3) for x in v]}
        for name, v in scores.items()
    }  # fmt: skip
    guidance = with_audio.backbone.config.sampler.conditioner_guidance.get("audio-face", 1.0)
    report["cases"] = args.cases
    report["audio_guidance"] = guidance if args.audio_guidance is None else args.audio_guidance
    if args.strip:
        write_strip(
            args.strip,
            [
                rows[name]
                for name in ("truth", "autoencoder", "model", "model_audio_only", "model_without_audio")
            ],
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name in ("model", "model_audio_only", "model_without_audio", "autoencoder", "truth"):
            r = report[name]
            print(
                f"{name:<20} median r {r['median_r']:+.3f}  mean r {r['mean_r']:+.3f}  ({r['no_mouth_motion']} still)"
            )


if __name__ == "__main__":
    main()
