"""How good a hint is the RGB conditioner's reference warp, with no model?

For stage 2 (RGB driving) the reference is moved by the driving clip's optical flow from
each frame back to the first, carried onto the reference by the two characters' boxes
(:class:`charanim_rgb.flow.ReferenceFlow`, what models with warp channels are given; the
bench's ``flow-warp`` baseline).
This scores that warp against the still reference on a world manifest's test pairs, with
the world's own reference and (``--oracle``) with the target's first frame as the
reference — a reference posed as the driver starts, which is what relative motion
assumes and what ``synthesize world --reference-pose first-frame`` makes. It also reports
how well the estimated boxes overlap the world's true ones, and how well the conditioner's
mask of the reference's character (what ``--scene keep`` never replaces) covers the true
one, and how much of the true scene it takes for character.

    python tools/probe_flow_warp.py data/world/manifest.jsonl [--pairs 48] [--oracle]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from charanim_rgb.flow import character_box, character_region

from charanim.bench.baselines import flow_warp
from charanim.bench.cases import BenchCase
from charanim.metrics import psnr
from charanim.synthetic.world import load_shard_sample


def box_iou(estimated: np.ndarray, mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    true = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    width = max(0.0, min(estimated[2], true[2]) - max(estimated[0], true[0]))
    height = max(0.0, min(estimated[3], true[3]) - max(estimated[1], true[1]))
    inter = width * height
    areas = np.prod(estimated[2:] - estimated[:2]) + np.prod(true[2:] - true[:2])
    return float(inter / (areas - inter))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifest", type=Path, help="a world manifest (charanim synthesize world)")
    parser.add_argument("--pairs", type=int, default=48, help="the first N test pairs")
    parser.add_argument("--oracle", action="store_true", help="the target's first frame as the reference")
    args = parser.parse_args()
    entries = [json.loads(line) for line in args.manifest.read_text().splitlines() if line.strip()]
    tests = [e for e in entries if e["split"] == "test"][: args.pairs]
    scores, overlaps, covered, taken = {"static": [], "flow warp": []}, [], [], []
    for entry in tests:
        arrays = load_shard_sample(args.manifest.parent, entry)
        target, target_mask = arrays["target"], arrays["target_mask"] > 0
        reference, reference_mask = arrays["reference"], arrays["reference_mask"] > 0
        if args.oracle:
            reference, reference_mask = target[0], target_mask[0]
        driving = arrays["driving"]
        overlaps += [box_iou(character_box(reference), reference_mask),
                     box_iou(character_box(driving[0]), arrays["driving_mask"][0] > 0)]  # fmt: skip
        warped = flow_warp(
            BenchCase(entry["id"], "world", "", entry["fps"], reference=reference, driving=driving)
        )
        character = character_region(reference) > 0.5
        covered.append(character[reference_mask].mean())
        taken.append(character[~reference_mask].mean())
        still = np.repeat(reference[None], len(target), axis=0)
        for name, video in (("static", still), ("flow warp", warped)):
            scores[name].append((psnr(video, target), psnr(video, target, target_mask)))
    print(f"{len(tests)} test pairs, reference: {'target frame 0' if args.oracle else 'the world'}'s")
    print(
        f"box IoU with the true boxes: mean {np.mean(overlaps):.3f}, under 0.5: {np.mean(np.array(overlaps) < 0.5):.1%}"
    )
    print(f"reference character mask: covers {np.mean(covered):.1%} of the true one "
          f"(worst pair {np.min(covered):.1%}), takes {np.mean(taken):.1%} of the scene")  # fmt: skip
    for name, rows in scores.items():
        whole, inside = np.mean(rows, axis=0)
        print(f"{name:10s} PSNR {whole:.2f}  in character {inside:.2f}")


if __name__ == "__main__":
    main()
