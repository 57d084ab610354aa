"""Copy a trained charanim model into the package as a named model, weights in float16.

    python tools/ship_model.py runs/tiny-stage1/model src/charanim/assets/models/charanim-tiny

float16 halves what the repository and the wheel carry; loading casts back to the
runtime dtype (float32 on CPU), and the rounding is far below what the model resolves.
The model card (README.md) is kept if the target has one: it is written by hand from
the bench report (see recipes/tiny/README.md).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def ship(source: Path, target: Path) -> None:
    scratch = target.with_name(f".{target.name}.incomplete")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(source, scratch)
    for weights in scratch.rglob("*.safetensors"):
        tensors = load_file(weights)
        half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(half, weights, metadata={"format": "pt"})
    card = target / "README.md"
    if card.is_file():
        shutil.copy2(card, scratch / "README.md")
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"{target}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ship(Path(sys.argv[1]), Path(sys.argv[2]))
