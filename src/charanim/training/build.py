"""Building the model a recipe trains: from scratch, from a model directory, or a LoRA base."""

from __future__ import annotations

from pathlib import Path

import torch

from charanim.errors import CharanimError
from charanim.models.autoencoder import PixelSpace, load_autoencoder
from charanim.models.backbones import Backbone, motion_channels
from charanim.models.config import ModelConfig, SamplerDefaults
from charanim.models.text import NoTextEncoder
from charanim.training.recipe import Recipe

#: the backbones a recipe's model.backbone may name
BACKBONES = ("tiny", "wan-i2v")


def build_backbone(recipe: Recipe, device: torch.device) -> Backbone:
    spec = recipe.model
    if spec.backbone == "tiny":
        backbone = _tiny(recipe, device)
    elif spec.backbone == "wan-i2v":
        from charanim.models.wan_i2v import WanI2VFamily

        if not spec.init:
            raise CharanimError(
                "model.init must name a local Wan image-to-video diffusers directory for a wan-i2v recipe."
            )
        if spec.motion_space not in (None, "latent"):
            raise CharanimError(
                "model.motion_space: pixels is for the tiny backbone; wan-i2v encodes motion with its VAE."
            )
        if spec.reference_channels or spec.reference_motion_channels or spec.reference_warp_channels:
            raise CharanimError(
                "model.reference_channels / reference_motion_channels / reference_warp_channels are for the "
                "tiny backbone; wan-i2v "
                "already takes the reference latents through its image-condition channels."
            )
        if spec.flow_source == "warp":
            raise CharanimError(
                "model.flow_source: warp is for the tiny backbone (it needs the warp channels)."
            )
        backbone = WanI2VFamily.load(Path(spec.init), device, torch.float32)
    else:
        raise CharanimError(f"Unknown model.backbone '{spec.backbone}'; use {' or '.join(BACKBONES)}.")
    if backbone.config.flow_source == "warp" and not backbone.config.reference_warp_channels:
        raise CharanimError("model.flow_source: warp needs model.reference_warp_channels: true.")
    backbone.config.conditioners = list(recipe.conditioners)  # stage 2: pose -> rgb
    # the recipe's conditioner settings, over a warm start's for the conditioners it keeps
    kept = {**backbone.config.conditioner_options, **recipe.conditioner_options}
    backbone.config.conditioner_options = {
        name: dict(options) for name, options in kept.items() if name in recipe.conditioners
    }
    return backbone


def _tiny(recipe: Recipe, device: torch.device) -> Backbone:
    from diffusers import WanTransformer3DModel

    from charanim.models.tiny import TinyBackbone, TinyFamily, add_input_channels, tiny_transformer_config

    spec = recipe.model
    if spec.init:
        backbone = TinyFamily.load(Path(spec.init), device, torch.float32)
        if backbone.config.layout != spec.layout:
            raise CharanimError(
                f"model.init was trained with the {backbone.config.layout} layout, the recipe asks for {spec.layout}."
            )
        if spec.motion_space and spec.motion_space != backbone.config.motion_space:
            raise CharanimError(
                f"model.init reads motion in the {backbone.config.motion_space} space, the recipe asks for "
                f"{spec.motion_space}: the transformer's input channels differ, so it must be trained from scratch."
            )
        # like the transformer's shape, the channels come from the warm start; the recipe
        # can only add them (zero-initialised, appended in the order assemble() reads
        # them) to one trained without
        if spec.reference_channels and not backbone.config.reference_channels:
            if backbone.config.reference_motion_channels:
                raise CharanimError(
                    "model.init has reference_motion_channels but no reference_channels; the reference "
                    "latents' channels would have to go before them. Train this one from scratch."
                )
            add_input_channels(backbone.transformer, backbone.autoencoder.channels)
            backbone.config.reference_channels = True
        if spec.reference_motion_channels and not backbone.config.reference_motion_channels:
            add_input_channels(
                backbone.transformer, motion_channels(backbone.autoencoder, backbone.config.motion_space)
            )
            backbone.config.reference_motion_channels = True
        if spec.reference_warp_channels and not backbone.config.reference_warp_channels:
            add_input_channels(
                backbone.transformer, motion_channels(backbone.autoencoder, backbone.config.motion_space)
            )
            backbone.config.reference_warp_channels = True
        if spec.flow_source:
            backbone.config.flow_source = spec.flow_source
        if spec.warp_behind:
            backbone.config.warp_behind = spec.warp_behind
        backbone.config.sampler = sampler_defaults(recipe)
        if recipe.training.train_transformer:  # else the transformer stays init's, and so does its history
            backbone.config.provenance = {**backbone.config.provenance, "warm_start": str(spec.init)}
        return backbone
    autoencoder = load_autoencoder(spec.autoencoder) if spec.autoencoder else PixelSpace()
    motion_space = spec.motion_space or "latent"
    shape = spec.transformer
    torch.manual_seed(recipe.training.seed)
    transformer = WanTransformer3DModel(
        **tiny_transformer_config(
            latent_channels=autoencoder.channels,
            patch_size=tuple(shape.patch_size),
            num_attention_heads=shape.num_attention_heads,
            attention_head_dim=shape.attention_head_dim,
            ffn_dim=shape.ffn_dim,
            num_layers=shape.num_layers,
            text_dim=shape.text_dim,
            freq_dim=shape.freq_dim,
            rope_max_seq_len=shape.rope_max_seq_len,
            reference_channels=spec.reference_channels,
            motion_channels=motion_channels(autoencoder, motion_space),
            reference_motion_channels=spec.reference_motion_channels,
            reference_warp_channels=spec.reference_warp_channels,
        )
    )
    text = NoTextEncoder(shape.text_dim, device, torch.float32)
    if spec.text_encoder:
        from charanim.models.tiny import load_text_encoder

        text = load_text_encoder(spec.text_encoder, None, device, torch.float32)
        width = text.model.config.hidden_size
        if width != shape.text_dim:
            raise CharanimError(
                f"model.transformer.text_dim is {shape.text_dim}, the text encoder gives {width}-wide embeddings."
            )
    config = ModelConfig(
        backbone="tiny",
        text_encoder=dict(spec.text_encoder) if spec.text_encoder else None,
        layout=spec.layout,
        conditioners=list(recipe.conditioners),
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        window_frames=spec.frames,
        window_overlap=spec.window_overlap,
        reference_timestep_zero=spec.reference_timestep_zero,
        reference_channels=spec.reference_channels,
        reference_motion_channels=spec.reference_motion_channels,
        reference_warp_channels=spec.reference_warp_channels,
        flow_source=spec.flow_source or "noise",
        warp_behind=spec.warp_behind or "reference",
        motion_space=motion_space,
        sampler=sampler_defaults(recipe),
    )
    transformer.to(device)
    autoencoder.to(device)
    return TinyBackbone(config, transformer, autoencoder, text, None, device, torch.float32)


def sampler_defaults(recipe: Recipe) -> SamplerDefaults:
    """The trained model's default sampler: the one its validation samples used."""
    validation = recipe.validation
    return SamplerDefaults(
        name="euler",
        steps=validation.steps,
        flow_shift=validation.flow_shift,
        strength=validation.strength,
        restore_detail=validation.restore_detail,
        start=validation.start,
        scene=validation.scene,
        conditioner_guidance=dict(validation.conditioner_guidance),
    )


def attach_adapters(backbone: Backbone, conditioners, init: str | None) -> dict[str, torch.nn.Module]:
    """New (zero-initialised) adapters for the conditioners that need one, or the trained
    ones of a warm start (``init/conditioners/NAME.safetensors``), hooked into the
    transformer. Returns them by conditioner name."""
    from charanim.conditioning import InjectionSite
    from charanim.engine.injection import build_adapter
    from charanim.models.weights import load_safetensors

    adapters = {}
    for conditioner in conditioners:
        if conditioner.site is InjectionSite.IN_CONTEXT:
            continue
        adapter = build_adapter(
            conditioner.site,
            backbone.dims,
            channels=backbone.autoencoder.channels if conditioner.channels == 3 else conditioner.channels,
            feature_dim=conditioner.feature_dim or 0,
        )
        trained = Path(init) / "conditioners" / f"{conditioner.name}.safetensors" if init else None
        if trained is not None and trained.is_file():
            adapter.load_state_dict(load_safetensors(trained))
        adapter.to(backbone.device)
        backbone.adapters[conditioner.name] = (conditioner.site, adapter)
        adapters[conditioner.name] = adapter
    if adapters:
        backbone.attach([type(c) for c in conditioners])
    return adapters


def adapter_parameters(adapters: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Parameter]:
    """Their parameters, named as checkpoints store them (``conditioners.NAME.…``)."""
    return {
        f"conditioners.{name}.{key}": parameter
        for name, adapter in adapters.items()
        for key, parameter in adapter.named_parameters()
    }
