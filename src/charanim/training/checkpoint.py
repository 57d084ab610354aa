"""Checkpoints that resume exactly, stored as safetensors + JSON (nothing is unpickled).

A checkpoint folder ``RUN/checkpoints/step-000500/`` holds the trainable weights, their
EMA, the optimizer state (tensors in safetensors, the rest in JSON) and ``state.json``
(step, recipe hash). It is written to a temporary folder and renamed, so a kill leaves
either the previous checkpoints or the new one complete; older ones beyond ``keep`` are
removed only after the new one exists.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from charanim.errors import CharanimError
from charanim.models.weights import load_safetensors, save_safetensors

PREFIX = "step-"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        plain["state"][str(index)] = {}
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                plain["state"][str(index)][key] = value
    return tensors, plain


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state: dict = {int(index): dict(values) for index, values in plain["state"].items()}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}


def save_checkpoint(
    run: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    ema: dict[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    state: dict,
    keep: int,
) -> Path:
    folder = run / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{PREFIX}{step:07d}"
    scratch = Path(tempfile.mkdtemp(prefix=".incomplete-", dir=folder))
    try:
        save_safetensors(weights, scratch / "weights.safetensors")
        if ema is not None:
            save_safetensors(ema, scratch / "ema.safetensors")
        tensors, plain = _flatten_optimizer(optimizer.state_dict())
        save_safetensors(tensors, scratch / "optimizer.safetensors")
        (scratch / "optimizer.json").write_text(json.dumps(plain))
        (scratch / "state.json").write_text(json.dumps({**state, "step": step}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(scratch, final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    for old in list_checkpoints(run)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    if not folder.is_dir():
        return []
    done = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return sorted(done, key=lambda p: int(p.name[len(PREFIX) :]))


def load_checkpoint(path: Path, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Returns ``{"weights", "ema", "state"}`` and restores ``optimizer`` in place."""
    for required in ("weights.safetensors", "state.json"):
        if not (path / required).is_file():
            raise CharanimError(f"Checkpoint '{path}' is incomplete (no {required}).")
    for stray in path.iterdir():
        if stray.suffix in (".pt", ".pth", ".bin", ".ckpt", ".pkl"):
            raise CharanimError(f"Checkpoint '{path}' contains a pickle file ({stray.name}); refused.")
    result = {
        "weights": load_safetensors(path / "weights.safetensors"),
        "ema": load_safetensors(path / "ema.safetensors") if (path / "ema.safetensors").is_file() else None,
        "state": json.loads((path / "state.json").read_text()),
    }
    if optimizer is not None and (path / "optimizer.safetensors").is_file():
        plain = json.loads((path / "optimizer.json").read_text())
        optimizer.load_state_dict(
            _unflatten_optimizer(load_safetensors(path / "optimizer.safetensors"), plain)
        )
    return result
