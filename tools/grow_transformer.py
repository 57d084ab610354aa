"""Deepen a trained charanim model's transformer without changing what it computes.

    python tools/grow_transformer.py runs/tiny-s1-mix2/s1mix2 runs/grown/model --layers 12

Each new block is a copy of the trained block before it with its three output
projections (self-attention, cross-attention, feed-forward) zeroed: a Wan block adds
only those to its input, so it starts as the identity and the grown model predicts
exactly what the trained one did (checked here on a random input), while its copied
weights give the new block useful features from the first step. The copies are
interleaved (block 0, its copy, block 1, ...) as stacking-style growth does, so every
depth gains capacity. Train on with ``model.init=OUT``; the recipe's ``model.transformer``
is ignored then, the grown folder's config is used.

Conditioner adapters (``conditioners/``) are LoRA weights keyed by block index and do
not survive a regrown stack: a model that has them is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "diffusion_pytorch_model.safetensors"
#: what a Wan block adds to its input; zeroed, the block is the identity
OUTPUT_PROJECTIONS = ("attn1.to_out.0.", "attn2.to_out.0.", "ffn.net.2.")


def grown_state(state: dict[str, torch.Tensor], layers: int, new_layers: int) -> dict[str, torch.Tensor]:
    """The weights of a ``new_layers``-block stack: the ``layers`` trained blocks spread
    evenly through it, each gap filled by identity copies of the block before it."""
    if new_layers < layers:
        raise SystemExit(f"--layers {new_layers} is fewer than the model's {layers}: this only grows.")
    # trained block i goes to slot floor(i * new / old); the slots between are its copies
    placed = [i * new_layers // layers for i in range(layers)]
    grown = {k: v for k, v in state.items() if not k.startswith("blocks.")}
    for slot in range(new_layers):
        source = max(i for i, p in enumerate(placed) if p <= slot)
        copy = slot != placed[source]
        for key, value in state.items():
            prefix = f"blocks.{source}."
            if not key.startswith(prefix):
                continue
            name = key[len(prefix) :]
            zeroed = copy and name.startswith(OUTPUT_PROJECTIONS)
            grown[f"blocks.{slot}.{name}"] = torch.zeros_like(value) if zeroed else value.clone()
    return grown


def check_same_output(old: Path, new: Path) -> float:
    """The largest difference between the two transformers' predictions on one random input."""
    from diffusers import WanTransformer3DModel

    a = WanTransformer3DModel.from_pretrained(old, local_files_only=True).eval()
    b = WanTransformer3DModel.from_pretrained(new, local_files_only=True).eval()
    config = a.config
    generator = torch.Generator().manual_seed(0)
    frames, size = 2 * config.patch_size[0], 4 * config.patch_size[1]
    x = torch.randn(1, config.in_channels, frames, size, size, generator=generator)
    text = torch.randn(1, 8, config.text_dim, generator=generator)
    t = torch.tensor([500.0])
    with torch.no_grad():
        ya = a(x, t, text, return_dict=False)[0]
        yb = b(x, t, text, return_dict=False)[0]
    return float((ya - yb).abs().max())


def grow(model: Path, out: Path, layers: int) -> float:
    """Write ``model`` with a ``layers``-block transformer to ``out`` (whole, or not at
    all); returns the largest difference of the two transformers' predictions."""
    if (model / "conditioners").is_dir():
        raise SystemExit(
            f"{model} has conditioner adapters, keyed by block: retrain them on the grown model."
        )
    if out.exists():
        raise SystemExit(f"{out} exists; name a new folder.")
    source = model / "transformer"
    config = json.loads((source / "config.json").read_text())
    state = grown_state(load_file(source / WEIGHTS), config["num_layers"], layers)

    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model, staging)
    target = staging / "transformer"
    save_file(state, target / WEIGHTS)
    (target / "config.json").write_text(json.dumps({**config, "num_layers": layers}, indent=2) + "\n")
    difference = check_same_output(source, target)
    if difference > 1e-4:
        shutil.rmtree(staging)
        raise SystemExit(
            f"the grown transformer predicts differently (max difference {difference:.2e}); not written."
        )
    staging.rename(out)
    return difference


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a trained charanim model folder")
    parser.add_argument("out", type=Path, help="the grown model's folder (must not exist)")
    parser.add_argument("--layers", type=int, required=True, help="blocks in the grown transformer")
    args = parser.parse_args()
    difference = grow(args.model, args.out, args.layers)
    print(f"Wrote {args.out}: {args.layers} blocks, the same prediction (max difference {difference:.1e}).")


if __name__ == "__main__":
    main()
