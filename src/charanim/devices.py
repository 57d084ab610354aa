"""``--device`` and ``--dtype`` resolution."""

from __future__ import annotations

import torch

from charanim.errors import DeviceError, InvalidOptionError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise DeviceError(
                f"CUDA was requested but no CUDA device is available (torch {torch.__version__}, {build})."
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise InvalidOptionError(f"Unknown device '{name}'; use auto, cpu or cuda.")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name not in DTYPES:
        raise InvalidOptionError(f"Unknown dtype '{name}'; use {', '.join(DTYPES)}.")
    if DTYPES[name] is not None:
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
