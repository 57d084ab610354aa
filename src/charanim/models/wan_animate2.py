"""Wan-Animate-2 (diffusers' modular ``WanAnimate2Blocks``) as a charanim backbone.

Wan-Animate-2 is driven end to end by the RGB driving video, as DreamActor-M2's second
stage is: the driving frames are encoded into a key/value cache the generation attends
to. charanim's ``rgb`` conditioner prepares those frames (resampled to the output fps,
fitted to the output size, the background optionally removed with
``--driving-background``), and the released blocks denoise them segment by segment.
The distilled checkpoint (``WanAnimate2DistilledModularPipeline``, Lite) samples in 10
steps without classifier-free guidance.
"""

from __future__ import annotations

from pathlib import Path

import torch

from charanim.errors import ModelLoadError
from charanim.models.autoencoder import WanAutoencoder
from charanim.models.backbones import BackboneFamily, PipelineBackbone
from charanim.models.config import ModelConfig, SamplerDefaults, read_model_config
from charanim.models.local_components import index_class, load_components, read_index
from charanim.models.text import TransformersTextEncoder

PIPELINES = {
    "WanAnimate2ModularPipeline": ("WanAnimate2Blocks", 40, 3.0),
    "WanAnimate2DistilledModularPipeline": ("WanAnimate2DistilledBlocks", 10, 1.0),
}
REQUIRED = ("transformer", "vae", "text_encoder", "tokenizer", "image_encoder", "scheduler")


def default_config(pipeline_class: str, scheduler) -> ModelConfig:
    _, steps, guidance = PIPELINES[pipeline_class]
    config = scheduler.config
    shift = float(getattr(config, "shift", None) or getattr(config, "flow_shift", None) or 1.0)
    sampler = "unipc" if "UniPC" in type(scheduler).__name__ else "euler"
    return ModelConfig(
        backbone=WanAnimate2Family.name,
        layout="spatial",
        conditioners=["rgb"],
        width=640,
        height=800,
        fps=24.0,
        window_frames=81,
        window_overlap=1,
        reference_timestep_zero=False,
        sampler=SamplerDefaults(
            name=sampler, steps=steps, flow_shift=shift, guidance=guidance, motion_guidance=1.0
        ),
    )


class WanAnimate2Backbone(PipelineBackbone):
    family = "wan-animate-2"
    title = "Wan-Animate-2"
    driven_by = "rgb"  # the driving video itself, encoded into its reference cache

    def __init__(self, *args, distilled: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.distilled = distilled

    @property
    def pipeline_class(self):
        from charanim.engine.wan_animate2_run import WanAnimate2Run

        return WanAnimate2Run


class WanAnimate2Family(BackboneFamily):
    name = "wan-animate-2"
    description = "Wan-Animate-2 modular diffusers directories (full and distilled): RGB-driven"

    @classmethod
    def can_load(cls, path: Path) -> bool:
        return index_class(path) in PIPELINES

    @classmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> WanAnimate2Backbone:
        import diffusers.modular_pipelines as modular

        pipeline_class = read_index(path)["_class_name"]
        components = load_components(path, dtype)
        missing = [name for name in REQUIRED if name not in components]
        if missing:
            raise ModelLoadError(f"'{path}' lacks the component folder(s) {', '.join(missing)}.")
        blocks = getattr(modular, PIPELINES[pipeline_class][0])()
        pipe = blocks.init_pipeline()
        pipe.update_components(**components)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)  # charanim reports progress itself
        config = read_model_config(path) or default_config(pipeline_class, pipe.scheduler)
        pipe.transformer.eval().requires_grad_(False)
        text = TransformersTextEncoder(pipe.tokenizer, pipe.text_encoder, 512, device, dtype)
        return WanAnimate2Backbone(
            config, pipe.transformer, WanAutoencoder(pipe.vae), text, path, device, dtype,
            pipe=pipe, distilled="Distilled" in pipeline_class,
        )  # fmt: skip
