"""Weights are read from safetensors only: a pickle can run code, a safetensors file cannot."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from charanim.errors import ModelLoadError

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl"}


def load_safetensors(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Load a state dict from a ``.safetensors`` file; refuse anything else with a clear error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = Path(path)
    if file.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelLoadError(
            f"'{file}' is a pickle checkpoint; charanim loads only .safetensors weights "
            "(convert it once with safetensors.torch.save_file in a trusted environment)."
        )
    if not file.is_file():
        raise ModelLoadError(f"Weights file '{file}' does not exist.")
    try:
        return load_file(str(file), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"'{file}' is not a valid safetensors file ({exc}).") from None


def save_safetensors(
    state: dict[str, torch.Tensor], path: str | os.PathLike[str], metadata: dict[str, str] | None = None
):
    """Write a state dict atomically (contiguous CPU copies, as safetensors requires)."""
    from safetensors.torch import save_file

    from charanim.io.atomic import atomic_output

    tensors = {key: value.detach().to("cpu").contiguous() for key, value in state.items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
