"""Where a refined model's silhouette errors lie: inside the refiner's gate, or outside it.

The bench's foreground IoU compares the output's silhouette (pixels unlike the scene's
background) with the true one. A refiner changes only the pixels of its gate
(:func:`charanim.engine.refine.refine_gate`); the rest is the model's frame. This runs a
model on world test pairs, records each frame's gate, and splits the silhouette errors:

- false character pixels inside the gate, within 2 px of the true silhouette (a fat,
  soft edge), on the reference's own character (what a moved limb left behind), or
  elsewhere; and outside the gate;
- missed character pixels inside the gate and outside it;

with the IoU the model scores, and what it would score were its output exactly right
inside the gate (a perfect refiner) or outside it (a perfect gate and model elsewhere).

    python tools/probe_refiner_gate.py [--model charanim-tiny] [--data data/world/manifest.jsonl] \
        [--cases 48] [--report runs/bench-probe] [--json]

Shares are of all pixels of all frames, pooled; IoUs are means over the pairs, as the
bench's.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from world_probe import world_cases, world_probe_parser

import charanim.engine.refine as refine_module
from charanim.bench.runner import model_contender
from charanim.metrics import foreground_mask, grow_mask, mask_iou

#: a false character pixel this close to the true silhouette (4-neighbour steps) is its edge drawn fat
EDGE = 2


def recording_gates(gates: list[np.ndarray]) -> None:
    """Make every refiner pass append its gate (``bool [F, H, W]``) to ``gates``: the
    pipeline computes it deep inside, from inputs only it holds (the warp, the pose maps)."""
    compute = refine_module.refine_gate

    def recorded(*args, **kwargs):
        gate = compute(*args, **kwargs)
        gates.append(gate[:, 0].bool().numpy())
        return gate

    refine_module.refine_gate = recorded


def split_errors(out: np.ndarray, truth: np.ndarray, gate: np.ndarray, reference: np.ndarray) -> dict:
    """Pixel counts of each kind of error (``[F, H, W]`` bools; ``reference``, the
    reference's character, ``[H, W]``)."""
    near = grow_mask(truth, EDGE)
    false = out & ~truth
    missed = ~out & truth
    return {
        "right": int((out & truth).sum()),
        "false, gate, edge": int((false & gate & near).sum()),
        "false, gate, on the reference": int((false & gate & ~near & reference).sum()),
        "false, gate, elsewhere": int((false & gate & ~near & ~reference).sum()),
        "false, outside the gate": int((false & ~gate).sum()),
        "missed, gate": int((missed & gate).sum()),
        "missed, outside the gate": int((missed & ~gate).sum()),
        "gate": int(gate.sum()),
        "pixels": int(gate.size),
    }


def main() -> None:
    parser = world_probe_parser(__doc__)
    parser.add_argument("--model", default="charanim-tiny", help="a model with a refiner")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    gates: list[np.ndarray] = []
    recording_gates(gates)
    contender = model_contender(args.model, None, 0, None, "cpu")
    cases = [c for c in world_cases(args) if c.target_mask is not None]
    counts: dict[str, int] = {}
    ious: dict[str, list[float]] = {"as run": [], "perfect inside the gate": [], "perfect outside it": []}
    for case in cases:
        gates.clear()
        frames = contender.run(case)
        if not gates:
            raise SystemExit(f"error: '{args.model}' ran no refiner (no refiner/ folder, or refine off).")
        gate = np.concatenate(gates)
        out, truth = foreground_mask(frames, case.background), case.target_mask > 0
        reference = (
            case.reference_mask > 0 if case.reference_mask is not None else np.zeros(truth.shape[1:], bool)
        )
        for key, value in split_errors(out, truth, gate, reference).items():
            counts[key] = counts.get(key, 0) + value
        ious["as run"].append(mask_iou(out, truth))
        ious["perfect inside the gate"].append(mask_iou(np.where(gate, truth, out), truth))
        ious["perfect outside it"].append(mask_iou(np.where(gate, out, truth), truth))
    pixels = counts.pop("pixels")
    report = {
        "model": args.model,
        "cases": len(cases),
        "fg_iou": {key: round(float(np.mean(values)), 3) for key, values in ious.items()},
        "share_of_pixels_percent": {key: round(100 * value / pixels, 2) for key, value in counts.items()},
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.model} on {len(cases)} pairs")
    for key, value in report["fg_iou"].items():
        print(f"  fg IoU, {key:28s} {value:.3f}")
    for key, value in report["share_of_pixels_percent"].items():
        print(f"  {key:36s} {value:6.2f} % of pixels")


if __name__ == "__main__":
    from charanim.errors import CharanimError

    try:
        main()
    except CharanimError as error:  # a bad --model or --data: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
