"""``charanim.json``: what a model directory says about itself (format, layout, defaults)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charanim.errors import ModelLoadError
from charanim.io.atomic import write_text_atomic

CONFIG_NAME = "charanim.json"
FORMAT = "charanim-model"
FORMAT_VERSION = 1
#: where a model's flow starts (ModelConfig.flow_source)
FLOW_SOURCES = ("noise", "warp")
#: what a model's reference warp shows where a limb moved away (ModelConfig.warp_behind)
WARP_BEHIND = ("reference", "filled")


@dataclass
class SamplerDefaults:
    name: str = "euler"
    steps: int = 10
    flow_shift: float = 1.0
    #: 1: start from pure noise; lower: from the reference held still, noised part-way
    strength: float = 1.0
    #: > 0: add back the reference's detail the autoencoder lost where a frame did not
    #: change, up to this change ([-1, 1] units; :mod:`charanim.engine.detail`)
    restore_detail: float = 0.0
    #: with strength < 1, what is noised part-way: ``still`` (the reference held still) or
    #: ``warp`` (the reference moved by the motion condition, for models with
    #: ``reference_warp_channels``; then the detail restored is the moved reference's)
    start: str = "still"
    #: ``keep``: the reference's own scene where the output still shows it (a still camera;
    #: conditions that say which pixels are the reference's character: rgb;
    #: :mod:`charanim.engine.scene`); ``generate``: the model draws the whole frame
    scene: str = "generate"
    guidance: float = 1.0
    motion_guidance: float = 1.0
    #: guidance per conditioner name, used when a run uses that conditioner and does not
    #: set its own (charanim-tiny: its audio-face adapter wants 3)
    conditioner_guidance: dict[str, float] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Defaults and facts a model carries; CLI options override the defaults per run.

    ``conditioners`` lists the conditioners the model was trained with (the first is the
    default); ``window_frames`` is how many frames one denoising pass covers (longer
    clips are cut into overlapping windows); ``reference_timestep_zero`` gives reference
    tokens timestep 0 through the per-token timestep input; ``reference_channels``: the
    transformer also takes the reference latents at every token's own position (extra
    input channels, after the masks), so copying the reference's background and colours
    need not go through attention; ``reference_motion_channels``: likewise the reference's
    own motion signal (its pose map) at every position, so each target token can compare
    where a limb was with where it is going; ``reference_warp_channels``: the reference's
    pixels moved bone by bone to each frame's skeleton at every target position
    (``engine.reference_warp``), so the model corrects a warp instead of drawing each
    limb anew; ``warp_behind``: what that warp shows where a limb moved away — the
    ``reference`` as it is (the limb's ghost) or ``filled`` from the pixels around
    (``engine.reference_warp``); ``flow_source``: what the model's flow starts from at σ = 1 — ``noise``
    (Gaussian, as every diffusion model) or ``warp`` (the reference moved by the motion
    condition, encoded: a flow from that warp to the target, trained to correct it, so
    the model's output is anchored at its warp rather than drawn from noise; models with
    ``reference_warp_channels``); ``motion_space``: how the in-context motion video
    (pose maps, driving frames) reaches the latent grid — ``latent``, encoded by the
    autoencoder like any frame, or ``pixels``, its pixels folded space-to-depth onto the
    latent grid (3·s² channels for a spatial factor s), so thin limbs arrive exactly and
    no autoencoder pass is spent on them; ``conditioner_options``: the settings its
    conditioners were trained with, which every run builds them with.
    """

    backbone: str
    layout: str = "spatial"
    conditioners: list[str] = field(default_factory=list)
    width: int = 64
    height: int = 64
    fps: float = 8.0
    window_frames: int = 16
    window_overlap: int = 4
    reference_timestep_zero: bool = True
    reference_channels: bool = False
    reference_motion_channels: bool = False
    reference_warp_channels: bool = False
    flow_source: str = "noise"
    warp_behind: str = "reference"
    motion_space: str = "latent"
    #: per conditioner, the settings it was trained with (``{"pose": {"limb_width": 3}}``)
    conditioner_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    sampler: SamplerDefaults = field(default_factory=SamplerDefaults)
    text_encoder: dict[str, Any] | None = None
    #: the settings of the model's ``refiner/`` (``charanim.models.refiner.RefinerSpec``),
    #: None when it has none
    refiner: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "charanim.json") -> ModelConfig:
        data = dict(data)
        if data.pop("format", FORMAT) != FORMAT:
            raise ModelLoadError(f"{source} is not a charanim model config.")
        version = data.pop("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ModelLoadError(
                f"{source} has format version {version}; this charanim reads up to {FORMAT_VERSION}. Upgrade charanim."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelLoadError(f"{source} has unknown keys: {', '.join(unknown)}.")
        sampler = SamplerDefaults(**data.pop("sampler", {}))
        try:
            return cls(sampler=sampler, **data)
        except TypeError as exc:
            raise ModelLoadError(f"{source} is invalid ({exc}).") from None


def read_model_config(directory: Path) -> ModelConfig | None:
    path = directory / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"'{path}' is not valid JSON ({exc}).") from None
    return ModelConfig.from_json(data, str(path))


def write_model_config(directory: Path, config: ModelConfig) -> None:
    write_text_atomic(directory / CONFIG_NAME, json.dumps(config.to_json(), indent=2) + "\n")
