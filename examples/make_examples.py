"""Regenerate the bundled example inputs from the procedural world.

    python examples/make_examples.py

Writes held-out world pairs (seed 1000, the bench's world; the shipped models train on
seed 0): character B's still image, character A's driving clip, both characters'
keypoints, and the truth (B performing A's motion) to compare an animation with. Two of
them: a humanoid waving (here; the pose-driven default model) and a quadruped walking
(quadruped/; AP-10K skeletons, and an animal driver for the RGB conditioner, so its
reference is posed as the driver starts: the relative motion the RGB model expects).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from charanim.bench.cases import BENCH_WORLD_SEED
from charanim.io.video import write_video
from charanim.pose.formats import get_format
from charanim.pose.keypoints import KeypointSequence, KeypointsHeader
from charanim.synthetic.samples import WorldConfig, make_sample

HERE = Path(__file__).parent
#: folder -> (body plan, motion, how the reference is posed) of the example written there
EXAMPLES = {HERE: ("humanoid", "wave", "other"), HERE / "quadruped": ("quadruped", "walk", "first-frame")}


def _keypoints(points: np.ndarray, fmt: str, config: WorldConfig) -> KeypointSequence:
    header = KeypointsHeader(config.size[0], config.size[1], config.fps, body_format=fmt)
    return KeypointSequence.from_body_array(header, points[..., : len(get_format(fmt)), :])


def write_example(folder: Path, body_plan: str, motion: str, reference_pose: str) -> None:
    config = WorldConfig(
        body_plans=(body_plan,), cross_plan=0.0, motions=(motion,), reference_pose=reference_pose
    )
    for index in range(1000):
        sample = make_sample(config, BENCH_WORLD_SEED * 1_000_003 + index, index)
        if sample.meta["driving"]["framing"] == "full" and sample.meta["reference"]["framing"] == "full":
            break
    folder.mkdir(exist_ok=True)
    fmt = sample.meta["reference"]["keypoint_format"]
    Image.fromarray(sample.reference).save(folder / "reference.png")
    write_video(folder / "driving.mp4", sample.driving, config.fps)
    write_video(folder / "target.mp4", sample.target, config.fps)
    _keypoints(sample.driving_keypoints, fmt, config).save(folder / "driving.keypoints.jsonl")
    _keypoints(sample.reference_keypoints[None], fmt, config).save(folder / "reference.keypoints.jsonl")
    (folder / "example.json").write_text(
        json.dumps(
            {"world_seed": BENCH_WORLD_SEED, "index": index, "reference_pose": reference_pose, **sample.meta},
            indent=2,
        )
        + "\n"
    )
    print(f"{folder.name or '.'}: example {index}: {sample.meta['caption']['prompt']}")


def main() -> None:
    for folder, (body_plan, motion, reference_pose) in EXAMPLES.items():
        write_example(folder, body_plan, motion, reference_pose)


if __name__ == "__main__":
    main()
