"""Regenerate the bundled example inputs from the procedural world.

    python examples/make_examples.py

Writes a held-out world pair (seed 1000, the bench's world; the shipped model trains on
seed 0): character B's still image, character A's driving clip, both characters'
keypoints, and the truth (B performing A's motion) to compare an animation with.
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
WANTED_MOTION = "wave"


def _keypoints(points: np.ndarray, fmt: str, config: WorldConfig) -> KeypointSequence:
    header = KeypointsHeader(config.size[0], config.size[1], config.fps, body_format=fmt)
    return KeypointSequence.from_body_array(header, points[..., : len(get_format(fmt)), :])


def main() -> None:
    config = WorldConfig(body_plans=("humanoid",), cross_plan=0.0, motions=(WANTED_MOTION,))
    for index in range(1000):
        sample = make_sample(config, BENCH_WORLD_SEED * 1_000_003 + index, index)
        if sample.meta["driving"]["framing"] == "full" and sample.meta["reference"]["framing"] == "full":
            break
    fmt = sample.meta["reference"]["keypoint_format"]
    Image.fromarray(sample.reference).save(HERE / "reference.png")
    write_video(HERE / "driving.mp4", sample.driving, config.fps)
    write_video(HERE / "target.mp4", sample.target, config.fps)
    _keypoints(sample.driving_keypoints, fmt, config).save(HERE / "driving.keypoints.jsonl")
    _keypoints(sample.reference_keypoints[None], fmt, config).save(HERE / "reference.keypoints.jsonl")
    (HERE / "example.json").write_text(
        json.dumps({"world_seed": BENCH_WORLD_SEED, "index": index, **sample.meta}, indent=2) + "\n"
    )
    print(f"example {index}: {sample.meta['caption']['prompt']}")


if __name__ == "__main__":
    main()
