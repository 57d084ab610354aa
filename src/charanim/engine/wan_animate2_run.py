"""``WanAnimate2Run``: the pipeline for Wan-Animate-2 backbones.

The ``rgb`` condition (driving frames at the output size and fps) goes to the released
modular blocks as the driving video; ``--window`` is the segment length (81 by
default) and ``--overlap`` the frames each segment continues from. The blocks' own
per-segment progress bar is replaced for the run by one that feeds charanim's step
callback (the blocks take no step callback).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import replace

import numpy as np
import torch

from charanim.conditioning import Condition, Conditioner, OutputSpec
from charanim.engine.pipeline import AnimateResult, SamplingSettings, StepCallback
from charanim.engine.wan_animate_run import _images, plan_segments
from charanim.engine.windows import colour_drift
from charanim.errors import IncompatibleError, InvalidOptionError
from charanim.models.wan_animate2 import WanAnimate2Backbone


class WanAnimate2Run:
    def __init__(self, backbone: WanAnimate2Backbone, conditioners: list[Conditioner]):
        names = [c.name for c in conditioners]
        if names != ["rgb"]:
            raise IncompatibleError(
                f"Wan-Animate-2 takes the rgb conditioner alone (got {'+'.join(names) or 'none'})."
            )
        self.backbone, self.conditioners, self.injector = backbone, list(conditioners), None

    @torch.no_grad()
    def __call__(
        self,
        reference: torch.Tensor,
        conditions: list[Condition],
        spec: OutputSpec,
        prompt: str = "",
        negative_prompt: str = "",
        settings: SamplingSettings | None = None,
        generator: torch.Generator | None = None,
        callback: StepCallback | None = None,
    ) -> AnimateResult:
        from diffusers import ClassifierFreeGuidance

        backbone, pipe = self.backbone, self.backbone.pipe
        settings = self._settings(settings, spec)
        started = time.perf_counter()
        driving = next(c for c in conditions if c.conditioner == "rgb")
        segments = plan_segments(spec.frames, settings.window, settings.overlap)
        pipe.update_components(guider=ClassifierFreeGuidance(guidance_scale=settings.guidance))
        with warnings.catch_warnings(), _segment_progress(segments, settings.steps, callback):
            # off CUDA, flex attention runs unfused; that is expected, not something to act on
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            output = pipe(
                prompt=prompt,
                negative_prompt=negative_prompt,
                image=_images(reference[:, None])[0],
                driving_video=_images(driving.video),
                fps=spec.fps,
                height=spec.height,
                width=spec.width,
                segment_frame_length=settings.window,
                prev_segment_conditioning_frames=settings.overlap,
                num_inference_steps=settings.steps,
                max_sequence_length=backbone.transformer.config.text_len,
                generator=generator,
                output_type="np",
                output="videos",
            )
        video = np.asarray(output)[0]
        if video.shape[1:3] != (spec.height, spec.width):
            raise InvalidOptionError(
                f"Wan-Animate-2 resolved the size to {video.shape[2]}x{video.shape[1]}; "
                f"pass a --size that is a multiple of {backbone.size_multiple} with the reference's aspect."
            )
        frames = (np.clip(video, 0, 1) * 255).round().astype(np.uint8)[: spec.frames]
        seconds = {"total": time.perf_counter() - started}
        return AnimateResult(frames, spec.fps, segments, settings, colour_drift(frames, segments), seconds)

    def _settings(self, settings: SamplingSettings | None, spec: OutputSpec) -> SamplingSettings:
        settings = (settings or SamplingSettings()).resolved(self.backbone)
        own = self.backbone.config.sampler
        if settings.sampler != own.name or settings.flow_shift != own.flow_shift:
            raise InvalidOptionError(
                "Wan-Animate-2 samples with its own scheduler; --sampler and --flow-shift cannot change it."
            )
        if settings.strength != 1.0:
            raise InvalidOptionError("Wan-Animate-2 always starts from pure noise; leave --strength at 1.")
        if settings.restore_detail:
            raise InvalidOptionError(
                "Wan-Animate-2 decodes in its own pipeline; --restore-detail is not available."
            )
        if settings.scene != "generate":
            raise InvalidOptionError(
                f"Wan-Animate-2 draws the whole frame; --scene {settings.scene} is not available."
            )
        if settings.window < 5 or (settings.window - 1) % 4:
            raise InvalidOptionError(
                f"--window {settings.window}: Wan-Animate-2 segments are 4k+1 frames (81, 41, 9...)."
            )
        if not 1 <= settings.overlap < settings.window:
            raise InvalidOptionError(f"--overlap {settings.overlap}: give 1 to {settings.window - 1} frames.")
        if spec.frames <= settings.overlap:
            raise InvalidOptionError(
                f"The driving clip gives {spec.frames} frame(s); Wan-Animate-2 needs more than --overlap ({settings.overlap})."
            )
        if self.backbone.distilled and settings.guidance != 1.0:
            raise InvalidOptionError(
                "The distilled Wan-Animate-2 samples without guidance: leave --guidance at 1."
            )
        shortest = max(5, ((spec.frames - 1 + 3) // 4) * 4 + 1)
        return replace(settings, window=min(settings.window, shortest), colour_correction="none")


@contextlib.contextmanager
def _segment_progress(segments, steps: int, callback: StepCallback | None):
    """Swap the denoise module's tqdm for a counter that calls ``callback``."""
    from diffusers.modular_pipelines.wan_animate_2 import denoise

    calls = {"segment": 0}

    class Counter:
        def __init__(self, total=None, desc=None, **_):
            self.index, self.done = min(calls["segment"], len(segments) - 1), 0
            calls["segment"] += 1

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n: int = 1):
            self.done += n
            if callback is not None:
                callback(segments[self.index], self.done - 1, steps, None)

    original = denoise.tqdm
    denoise.tqdm = Counter
    try:
        yield
    finally:
        denoise.tqdm = original
