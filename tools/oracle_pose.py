"""How much of a pose model's error is the pose's and how much the model's.

On held-out world pairs (the bench's), the model is run twice: driven as always, by the
driving character's skeleton retargeted onto the reference, and driven by the target
character's own true skeleton (an oracle: every limb exactly where the target has it,
which no real run has). With the static reference beside them, per pair, in one run:
PSNR over the whole frame and inside the true character, and foreground IoU, as
``charanim bench`` measures them. If the oracle run is far better, retargeting limits
the model; if not, the model does.

    python tools/oracle_pose.py [--model charanim-tiny] [--data MANIFEST] [--cases 24] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np


def _own_skeleton(case):
    """The case with the target's true keypoints as its driving skeleton."""
    from charanim.pose.keypoints import KeypointSequence

    header = case.reference_keypoints.header
    count = case.reference_keypoints.body_array().shape[1]
    header = dataclasses.replace(header, fps=case.fps)
    truth = np.asarray(case.target_keypoints[:, :count], np.float32)
    return dataclasses.replace(case, driving_keypoints=KeypointSequence.from_body_array(header, truth))


def measure(model: str, manifest: Path | None, count: int) -> dict:
    from charanim.bench.baselines import static
    from charanim.bench.cases import world_suite
    from charanim.bench.metrics import PSNR, ForegroundIoU, PSNRCharacter
    from charanim.bench.runner import model_contender

    metrics = [PSNR(), PSNRCharacter(), ForegroundIoU()]
    with tempfile.TemporaryDirectory() as scratch:
        cases = [c for c in world_suite(Path(scratch), count, manifest) if c.error is None]
        contender = model_contender(model, None, 0, "pose", "auto")
        rows: dict[str, dict[str, list[float]]] = {}
        for case in cases:
            if case.target_keypoints is None or case.reference_keypoints is None:
                continue
            runs = {
                "retargeted driver": contender.run(case),
                "target's own skeleton": contender.run(_own_skeleton(case)),
                "static reference": static(case),
            }
            for name, frames in runs.items():
                row = rows.setdefault(name, {m.name: [] for m in metrics})
                for metric in metrics:
                    row[metric.name].append(metric.compute(case, frames[: len(case.target)]))
    return {
        name: {
            key: round(statistics.fmean(v for v in values if np.isfinite(v)), 3)
            for key, values in row.items()
        }
        | {"cases": len(row["psnr"])}
        for name, row in rows.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="charanim-tiny")
    parser.add_argument(
        "--data", type=Path, help="a world manifest whose test split to use (default: the bench's world)"
    )
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    report = measure(args.model, args.data, args.cases)
    if args.json:
        print(json.dumps(report))
        return
    for name, row in report.items():
        print(f"{name:>24}: " + "  ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    from charanim.errors import CharanimError

    try:
        main()
    except CharanimError as error:
        raise SystemExit(f"error: {error}") from None
