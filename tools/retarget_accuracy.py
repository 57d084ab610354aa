"""How well retargeting puts the driving motion on the reference: on held-out world pairs,
the retargeted skeleton against the target character's true one.

Counts, among joints inside the frame, those drawn where the target has none (extra)
and those the target shows but the skeleton does not (missing), per body plan, and the
distance between the two where both show a joint. The pose conditioner draws exactly
this skeleton, so every extra or missing joint is a limb the model is told to draw or
to leave out, wrongly.

    python tools/retarget_accuracy.py data/world/manifest.jsonl [--pairs 120] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def measure(manifest: Path, pairs: int) -> dict:
    from charanim.bench.cases import world_suite
    from charanim.pose.retarget import retarget

    with tempfile.TemporaryDirectory() as scratch:
        cases = world_suite(Path(scratch), pairs, manifest)
    counts: dict[str, dict] = {}
    for case in cases:
        body_format = case.reference_keypoints.header.body_format
        if case.error or case.driving_keypoints.header.body_format != body_format:
            continue
        height, width = case.reference.shape[:2]
        moved = retarget(
            case.driving_keypoints.body_array()[: len(case.target)],
            case.reference_keypoints.body_array()[0],
            body_format,
            reference_box=(0, 0, width, height),
        )
        inside = (
            (moved[..., 0] >= 0) & (moved[..., 0] < width) & (moved[..., 1] >= 0) & (moved[..., 1] < height)
        )
        drawn = (moved[..., 2] > 0) & inside
        truth = case.target_keypoints[:, : moved.shape[1], 2] > 0
        both = drawn & truth
        error = np.linalg.norm(moved[..., :2] - case.target_keypoints[:, : moved.shape[1], :2], axis=-1)[both]
        for key in (case.group, "all"):
            row = counts.setdefault(key, {"pairs": 0, "extra": 0, "missing": 0, "shown": 0, "errors": []})
            row["pairs"] += 1
            row["extra"] += int((drawn & ~truth).sum())
            row["missing"] += int((~drawn & truth).sum())
            row["shown"] += int(truth.sum())
            row["errors"].append(error)
    report = {}
    for key, row in sorted(counts.items()):
        errors = np.concatenate(row["errors"])
        report[key] = {
            "pairs": row["pairs"],
            "extra": round(row["extra"] / max(row["shown"], 1), 4),
            "missing": round(row["missing"] / max(row["shown"], 1), 4),
            "error_median_px": round(float(np.median(errors)), 2) if errors.size else None,
            "error_mean_px": round(float(errors.mean()), 2) if errors.size else None,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("manifest", type=Path, help="a world manifest with a test split")
    parser.add_argument("--pairs", type=int, default=120)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = measure(args.manifest, args.pairs)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print("plan        pairs  extra  missing  error median / mean (px)")
    for key, row in report.items():
        print(f"{key:11s} {row['pairs']:5d}  {row['extra']:.3f}  {row['missing']:.3f}    "
              f"{row['error_median_px']} / {row['error_mean_px']}")  # fmt: skip


if __name__ == "__main__":
    main()
