"""LoRA adapters on the transformer through peft, saved in the diffusers format.

Targets name groups of linear layers in Wan's blocks: ``ffn`` (what DreamActor-M2
adapts), ``attention`` (self- and cross-attention projections), or both. Several named
adapters can be added to one transformer (a LoRA per condition, as Meta-Animator
does); ``save_lora`` writes one adapter where diffusers' ``load_lora_weights`` reads it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from charanim.errors import InvalidOptionError
from charanim.training.recipe import LoraSpec

TARGETS = {
    "ffn": ["ffn.net.0.proj", "ffn.net.2"],
    "attention": ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0", "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0"],
}  # fmt: skip


def add_lora(transformer, spec: LoraSpec) -> dict[str, torch.nn.Parameter]:
    """Freeze the transformer, add the adapter, return its trainable parameters by name."""
    from peft import LoraConfig

    unknown = set(spec.targets) - set(TARGETS)
    if unknown or not spec.targets:
        raise InvalidOptionError(
            f"lora.targets must be a non-empty list of {', '.join(TARGETS)}; got {spec.targets}."
        )
    modules = [name for group in spec.targets for name in TARGETS[group]]
    transformer.requires_grad_(False)
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=modules,
        init_lora_weights=True,
    )
    transformer.add_adapter(config, adapter_name=spec.name)
    transformer.set_adapter(spec.name)
    return {name: p for name, p in transformer.named_parameters() if p.requires_grad}


def lora_state(transformer, name: str) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(transformer, adapter_name=name)


def save_lora(transformer, name: str, directory: Path) -> Path:
    """``directory/pytorch_lora_weights.safetensors`` in the layout diffusers' Wan pipelines load."""
    from diffusers import WanImageToVideoPipeline

    directory.mkdir(parents=True, exist_ok=True)
    WanImageToVideoPipeline.save_lora_weights(
        directory, transformer_lora_layers=lora_state(transformer, name), safe_serialization=True
    )
    return directory / "pytorch_lora_weights.safetensors"
