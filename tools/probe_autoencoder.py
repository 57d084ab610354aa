"""What the autoencoder alone costs: the ceiling of every latent model on it.

A latent model's frames come back through its autoencoder's decoder, so its output can
be no closer to the true target than the target's own round trip (encode, decode). This
scores, on world test pairs with true targets (the bench's world suite, cached in
REPORT/world), the round trip of the target, and the bench's baselines (the still
reference, the flow warp) with and without a round trip: a model that only copied its
hint through the autoencoder would score the latter. ``--vae`` compares other decoders of
the same encoder (a fine-tuned one) against the model's own, in one run.

    python tools/probe_autoencoder.py [--model charanim-tiny] [--vae runs/X/model ...] \
        [--cases 24] [--reference-pose first-frame] [--report runs/bench-probe]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from charanim.bench.baselines import flow_warp, static
from charanim.bench.cases import world_suite
from charanim.metrics import psnr
from charanim.models.autoencoder import load_autoencoder


def _model_vae(model: str) -> Path:
    from charanim.models.tiny import TinyFamily

    named = TinyFamily.named_models()
    return (named[model] if model in named else Path(model)) / "vae"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="charanim-tiny", help="model name or folder (its vae/)")
    parser.add_argument("--vae", action="append", default=[], help="another autoencoder folder (repeatable)")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--reference-pose", default="first-frame", choices=("other", "first-frame"))
    parser.add_argument(
        "--report", type=Path, default=Path("runs/bench-probe"), help="where the world is cached"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    autoencoders = {
        "model": load_autoencoder(_model_vae(args.model))
    }  # a bad folder fails before the world is made
    autoencoders.update({str(path): load_autoencoder(Path(path)) for path in args.vae})
    cases = world_suite(args.report, args.cases, reference_pose=args.reference_pose)
    hints = {"static": static, "flow-warp": flow_warp}
    scores: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, frames: np.ndarray, case) -> None:
        mask = case.target_mask
        scores.setdefault(name, []).append((psnr(frames, case.target), psnr(frames, case.target, mask)))

    for case in cases:
        if case.error:
            continue
        made = {name: hint(case) for name, hint in hints.items()}
        for name, frames in made.items():
            if frames is not None:
                add(name, frames, case)
        for label, autoencoder in autoencoders.items():
            add(f"target, round trip ({label})", autoencoder.round_trip(case.target), case)
            for name, frames in made.items():
                if frames is not None:
                    add(f"{name}, round trip ({label})", autoencoder.round_trip(frames), case)
    summary = {
        name: {"psnr": round(float(np.mean([s[0] for s in rows])), 2),
               "psnr_character": round(float(np.mean([s[1] for s in rows])), 2), "cases": len(rows)}
        for name, rows in scores.items()
    }  # fmt: skip
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    from charanim.errors import CharanimError

    try:
        main()
    except CharanimError as error:  # a bad --model or --vae: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
