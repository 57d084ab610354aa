"""How far moving the reference's own pixels can go: the skeleton warp given what no run has.

The bench's ``skeleton-warp`` baseline moves the reference's character pixels bone by
bone to the driver's retargeted skeleton and fills what they uncover with the
reference's border colour. This scores it, on world test pairs with true targets, also
driven by the target's own true skeleton (every limb where the target has it), filling
with the scene's true background plate (what the character uncovers, exactly), and both
at once: the best any warp of the reference can do on the bench's own scores. Beside
them the still reference, the issue's bar (still reference + 4 dB whole frame and inside
the character, + 0.3 foreground IoU) and, with ``--model``, what a perfect denoiser on
that model's autoencoder would give: the true target's round trip (encode, decode), alone
and with the model's detail restoration, the ceiling of the model's whole pipeline.

    python tools/probe_warp_ceiling.py [--data data/world/manifest.jsonl] [--cases 48] \
        [--model charanim-tiny] [--report runs/bench-probe] [--json]

Without ``--data`` the bench's own world is made (cached) in REPORT/world.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from world_probe import world_cases, world_probe_parser

from charanim.bench.baselines import skeleton_warp, static
from charanim.bench.cases import BenchCase
from charanim.bench.metrics import PSNR, ForegroundIoU, PSNRCharacter

SCORES = {"psnr": PSNR(), "psnr_character": PSNRCharacter(), "fg_iou": ForegroundIoU()}


def warp_with_plate(case: BenchCase) -> np.ndarray | None:
    """The skeleton warp, what the character uncovers filled from the true background plate."""
    return skeleton_warp(case, fill=np.asarray(case.background, np.float64))


def _perfect_denoisers(model: str) -> dict:
    """What a perfect denoiser on ``model``'s autoencoder would output: the true target's
    latents decoded, and with the model's detail restoration (``sampler.restore_detail``)
    as ``animate`` applies it."""
    from charanim.engine.detail import restore_detail
    from charanim.models.autoencoder import load_autoencoder
    from charanim.models.tiny import TinyFamily

    named = TinyFamily.named_models()
    folder = named[model] if model in named else Path(model)
    autoencoder = load_autoencoder(folder / "vae")
    tolerance = json.loads((folder / "charanim.json").read_text())["sampler"].get("restore_detail", 0.0)

    def signed(frames: np.ndarray) -> torch.Tensor:  # uint8 [F, H, W, 3] -> [1, 3, F, H, W] in [-1, 1]
        return torch.from_numpy(frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1

    def restored(case: BenchCase) -> np.ndarray:
        decoded = signed(autoencoder.round_trip(case.target))
        reference = signed(case.reference[None])
        out = restore_detail(
            decoded, reference, signed(autoencoder.round_trip(case.reference[None])), tolerance
        )
        return ((out[0].permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()

    return {
        "true target, round trip": lambda case: autoencoder.round_trip(case.target),
        f"… and detail restoration {tolerance:g}": restored,
    }


def main() -> None:
    parser = world_probe_parser(__doc__)
    parser.add_argument(
        "--model", help="also score the true target's round trip through this model's autoencoder"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    perfect = _perfect_denoisers(args.model) if args.model else {}  # a bad --model fails first
    cases = world_cases(args)
    outputs = {
        "static reference": static,
        "skeleton warp": skeleton_warp,
        "… the target's skeleton": lambda c: skeleton_warp(c.with_target_skeleton()),
        "… the true background": warp_with_plate,
        "… both": lambda c: warp_with_plate(c.with_target_skeleton()),
    }
    outputs.update(perfect)
    rows: dict[str, dict[str, list[float]]] = {}
    for case in cases:
        for name, make in outputs.items():
            frames = make(case)
            if frames is None:
                continue
            for band in ("all", case.motion_band):
                scores = rows.setdefault(f"{name} [{band}]", {key: [] for key in SCORES})
                for key, metric in SCORES.items():
                    scores[key].append(metric.compute(case, frames))
    summary = {
        name: {key: round(float(np.nanmean(values)), 3) for key, values in scores.items()}
        | {"cases": len(scores["psnr"])}
        for name, scores in rows.items()
    }
    still = summary["static reference [all]"]
    summary["the bar [all]"] = {
        "psnr": round(still["psnr"] + 4, 3),
        "psnr_character": round(still["psnr_character"] + 4, 3),
        "fg_iou": round(still["fg_iou"] + 0.3, 3),
        "cases": still["cases"],
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{'':40s} {'PSNR':>7s} {'in char':>8s} {'fg IoU':>7s} {'cases':>6s}")
    for name, row in sorted(summary.items(), key=lambda item: (item[0].split("[")[1], item[0])):
        print(
            f"{name:40s} {row['psnr']:7.2f} {row['psnr_character']:8.2f} {row['fg_iou']:7.3f} {row['cases']:6d}"
        )


if __name__ == "__main__":
    from charanim.errors import CharanimError

    try:
        main()
    except CharanimError as error:  # a bad --model or --data: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
