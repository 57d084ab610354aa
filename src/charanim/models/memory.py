"""Memory and attention settings for the diffusers backbones, all through diffusers' own
switches: CPU offloading (whole models, leaf modules, or groups of blocks), VAE tiling
and slicing, and the attention backend.

``--max-vram`` turns a budget into settings (:func:`plan_memory`): everything on the
GPU if it fits with room for activations, else whole-model offloading if the largest
model fits, else group offloading; VAE tiling below 24 GiB, where decoding 81 frames
at 480p with the Wan VAE no longer fits beside the transformer.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch

from charanim.errors import IncompatibleError, InvalidOptionError

OFFLOAD = ("none", "model", "sequential", "group")
ATTENTION = ("auto", "sdpa", "xformers", "flash")
#: our names -> diffusers' attention backends (never a "*_hub" one: those download kernels)
DIFFUSERS_BACKENDS = {"sdpa": "native", "xformers": "xformers", "flash": "flash"}
ATTENTION_PACKAGES = {"xformers": ("xformers", "charanim[gpu]"), "flash": ("flash_attn", "flash-attn")}
GIB = 1024**3
#: share of the budget the weights may take; the rest is activations and the VAE
WEIGHT_SHARE = 0.7
TILING_BELOW_GIB = 24


@dataclass
class MemorySettings:
    offload: str = "none"
    attention: str = "auto"
    vae_tiling: bool = False
    max_vram_gb: float | None = None

    def validate(self) -> None:
        if self.offload not in OFFLOAD:
            raise InvalidOptionError(f"Unknown --offload '{self.offload}'; use one of {', '.join(OFFLOAD)}.")
        if self.attention not in ATTENTION:
            raise InvalidOptionError(
                f"Unknown --attention '{self.attention}'; use one of {', '.join(ATTENTION)}."
            )
        if self.max_vram_gb is not None and self.max_vram_gb <= 0:
            raise InvalidOptionError("--max-vram must be a positive number of GiB.")

    @property
    def offloads(self) -> bool:
        return self.offload != "none"


def plan_memory(
    component_bytes: dict[str, int], max_vram_gb: float, requested: MemorySettings
) -> MemorySettings:
    """Settings that fit ``component_bytes`` (weights per pipeline component) in the budget.
    Options the user set explicitly (not the defaults) are kept."""
    budget = max_vram_gb * GIB * WEIGHT_SHARE
    total, largest = sum(component_bytes.values()), max(component_bytes.values(), default=0)
    if total <= budget:
        offload = "none"
    elif largest <= budget:
        offload = "model"
    else:
        offload = "group"
    return MemorySettings(
        offload=requested.offload if requested.offload != "none" else offload,
        attention=requested.attention,
        vae_tiling=requested.vae_tiling or max_vram_gb < TILING_BELOW_GIB,
        max_vram_gb=max_vram_gb,
    )


def component_bytes(pipe) -> dict[str, int]:
    """Bytes of weights in each torch module of a diffusers pipeline."""
    sizes = {}
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            sizes[name] = sum(p.numel() * p.element_size() for p in component.parameters())
    return sizes


def check_attention(attention: str, device: torch.device) -> None:
    """Raise a one-line error when the attention backend cannot run here."""
    if attention not in ATTENTION:
        raise InvalidOptionError(f"Unknown --attention '{attention}'; use one of {', '.join(ATTENTION)}.")
    if attention in ATTENTION_PACKAGES:
        module, install = ATTENTION_PACKAGES[attention]
        if importlib.util.find_spec(module) is None:
            raise InvalidOptionError(
                f"--attention {attention} needs the {module} package, which is not installed "
                f"(pip install '{install}'), or use --attention sdpa."
            )
        if device.type != "cuda":
            raise InvalidOptionError(
                f"--attention {attention} runs on CUDA GPUs only; use --attention sdpa on {device.type}."
            )


def apply_memory(backbone, settings: MemorySettings, device: torch.device) -> list[str]:
    """Apply ``settings`` to a loaded backbone; returns what was done, for the run summary.

    Offloading needs the backbone loaded on the CPU (the caller loads it there) and a
    GPU to compute on.
    """
    settings.validate()
    done = []
    check_attention(settings.attention, device)
    pipe = getattr(backbone, "pipe", None)
    if settings.attention != "auto":
        for module in transformers_of(backbone):
            module.set_attention_backend(DIFFUSERS_BACKENDS[settings.attention])
        done.append(f"attention={settings.attention}")
    if settings.vae_tiling:
        vae = getattr(backbone.autoencoder, "vae", None)
        if vae is None or not hasattr(vae, "enable_tiling"):
            raise IncompatibleError(f"--vae-tiling: the {backbone.family} model's autoencoder does not tile.")
        vae.enable_tiling()
        if hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        done.append("vae_tiling")
    if settings.offloads:
        if pipe is None:
            raise IncompatibleError(
                f"--offload works on diffusers pipelines (Wan models); a {backbone.family} model is small "
                "enough to stay where it is."
            )
        if device.type == "cpu":
            raise IncompatibleError(
                f"--offload {settings.offload} moves weights between the CPU and a GPU; "
                "on the CPU everything already lives in RAM (use --device cuda)."
            )
        if settings.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif settings.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.enable_group_offload(
                onload_device=device, offload_device=torch.device("cpu"), offload_type="block_level",
                num_blocks_per_group=1, use_stream=device.type == "cuda",
            )  # fmt: skip
        backbone.place(device)
        backbone.offloaded = True  # the hooks own placement now: nothing may move modules
        done.append(f"offload={settings.offload}")
    return done


def transformers_of(backbone) -> list[torch.nn.Module]:
    pipe = getattr(backbone, "pipe", None)
    second = getattr(pipe, "transformer_2", None) if pipe is not None else None
    return [backbone.transformer] + ([second] if second is not None else [])
