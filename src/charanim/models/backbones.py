"""Backbones: a loaded model family behind one interface the pipeline denoises with.

A :class:`BackboneFamily` (registered through ``charanim_register_backbones``)
recognises a model directory and loads it, from local files only, into a
:class:`Backbone`: a diffusers ``WanTransformer3DModel``, a video autoencoder, a
prompt encoder, and the adapters of the conditioners it was trained with. Families
differ in how the in-context sequence maps onto the transformer's input channels
(:meth:`Backbone.assemble`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from charanim.conditioning import Conditioner, InjectionSite
from charanim.engine.injection import BackboneDims, Injector, build_adapter, dims_of
from charanim.engine.layout import Packed, get_layout
from charanim.errors import IncompatibleError, ModelLoadError, UnknownNameError
from charanim.models.autoencoder import VideoAutoencoder
from charanim.models.config import ModelConfig
from charanim.models.text import TextEncoder
from charanim.models.weights import load_safetensors

ADAPTER_FOLDER = "conditioners"


class Backbone(ABC):
    """A loaded model, ready to denoise packed in-context sequences."""

    family: ClassVar[str]

    def __init__(
        self,
        config: ModelConfig,
        transformer,
        autoencoder: VideoAutoencoder,
        text: TextEncoder,
        path: Path | None,
        device: torch.device,
        dtype: torch.dtype,
    ):
        self.config = config
        self.transformer = transformer
        self.autoencoder = autoencoder
        self.text = text
        self.path = path
        self.device = device
        self.dtype = dtype
        self.layout = get_layout(config.layout)
        self.adapters: dict[str, tuple[InjectionSite, torch.nn.Module]] = {}
        self._injector: Injector | None = None
        self.loras: dict[str, float] = {}
        #: a pixel-space refiner for finished frames (``charanim.engine.refine``) and its
        #: settings, for models that ship one
        self.refiner = None
        self.refiner_spec = None
        #: set when offloading hooks manage where the weights live
        self.offloaded = False
        #: memory and speed settings applied at load (``--offload``, ``--cache``...), for summaries
        self.runtime_options: list[str] = []

    def place(self, device: torch.device) -> None:
        """Compute on ``device`` while offloading hooks decide where the weights live."""
        self.device = device
        if hasattr(self.text, "device"):
            self.text.device = device

    # ---------------------------------------------------------------- geometry

    @property
    def patch_size(self) -> tuple[int, int, int]:
        return tuple(self.transformer.config.patch_size)

    @property
    def dims(self) -> BackboneDims:
        return dims_of(self.transformer)

    @property
    def size_multiple(self) -> int:
        """Output width and height must be multiples of this (VAE factor x patch)."""
        _, ph, pw = self.patch_size
        return self.autoencoder.spatial_factor * max(ph, pw)

    def valid_frames(self, frames: int) -> int:
        """The smallest frame count ≥ ``frames`` the model denoises: one the autoencoder
        accepts and, for a per-frame autoencoder, a multiple of the temporal patch."""
        frames = self.autoencoder.valid_frames(frames)
        patch = self.patch_size[0]
        if self.autoencoder.temporal_factor == 1 and frames % patch:
            frames += patch - frames % patch
        return frames

    @property
    def pipeline_class(self):
        """What denoises with this backbone: charanim's in-context pipeline unless the
        family brings its own (Wan-Animate)."""
        from charanim.engine.pipeline import AnimatePipeline

        return AnimatePipeline

    def modes(self) -> tuple[str, ...]:
        """Generation modes (``--mode``): ``animate``, and ``replace`` where supported."""
        return ("animate",)

    def family_conditions(self, driving, conditions, spec, mode: str, mask) -> list:
        """Inputs this family needs beyond the conditioners' (face crops, a background);
        none for in-context backbones."""
        self.check_mode(mode, mask)
        return []

    def check_mode(self, mode: str, mask) -> None:
        if mode not in self.modes():
            raise IncompatibleError(
                f"--mode {mode} is not supported by {self.family} models (modes: {', '.join(self.modes())}); "
                "replace mode needs a Wan-Animate model."
            )
        if mask is not None and mode != "replace":
            raise IncompatibleError("--mask is used only with --mode replace.")

    # ---------------------------------------------------------------- inputs

    @abstractmethod
    def assemble(self, packed: Packed) -> torch.Tensor:
        """The transformer's ``hidden_states`` for a packed sequence (channel order is
        the family's)."""

    @property
    def motion_channels(self) -> int:
        """Channels of the in-context motion signal on the latent grid."""
        return motion_channels(self.autoencoder, self.config.motion_space)

    def encode_motion(self, video: torch.Tensor) -> torch.Tensor:
        """An in-context motion video ``[B, 3, F, H, W]`` in [-1, 1] (pose maps, driving
        frames) on the latent grid, as the model's ``motion_space`` says."""
        if self.config.motion_space == "pixels":
            return space_to_depth(video, self.autoencoder.spatial_factor)
        return self.autoencoder.encode(video)

    def reference_condition(self, reference_latents: torch.Tensor, reference_motion: torch.Tensor | None):
        """What the condition channels hold at the reference's place in the layout."""
        return reference_motion

    def pack(
        self, reference, target, motion=None, motion_valid=None, reference_motion=None, warp=None
    ) -> Packed:
        """The in-context sequence, as training and sampling both build it. ``motion=None``
        is the dropped motion condition (classifier-free guidance, condition dropout).
        ``warp`` (models with ``reference_warp_channels``): ``(still, moved)``, the
        reference's pixels ``[B, Cm, 1, h, w]`` and the reference warped to each frame's
        skeleton ``[B, Cm, F, h, w]``, both through :meth:`encode_motion`; without the
        motion condition the reference stands still."""
        dropped = motion is None
        if dropped:
            batch, _, frames, height, width = target.shape
            motion = target.new_zeros(batch, self.motion_channels, frames, height, width)
            motion_valid = target.new_zeros(batch, 1, frames, height, width)
            reference_motion = None
        packed = self.layout.pack(
            reference, target, motion, motion_valid, self.reference_condition(reference, reference_motion)
        )
        if warp is not None:
            still, moved = warp
            if dropped:
                moved = still.expand(-1, -1, target.shape[2], -1, -1)
            packed.warp = self.layout.pack(still, moved).latents
        return packed

    def image_embeds(self, reference_pixels: torch.Tensor) -> torch.Tensor | None:
        """Extra image tokens some families take (Wan2.1's CLIP embedding); None if not."""
        return None

    def velocity(self, hidden, timestep, text, image_embeds=None) -> torch.Tensor:
        """One transformer evaluation: the predicted velocity ``ε - x0``."""
        return self.transformer(
            hidden_states=hidden.to(self.dtype),
            timestep=timestep,
            encoder_hidden_states=text,
            encoder_hidden_states_image=image_embeds,
            return_dict=False,
        )[0]

    # ---------------------------------------------------------------- conditioners

    def check_conditioner(self, conditioner: type[Conditioner]) -> str | None:
        """None if the model can use ``conditioner``; otherwise a warning to show.

        Raises when it cannot work at all (an adapter-based conditioner without trained
        adapter weights would add exactly nothing).
        """
        if conditioner.site is not InjectionSite.IN_CONTEXT:
            return None
        if self.config.conditioners and conditioner.name not in self.config.conditioners:
            trained = ", ".join(self.config.conditioners)
            return (
                f"model was trained with conditioner(s) {trained}, not '{conditioner.name}'; "
                "expect the motion not to be followed"
            )
        return None

    @property
    def injector(self) -> Injector | None:
        """The hooks feeding the attached adapters (None when none is attached)."""
        return self._injector

    def attach(self, conditioners: list[type[Conditioner]]) -> Injector | None:
        """Load the adapters of the non-in-context conditioners and hook them into the
        transformer, replacing whatever a previous call attached (one pipeline per
        backbone at a time). Returns the injector, or None if nothing needs one."""
        if self._injector is not None:
            self._injector.remove()
            self._injector = None
        wanted = {}
        for conditioner in conditioners:
            if conditioner.site is InjectionSite.IN_CONTEXT:
                continue
            if conditioner.name not in self.adapters:
                self.adapters[conditioner.name] = (conditioner.site, self._load_adapter(conditioner))
            wanted[conditioner.name] = self.adapters[conditioner.name]
        if wanted:
            self._injector = Injector(self.transformer, wanted)
        return self._injector

    def _load_adapter(self, conditioner: type[Conditioner]) -> torch.nn.Module:
        adapter = build_adapter(
            conditioner.site,
            self.dims,
            channels=self.autoencoder.channels if conditioner.channels == 3 else conditioner.channels,
            feature_dim=conditioner.feature_dim or 0,
        )
        weights = (
            None if self.path is None else self.path / ADAPTER_FOLDER / f"{conditioner.name}.safetensors"
        )
        if weights is None or not weights.is_file():
            raise IncompatibleError(
                f"Model '{self.path}' has no trained weights for conditioner '{conditioner.name}' "
                f"(trained with: {', '.join(self.config.conditioners) or 'none recorded'})."
            )
        adapter.load_state_dict(load_safetensors(weights))
        return adapter.to(self.device, self.dtype).eval().requires_grad_(False)

    def load_lora(self, path: Path, name: str | None = None, scale: float = 1.0) -> str:
        """Load a LoRA folder (``charanim train`` output, diffusers format) into the
        transformer; its ``charanim.json`` says which conditioners it was trained with."""
        from charanim.models.config import read_model_config

        path = Path(path).expanduser()
        if not path.exists():
            raise ModelLoadError(f"LoRA '{path}' does not exist.")
        weights = path / "pytorch_lora_weights.safetensors" if path.is_dir() else path
        if weights.suffix != ".safetensors" or not weights.is_file():
            raise ModelLoadError(
                f"'{path}' holds no pytorch_lora_weights.safetensors (LoRA weights load from safetensors only)."
            )
        name = name or f"lora{len(self.loras)}"
        try:
            self.transformer.load_lora_adapter(
                str(weights.parent),
                weight_name=weights.name,
                prefix="transformer",
                adapter_name=name,
                local_files_only=True,
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"Could not load the LoRA in '{path}': {str(exc).splitlines()[0]}") from None
        self.loras[name] = scale
        self.transformer.set_adapters(list(self.loras), list(self.loras.values()))
        config = read_model_config(weights.parent)
        if config is not None and config.conditioners:
            self.config.conditioners = list(dict.fromkeys(self.config.conditioners + config.conditioners))
        return name

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.transformer.parameters())


class PipelineBackbone(Backbone):
    """A family that denoises with its own released diffusers pipeline (``self.pipe``),
    driven by one conditioner (``driven_by``) and no in-context layout; its
    ``pipeline_class`` is a thin run class with ``AnimatePipeline``'s call and result."""

    title: ClassVar[str]
    driven_by: ClassVar[str]

    def __init__(self, *args, pipe, **kwargs):
        super().__init__(*args, **kwargs)
        self.pipe = pipe

    def assemble(self, packed: Packed) -> torch.Tensor:
        raise IncompatibleError(
            f"{self.title} denoises with its own pipeline, not charanim's in-context layout; "
            "train LoRAs on a Wan image-to-video model instead."
        )

    def check_conditioner(self, conditioner):
        if conditioner.name != self.driven_by:
            raise IncompatibleError(
                f"{self.title} is driven by {self.driven_by}; it cannot use conditioner '{conditioner.name}' "
                f"(use --conditioner {self.driven_by})."
            )
        return None


def motion_channels(autoencoder: VideoAutoencoder, motion_space: str) -> int:
    """Channels of a motion video on ``autoencoder``'s latent grid: its latent channels,
    or with ``motion_space`` ``pixels`` the 3·s² of a space-to-depth fold."""
    if motion_space == "pixels":
        return 3 * autoencoder.spatial_factor**2
    return autoencoder.channels


def space_to_depth(video: torch.Tensor, factor: int) -> torch.Tensor:
    """``[B, C, F, H, W]`` -> ``[B, C·factor², F, H/factor, W/factor]``: every
    ``factor x factor`` block of pixels becomes one cell's channels (exact, invertible)."""
    if factor == 1:
        return video
    batch, channels, frames, height, width = video.shape
    rows, columns = height // factor, width // factor
    # pixel_unshuffle's channel order (channel, row in block, column in block) in one copy:
    # 4-5x faster on a CPU thread than pixel_unshuffle over frames moved first
    blocks = video.reshape(batch, channels, frames, rows, factor, columns, factor)
    return blocks.permute(0, 1, 4, 6, 2, 3, 5).reshape(batch, channels * factor**2, frames, rows, columns)


class BackboneFamily(ABC):
    """A model family: recognises and loads model directories."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def can_load(cls, path: Path) -> bool:
        """True if ``path`` is a model directory of this family."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> Backbone:
        """Load from local files only (never download)."""

    @classmethod
    def named_models(cls) -> dict[str, Path]:
        """Model names this family provides (e.g. ``charanim-tiny``) and their directories."""
        return {}

    @classmethod
    def check_named(cls, name: str, path: Path) -> None:
        """Raise a clear error if the named model's files are not installed."""
        return None


def validate_backbone_family(obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, BackboneFamily)):
        raise TypeError(f"{obj!r} is not a subclass of charanim.models.backbones.BackboneFamily")
    if not getattr(obj, "name", None):
        raise TypeError(f"backbone family {obj.__name__} does not set 'name'")


def resolve_model(spec: str | os.PathLike[str], families) -> tuple[type[BackboneFamily], Path]:
    """Map ``--model`` (a directory or a registered name) to its family and directory."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"--model must be a model directory or a model name; '{path}' is a file.")
        for entry in families:
            if entry.obj.can_load(path):
                return entry.obj, path
        kinds = "; ".join(f"{entry.obj.name}: {entry.obj.description}" for entry in families)
        raise ModelLoadError(f"'{path}' is {_what_is(path)}, not a model directory charanim loads ({kinds}).")
    named: dict[str, tuple[type[BackboneFamily], Path]] = {}
    for entry in families:
        for name, directory in entry.obj.named_models().items():
            named.setdefault(name, (entry.obj, directory))
    if text in named:
        family, directory = named[text]
        family.check_named(text, directory)
        return family, directory
    if "/" in text or text.startswith((".", "~")):
        raise ModelLoadError(
            f"Model directory '{text}' does not exist. charanim never downloads weights: "
            "download the model yourself and pass its local directory."
        )
    raise UnknownNameError("model", text, list(named))


def load_backbone(
    spec: str | os.PathLike[str], device: torch.device, dtype: torch.dtype, families=None
) -> Backbone:
    if families is None:
        from charanim.plugins import get_plugins

        families = get_plugins().backbones
    family, path = resolve_model(spec, families)
    return family.load(path, device, dtype)


def _what_is(path: Path) -> str:
    """A few words on what an unrecognised directory holds, for the error message."""
    from charanim.models.local_components import read_index

    try:
        name = read_index(path).get("_class_name")
    except (ModelLoadError, AttributeError):
        return "a diffusers directory with an unreadable model index"
    if name:
        return f"a diffusers {name} directory"
    return "a directory without charanim.json or a diffusers model index"
