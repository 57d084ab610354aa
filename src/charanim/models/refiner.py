"""A model's ``refiner/``: a small diffusers ``UNet2DModel`` that corrects finished frames
in pixel space where the character moved (:mod:`charanim.engine.refine` applies it,
``training.task: refiner`` trains it). Its settings — which inputs it reads, its gate —
are the model's ``charanim.json`` ``refiner`` entry, so it is run as it was trained."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from charanim.errors import ModelLoadError
from charanim.models.config import WARP_BEHIND

#: what a refiner may read per frame, each 3 channels in [-1, 1], in its spec's order:
#: the model's finished frame, the reference moved to the frame's skeleton, the frame's
#: motion condition (its pose map), the reference, and the reference's own motion condition
#: (its pose map: where its limbs stood, which the frame's map alone cannot say)
REFINER_INPUTS = ("frame", "warp", "motion", "reference", "reference_motion")
FOLDER = "refiner"


@dataclass
class RefinerSpec:
    """How a refiner was trained, so that it is run the same way."""

    inputs: tuple[str, ...] = ("frame", "warp", "motion", "reference")
    #: a change above this from the reference (any channel, [-1, 1] units) opens the gate
    tolerance: float = 0.1
    #: the gate grown by this many pixels around what moved (a limb's blurred rim)
    dilation: int = 2
    #: whether the pose map's drawn limbs open the gate too (where a limb should be, even
    #: where the model left it out); off for motion videos that are not drawings (rgb)
    motion_drawn: bool = True
    #: whether the gate also opens near the reference's own bones (the pixels its warp
    #: moves): where a limb left, the model and the warp may both keep it as it stood, a
    #: ghost no other test of the gate sees, and only an open gate lets the refiner clear it
    reference_bones: bool = False
    #: what the warp it reads shows where a limb moved away (``reference``: the limb's
    #: ghost; ``filled``: cleared, so the warp itself says the limb left; see
    #: ``ModelConfig.warp_behind``); None: the model's own warp, as its denoiser is given it
    warp_behind: str | None = None

    def __post_init__(self):
        self.inputs = tuple(self.inputs)
        unknown = [name for name in self.inputs if name not in REFINER_INPUTS]
        if unknown or not self.inputs:
            raise ValueError(
                f"refiner inputs must be some of {', '.join(REFINER_INPUTS)} (got {', '.join(self.inputs) or 'none'})"
            )
        if not self.tolerance > 0 or self.dilation < 0:
            raise ValueError("refiner tolerance must be above 0 and dilation 0 or more")
        if self.warp_behind is not None and self.warp_behind not in WARP_BEHIND:
            raise ValueError(
                f"refiner warp_behind must be one of {', '.join(WARP_BEHIND)} (got {self.warp_behind})"
            )

    def behind(self, model_warp_behind: str) -> str:
        """What the warp this refiner reads shows behind moved limbs, on a model whose own
        warp shows ``model_warp_behind``."""
        return self.warp_behind or model_warp_behind

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "inputs": list(self.inputs)}


def build_refiner(spec: RefinerSpec, widths: tuple[int, ...], layers_per_block: int = 1, seed: int = 0):
    """A new refiner: a ``UNet2DModel`` without attention (a per-frame correction is
    local), its last convolution zeroed so that it starts as no change at all."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    levels = len(widths)
    net = UNet2DModel(
        in_channels=3 * len(spec.inputs),
        out_channels=3,
        block_out_channels=tuple(widths),
        layers_per_block=layers_per_block,
        # group norm: the most groups, up to 8, that divide every width
        norm_num_groups=max(g for g in range(1, 9) if all(w % g == 0 for w in widths)),
        down_block_types=("DownBlock2D",) * levels,
        up_block_types=("UpBlock2D",) * levels,
    )
    torch.nn.init.zeros_(net.conv_out.weight)
    torch.nn.init.zeros_(net.conv_out.bias)
    return net


def load_refiner(folder: Path, spec: RefinerSpec, dtype: torch.dtype = torch.float32):
    """A ``refiner/`` folder, checked against the inputs its spec says it reads."""
    from diffusers import UNet2DModel

    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"'{folder}' is not a refiner folder (no config.json).")
    try:
        net = UNet2DModel.from_pretrained(folder, local_files_only=True, use_safetensors=True, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Could not load '{folder}': {str(exc).splitlines()[0]}") from None
    if net.config.in_channels != 3 * len(spec.inputs) or net.config.out_channels != 3:
        raise ModelLoadError(
            f"'{folder}' takes {net.config.in_channels} channels; its settings name {len(spec.inputs)} "
            f"inputs ({', '.join(spec.inputs)}: {3 * len(spec.inputs)} channels)."
        )
    return net.eval().requires_grad_(False)


def refiner_spec(config_entry: dict[str, Any] | None, source: str) -> RefinerSpec | None:
    if config_entry is None:
        return None
    try:
        return RefinerSpec(**config_entry)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{source}: its refiner settings are invalid ({exc}).") from None
