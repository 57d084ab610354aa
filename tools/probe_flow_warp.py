"""Would the driver's own optical flow move the reference well enough to help an RGB model?

For stage 2 (RGB driving) the skeleton warp that made stage 1 follow the motion is not
available. The candidate in its place: the driving clip's dense optical flow from frame t
back to frame 0 (OpenCV: DIS or Farneback), carried onto the reference by mapping the
two characters' boxes (from the world's masks) onto each other, then the reference
sampled there. No model is involved: this scores that warp, on world test pairs,
against the still reference, with the world's own reference and (``--oracle``) with the
target's first frame as the reference — a reference posed as the driver starts, which
is what relative motion assumes.

    python tools/probe_flow_warp.py data/world/manifest.jsonl [--pairs 48] [--flow dis] [--oracle]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from charanim.metrics import psnr
from charanim.synthetic.world import load_shard_sample


def box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def flow_warp(reference, reference_mask, driving, driving_mask, flow) -> np.ndarray:
    """``[F, H, W, 3]``: the reference moved, frame by frame, by the driver's flow t -> 0."""
    ref_box, drv_box = box(reference_mask), box(driving_mask[0])
    scale = (drv_box[2:] - drv_box[:2]) / (ref_box[2:] - ref_box[:2])
    ys, xs = np.mgrid[0 : reference.shape[0], 0 : reference.shape[1]].astype(np.float32)
    # each reference pixel's place on the driver
    dx, dy = drv_box[0] + (xs - ref_box[0]) * scale[0], drv_box[1] + (ys - ref_box[1]) * scale[1]
    first = cv2.cvtColor(driving[0], cv2.COLOR_RGB2GRAY)
    frames = []
    for frame in driving:
        back = flow(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), first)  # [H, W, 2]: t -> 0
        fx = cv2.remap(back[..., 0], dx, dy, cv2.INTER_LINEAR)
        fy = cv2.remap(back[..., 1], dx, dy, cv2.INTER_LINEAR)
        sx = (dx + fx - drv_box[0]) / scale[0] + ref_box[0]
        sy = (dy + fy - drv_box[1]) / scale[1] + ref_box[1]
        frames.append(cv2.remap(reference, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return np.stack(frames)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifest", type=Path, help="a world manifest (charanim synthesize world)")
    parser.add_argument("--pairs", type=int, default=48, help="the first N test pairs")
    parser.add_argument("--flow", choices=("dis", "farneback"), default="dis")
    parser.add_argument("--oracle", action="store_true", help="the target's first frame as the reference")
    args = parser.parse_args()
    if args.flow == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = lambda a, b: dis.calc(a, b, None)  # noqa: E731
    else:
        flow = lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 7, 3, 5, 1.1, 0)  # noqa: E731
    entries = [json.loads(line) for line in args.manifest.read_text().splitlines() if line.strip()]
    tests = [e for e in entries if e["split"] == "test"][: args.pairs]
    scores = {"static": [], "flow warp": []}
    for entry in tests:
        arrays = load_shard_sample(args.manifest.parent, entry)
        target, target_mask = arrays["target"], arrays["target_mask"] > 0
        reference, reference_mask = arrays["reference"], arrays["reference_mask"] > 0
        if args.oracle:
            reference, reference_mask = target[0], target_mask[0]
        driving, driving_mask = arrays["driving"], arrays["driving_mask"] > 0
        still = np.repeat(reference[None], len(target), axis=0)
        warped = flow_warp(reference, reference_mask, driving, driving_mask, flow)
        for name, video in (("static", still), ("flow warp", warped)):
            scores[name].append((psnr(video, target), psnr(video, target, target_mask)))
    print(
        f"{len(tests)} test pairs, {args.flow} flow, reference: {'target frame 0' if args.oracle else 'world'}"
    )
    for name, rows in scores.items():
        whole, inside = np.mean(rows, axis=0)
        print(f"{name:10s} PSNR {whole:.2f}  in character {inside:.2f}")


if __name__ == "__main__":
    main()
