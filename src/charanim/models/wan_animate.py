"""Wan2.2-Animate-14B (diffusers' ``WanAnimatePipeline``) as a charanim backbone.

Wan-Animate is driven by a pose video and a video of face crops, and it has two modes:
``animate`` (the reference character performs the motion on its own background) and
``replace`` (the character takes the driving person's place in the driving video).
It denoises with its own pipeline, segment by segment (77 frames, each conditioned on
the last 1 or 5 frames of the previous segment), so this family hands diffusers the
inputs charanim prepares instead of using the in-context layout:

- the pose video is the pose conditioner's maps (our ``extract-pose`` skeleton,
  retargeted to the reference in ``animate`` mode; the driver's own skeleton in
  ``replace`` mode, where the character must stand where the driver stands);
- the face video is cropped around the driving head keypoints
  (:mod:`charanim.pose.face_crops`), where Wan-Animate's preprocessing uses dense
  face landmarks;
- in ``replace`` mode the background is the driving video and the mask (white =
  generate) is the person segmentation of the driving video (or ``--mask``), grown a
  little so the new character's outline fits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from charanim.conditioning import Condition, Driving, InjectionSite, OutputSpec
from charanim.errors import IncompatibleError, InvalidOptionError
from charanim.io.pixels import to_pixels
from charanim.models.autoencoder import WanAutoencoder
from charanim.models.backbones import BackboneFamily, PipelineBackbone
from charanim.models.config import ModelConfig, SamplerDefaults, read_model_config
from charanim.models.local_components import index_class, load_pipeline_directory
from charanim.models.text import WanPipelineTextEncoder

PIPELINE_CLASSES = ("WanAnimatePipeline",)
MODES = ("animate", "replace")
#: previous-segment frames Wan-Animate was trained to continue from
SEGMENT_CONTEXT = (1, 5)
#: pixels the replace mask grows by, so a character wider than the driver still fits
MASK_GROW = 8


def default_config(pipe) -> ModelConfig:
    shift = float(getattr(pipe.scheduler.config, "flow_shift", None) or 5.0)
    return ModelConfig(
        backbone=WanAnimateFamily.name,
        layout="spatial",
        conditioners=["pose"],
        width=832,
        height=480,
        fps=30.0,
        window_frames=77,
        window_overlap=1,
        reference_timestep_zero=False,
        sampler=SamplerDefaults(name="unipc", steps=20, flow_shift=shift, guidance=1.0, motion_guidance=1.0),
    )


class WanAnimateBackbone(PipelineBackbone):
    family = "wan-animate"
    title = "Wan-Animate"
    driven_by = "pose"  # plus the face crops, made from the driving video

    @property
    def pipeline_class(self):
        from charanim.engine.wan_animate_run import WanAnimateRun

        return WanAnimateRun

    @property
    def face_size(self) -> int:
        return int(self.transformer.config.motion_encoder_size)

    def modes(self) -> tuple[str, ...]:
        return MODES

    def family_conditions(
        self, driving: Driving, conditions: list[Condition], spec: OutputSpec, mode: str, mask: Path | None
    ) -> list[Condition]:
        """The face crops and, in replace mode, the background and its mask."""
        from charanim.pose.face_crops import crop_faces, face_boxes

        self.check_mode(mode, mask)
        pose = next(c for c in conditions if c.conditioner == "pose")
        if driving.video is None:
            raise IncompatibleError("Wan-Animate needs the driving video (for the face crops).")
        frames = driving.video.frames[: spec.frames]
        points = pose.meta["driving_source_keypoints"].copy()
        source_w, source_h = pose.meta["driving_source_size"]
        points[..., 0] *= frames.shape[2] / source_w  # keypoints are in the source's pixels,
        points[..., 1] *= frames.shape[1] / source_h  # the frames may have been decoded smaller
        crops = crop_faces(frames, face_boxes(points, pose.meta["body_format"]), self.face_size)
        extra = [Condition("face", InjectionSite.TOKENS, video=to_pixels(crops), meta={"mode": mode})]
        if mode == "replace":
            extra.append(_background(frames, spec, mask))
        return extra


def _background(frames: np.ndarray, spec: OutputSpec, mask: Path | None) -> Condition:
    """The driving video at the output size and the region to regenerate (``valid``)."""
    from charanim.io.resize import fit_frames
    from charanim.io.video import read_video
    from charanim.segmentation import person_masks

    size = (spec.width, spec.height)
    background, _ = fit_frames(frames, size, spec.fit)
    if mask is not None:
        video = read_video(mask, fps=spec.fps, max_frames=spec.frames)
        if len(video) < spec.frames:
            raise InvalidOptionError(
                f"--mask has {len(video)} frames at {spec.fps:g} fps; the driving video has {spec.frames}."
            )
        fitted, _ = fit_frames(video.frames[: spec.frames], size, spec.fit)
        region = fitted.mean(-1) > 127
    else:
        try:
            region = person_masks(background)
        except ImportError:
            raise InvalidOptionError(
                "--mode replace needs a mask: pass --mask MASK.mp4 (white = replace), or install "
                "mediapipe for person segmentation: pip install 'charanim[pose]'."
            ) from None
        if not region.any():
            raise InvalidOptionError(
                "--mode replace: no person found in the driving video to replace; pass --mask MASK.mp4."
            )
        region = torch.nn.functional.max_pool2d(  # grow by MASK_GROW pixels
            torch.from_numpy(region.astype(np.float32))[:, None], 2 * MASK_GROW + 1, 1, MASK_GROW
        )[:, 0].numpy()
    valid = torch.from_numpy(region.astype(np.float32))[None]
    return Condition("background", InjectionSite.CHANNELS, video=to_pixels(background), valid=valid)


class WanAnimateFamily(BackboneFamily):
    name = "wan-animate"
    description = (
        "Wan2.2-Animate diffusers directories (WanAnimatePipeline): pose + face, animate and replace"
    )

    @classmethod
    def can_load(cls, path: Path) -> bool:
        return index_class(path) in PIPELINE_CLASSES

    @classmethod
    def load(cls, path: Path, device: torch.device, dtype: torch.dtype) -> WanAnimateBackbone:
        from diffusers import WanAnimatePipeline

        pipe = load_pipeline_directory(WanAnimatePipeline, path, dtype)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)  # charanim shows its own progress
        pipe.transformer.eval().requires_grad_(False)
        config = read_model_config(path) or default_config(pipe)
        autoencoder = WanAutoencoder(pipe.vae)
        text = WanPipelineTextEncoder(pipe, device, dtype)
        return WanAnimateBackbone(config, pipe.transformer, autoencoder, text, path, device, dtype, pipe=pipe)
