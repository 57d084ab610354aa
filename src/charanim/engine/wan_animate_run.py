"""``WanAnimateRun``: the pipeline for Wan-Animate backbones.

It takes what :class:`~charanim.engine.pipeline.AnimatePipeline` takes (the prepared
pose condition, plus the face crops and background the backbone adds) and runs
diffusers' ``WanAnimatePipeline`` on them, so charanim's options, progress, outputs and
metrics are the same for every family while the denoising stays exactly the released
model's. ``--window`` is the segment length (frames per denoising pass, 4k+1; the
model's default is 77) and ``--overlap`` the previous-segment frames each segment
continues from (1 or 5, as Wan-Animate was trained).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from charanim.conditioning import Condition, Conditioner, OutputSpec
from charanim.engine.pipeline import AnimateResult, SamplingSettings, StepCallback
from charanim.engine.windows import Window, colour_drift
from charanim.errors import IncompatibleError, InvalidOptionError
from charanim.io.pixels import to_pixels, to_uint8
from charanim.models.wan_animate import SEGMENT_CONTEXT, WanAnimateBackbone
from charanim.pose.render import render_pose_sequence


def plan_segments(frames: int, segment: int, context: int) -> list[Window]:
    """Wan-Animate's segments: each ``segment`` frames long, each after the first starting
    ``context`` frames before the previous one ended (the last may run past the clip)."""
    step = segment - context
    windows, start = [Window(0, 0, segment, 0)], step
    while start + context < frames:
        windows.append(Window(len(windows), start, segment, context))
        start += step
    return windows


class WanAnimateRun:
    def __init__(self, backbone: WanAnimateBackbone, conditioners: list[Conditioner]):
        names = [c.name for c in conditioners]
        if names != ["pose"]:
            raise IncompatibleError(
                f"Wan-Animate takes the pose conditioner alone (got {'+'.join(names) or 'none'}); "
                "the face crops are made from the driving video for you."
            )
        self.backbone = backbone
        self.conditioners = list(conditioners)
        self.injector = None
        self._scheduler_config = dict(backbone.pipe.scheduler.config)

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
        backbone, pipe = self.backbone, self.backbone.pipe
        settings = self._settings(settings, spec)
        started = time.perf_counter()
        by_name = {c.conditioner: c for c in conditions}
        pose, face = by_name["pose"], by_name["face"]
        background = by_name.get("background")
        segments = plan_segments(spec.frames, settings.window, settings.overlap)

        if background is None:
            pose_maps = pose.video  # retargeted to the reference
        else:  # the character takes the driver's place: the driver's own skeleton
            maps = render_pose_sequence(
                pose.meta["driving_keypoints"], pose.meta["body_format"], (spec.width, spec.height)
            )
            pose_maps = to_pixels(maps)
        replace_inputs = {}
        if background is not None:
            replace_inputs = {
                "background_video": _images(background.video),
                "mask_video": _images(background.valid * 2 - 1),
            }
        # each run from the model's own scheduler, with this run's shift (no state carried over)
        pipe.scheduler = type(pipe.scheduler).from_config(
            self._scheduler_config, flow_shift=settings.flow_shift
        )
        # the text encoder runs once, then leaves the GPU (UMT5-XXL is 11 GB in bf16)
        text = backbone.text.encode([prompt])
        null_text = backbone.text.encode([negative_prompt]) if settings.guidance > 1 else None
        if not backbone.offloaded:
            backbone.text.release()
        progress = _Progress(segments, settings.steps, callback)
        output = pipe(
            image=_images(reference[:, None])[0],
            pose_video=_images(pose_maps),
            face_video=_images(face.video),
            prompt_embeds=text,
            negative_prompt_embeds=null_text,
            height=spec.height,
            width=spec.width,
            segment_frame_length=settings.window,
            num_inference_steps=settings.steps,
            mode="replace" if background is not None else "animate",
            prev_segment_conditioning_frames=settings.overlap,
            guidance_scale=settings.guidance,
            generator=generator,
            output_type="np",
            callback_on_step_end=progress,
            **replace_inputs,
        ).frames[0]
        frames = (np.clip(output, 0, 1) * 255).round().astype(np.uint8)[: spec.frames]
        seconds = {"total": time.perf_counter() - started}
        return AnimateResult(frames, spec.fps, segments, settings, colour_drift(frames, segments), seconds)

    def _settings(self, settings: SamplingSettings | None, spec: OutputSpec) -> SamplingSettings:
        settings = (settings or SamplingSettings()).resolved(self.backbone)
        if settings.sampler != "unipc":
            raise InvalidOptionError(
                f"Wan-Animate samples with its own UniPC scheduler; --sampler {settings.sampler} is not available."
            )
        if settings.strength != 1.0:
            raise InvalidOptionError("Wan-Animate always starts from pure noise; leave --strength at 1.")
        if settings.restore_detail:
            raise InvalidOptionError(
                "Wan-Animate decodes in its own pipeline; --restore-detail is not available."
            )
        if settings.scene != "generate":
            raise InvalidOptionError(
                f"Wan-Animate draws the whole frame; --scene {settings.scene} is not available."
            )
        if settings.overlap not in SEGMENT_CONTEXT:
            raise InvalidOptionError(
                f"--overlap {settings.overlap}: Wan-Animate continues each segment from 1 or 5 frames."
            )
        if settings.window < 5 or (settings.window - 1) % 4:
            raise InvalidOptionError(
                f"--window {settings.window}: Wan-Animate segments are 4k+1 frames (77, 41, 9...)."
            )
        if spec.frames <= settings.overlap:
            raise InvalidOptionError(
                f"The driving clip gives {spec.frames} frame(s); Wan-Animate needs more than --overlap ({settings.overlap})."
            )
        # a clip shorter than a segment is denoised as one shorter segment, not padded to 77
        shortest = max(5, ((spec.frames - 1 + 3) // 4) * 4 + 1)
        return replace(settings, window=min(settings.window, shortest), colour_correction="none")


def _images(video: torch.Tensor) -> list[Image.Image]:
    """``float [C, F, H, W]`` in [-1, 1] -> RGB PIL frames (grey for one channel)."""
    array = to_uint8(video)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return [Image.fromarray(frame) for frame in array]


class _Progress:
    """diffusers' ``callback_on_step_end`` -> charanim's per-window step callback."""

    def __init__(self, segments: list[Window], steps: int, callback: StepCallback | None):
        self.segments, self.steps, self.callback, self.calls = segments, steps, callback, 0

    def __call__(self, pipe, step: int, timestep, tensors: dict) -> dict:
        if self.callback is not None:
            segment = self.segments[min(self.calls // self.steps, len(self.segments) - 1)]
            self.callback(segment, step, self.steps, tensors["latents"])
        self.calls += 1
        return {}
