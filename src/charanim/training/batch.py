"""From training samples to an encoded batch: conditions prepared and augmented by the
same conditioner code that serves ``animate``, then everything in latent space."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from charanim.conditioning import Condition, Conditioner, Driving, InjectionSite, OutputSpec, Reference
from charanim.engine.reference_warp import warped_reference
from charanim.errors import IncompatibleError
from charanim.io.image import image_from_array
from charanim.io.pixels import to_pixels
from charanim.io.resize import fit_frames
from charanim.io.video import Video
from charanim.models.autoencoder import WanAutoencoder
from charanim.models.backbones import Backbone
from charanim.pose.face_region import face_masks
from charanim.training.data import TrainSample
from charanim.training.latent_cache import LatentCache
from charanim.training.objective import EncodedBatch

#: a pixel differing from the reference by more than this (0-255, any channel) moved. On
#: world pairs 80 % of pixels equal the reference's exactly; 7 % differ by 1-24 (antialiased
#: rims, shading), 13 % by more
MOTION_THRESHOLD = 24


class BatchBuilder:
    def __init__(
        self,
        backbone: Backbone,
        conditioners: list[Conditioner],
        spec: OutputSpec,
        pose_source: str,
        latent_cache: LatentCache | list[LatentCache] | None = None,
        face_masks: bool = False,
        motion_masks: bool = False,
    ):
        in_context = [c for c in conditioners if c.site is InjectionSite.IN_CONTEXT]
        if len(in_context) != 1:
            raise IncompatibleError(
                "Training takes exactly one in-context conditioner (pose or rgb), plus any channel, token "
                f"or residual ones (got {', '.join(c.name for c in conditioners) or 'none'})."
            )
        self.backbone = backbone
        self.conditioner = in_context[0]
        #: the conditioners that feed adapters (audio-face...), trained beside the transformer
        self.adapter_conditioners = [c for c in conditioners if c.site is not InjectionSite.IN_CONTEXT]
        self.spec = spec
        self.pose_source = pose_source
        #: whether batches carry the targets' face boxes (only a face_weight other than 1 reads them)
        self.face_masks = face_masks
        #: whether batches carry where targets differ from references (for motion_weight)
        self.motion_masks = motion_masks
        # A frozen per-frame autoencoder gives the same latents for a frame wherever it is
        # cropped: encode each clip and reference once, keep them in half precision.
        self.cacheable = backbone.autoencoder.temporal_factor == 1 and not isinstance(
            backbone.autoencoder, WanAutoencoder
        )
        #: one cache per manifest of the data (a sample's ``source``)
        if latent_cache is None:
            latent_cache = LatentCache()
        self.latents = list(latent_cache) if isinstance(latent_cache, list) else [latent_cache]

    def save_latents(self) -> None:
        """Write the latents encoded since the last save, each beside its manifest."""
        for cache in self.latents:
            cache.save()

    def _fit(self, frames: np.ndarray) -> np.ndarray:
        size = (self.spec.width, self.spec.height)
        if frames.shape[-2] == size[0] and frames.shape[-3] == size[1]:
            return frames
        squeeze = frames.ndim == 3
        fitted, _ = fit_frames(frames[None] if squeeze else frames, size, self.spec.fit)
        return fitted[0] if squeeze else fitted

    def condition_inputs(
        self, sample: TrainSample, source: str, from_start: bool = False
    ) -> tuple[Driving, Reference]:
        """What a conditioner is given for ``sample`` with the skeleton of ``source``
        (``target``, or the driving side's): the crop, or with ``from_start`` the clip
        from its first frame to the crop's end (see :meth:`motion_condition`)."""
        return self._driving(sample, source, from_start), Reference(
            image_from_array(sample.reference), keypoints=sample.reference_keypoints
        )

    def _driving(self, sample: TrainSample, source: str, from_start: bool) -> Driving:
        lead_in = from_start and sample.driving_from_start is not None
        if source == "target":
            keypoints = sample.target_keypoints_from_start if lead_in else sample.target_keypoints
        else:
            keypoints = sample.driving_keypoints_from_start if lead_in else sample.driving_keypoints
        frames = sample.driving_from_start if lead_in else sample.driving
        fps = self.spec.fps
        video = Video(frames, fps, fps, (frames.shape[2], frames.shape[1]), np.arange(len(frames)))
        return Driving(video=video, keypoints=keypoints, audio=sample.driving_audio)

    def motion_condition(
        self,
        sample: TrainSample,
        rng: np.random.Generator,
        pose_source: str | None = None,
        augment: bool = False,
    ) -> tuple[Condition, Driving, Reference]:
        """The in-context condition of ``sample``'s crop, prepared on the clip from its first
        frame and then cut: the reference stands where the clip starts, which is where
        the pose conditioner anchors the motion, as ``animate`` does with a driving video.
        Also returns the crop's own inputs, for the adapter conditioners."""
        source = pose_source or self.pose_source
        if source == "mixed":  # one draw: the lead-in and the crop use the same skeleton
            source = "target" if rng.random() < 0.5 else "driving"
        lead_in, reference = self.condition_inputs(sample, source, from_start=True)
        frames = lead_in.video.frames.shape[0]
        condition = self.conditioner.prepare(lead_in, reference, replace(self.spec, frames=frames))
        if augment:
            generator = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
            condition = self.conditioner.augment(condition, generator)
        condition = condition.cut(frames - self.spec.frames)
        return condition, self._driving(sample, source, from_start=False), reference

    @torch.no_grad()
    def build(
        self, samples: list[TrainSample], rngs: list[np.random.Generator], augment: bool
    ) -> EncodedBatch:
        backbone, autoencoder = self.backbone, self.backbone.autoencoder
        device = backbone.device
        motions, valids, references, conditions = [], [], [], []
        extras: dict[str, list] = {c.name: [] for c in self.adapter_conditioners}
        for sample, rng in zip(samples, rngs, strict=True):
            condition, driving, reference = self.motion_condition(sample, rng, augment=augment)
            if augment:
                generator = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
            for conditioner in self.adapter_conditioners:
                extra = conditioner.prepare(driving, reference, self.spec)
                if augment:
                    extra = conditioner.augment(extra, generator)
                extras[conditioner.name].append(extra)
            motions.append(condition.video)
            valids.append(
                condition.valid if condition.valid is not None else torch.ones_like(condition.video[:1])
            )
            references.append(condition.reference)
            conditions.append(condition)
        target, reference = self._clip_latents(samples)
        motion = torch.stack(motions).to(device)
        valid = torch.stack(valids).to(device)
        reference_motion = None
        if any(r is not None for r in references):
            reference_motion = torch.stack(
                [r if r is not None else torch.zeros_like(motions[0][:, :1]) for r in references]
            ).to(device)
        prompts = [s.prompt for s in samples]
        reference_pixels = torch.stack([to_pixels(self._fit(s.reference))[:, None] for s in samples]).to(
            device
        )
        warp, source = None, None
        if backbone.config.reference_warp_channels:
            moved = torch.stack([
                warped_reference(c, r[:, 0], self.spec.frames, backbone.config.warp_behind)
                for c, r in zip(conditions, reference_pixels, strict=True)
            ])  # fmt: skip
            warp = (backbone.encode_motion(reference_pixels), backbone.encode_motion(moved))
            if backbone.config.flow_source == "warp":  # the flow's start: the warp, as latents
                source = autoencoder.encode(moved)
        return EncodedBatch(
            image_embeds=backbone.image_embeds(reference_pixels),
            target=target,
            reference=reference,
            motion=backbone.encode_motion(motion),
            motion_valid=autoencoder.downsample_mask(valid),
            reference_motion=None if reference_motion is None else backbone.encode_motion(reference_motion),
            warp=warp,
            source=source,
            text=backbone.text.encode(prompts),
            null_text=backbone.text.encode([""] * len(samples)),
            target_mask=self._target_mask(samples),
            face_mask=self._face_mask(samples) if self.face_masks else None,
            motion_mask=self._motion_mask(samples) if self.motion_masks else None,
            adapter_sites={c.name: c.site for c in self.adapter_conditioners},
            adapter_features={
                name: torch.stack([c.features for c in made]).to(device)
                for name, made in extras.items() if made[0].features is not None
            },
            adapter_videos={
                name: torch.stack([c.video for c in made]).to(device)
                for name, made in extras.items() if made[0].video is not None
            },
        )  # fmt: skip

    def _target_mask(self, samples: list[TrainSample]) -> torch.Tensor:
        """The targets' character masks on the latent grid ``[B, 1, F, h, w]`` (a latent is
        foreground if any pixel under it is)."""
        return self._on_latent_grid([s.target_mask > 0 for s in samples])

    def _face_mask(self, samples: list[TrainSample]) -> torch.Tensor:
        """The targets' face boxes (:mod:`charanim.pose.face_region`) on the latent grid
        ``[B, 1, F, h, w]``, for ``training.face_weight``."""
        return self._on_latent_grid([face_masks(s.target_keypoints, *s.target.shape[1:3]) for s in samples])

    def _motion_mask(self, samples: list[TrainSample]) -> torch.Tensor:
        """Where each target frame differs from its reference (any channel by more than
        ``MOTION_THRESHOLD`` of 255), on the latent grid ``[B, 1, F, h, w]``, for
        ``training.motion_weight``."""
        return self._on_latent_grid([
            (np.abs(s.target.astype(np.int16) - s.reference.astype(np.int16)[None]).max(-1) > MOTION_THRESHOLD)
            for s in samples
        ])  # fmt: skip

    def _on_latent_grid(self, masks: list[np.ndarray]) -> torch.Tensor:
        """Pixel masks ``bool [F, H, W]``, one per sample, fitted to the output grid like
        the frames and max-pooled to the latent grid: ``[B, 1, F, h, w]``."""
        fitted = []
        for mask in masks:
            if mask.shape[-2:] != (self.spec.height, self.spec.width):  # fitted as the frames are
                mask = self._fit(np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=-1))[..., 0] > 127
            fitted.append(torch.from_numpy(np.ascontiguousarray(mask)).float()[None])
        stacked = torch.stack(fitted).to(self.backbone.device)
        return self.backbone.autoencoder.downsample_mask(stacked)

    def _clip_latents(self, samples: list[TrainSample]) -> tuple[torch.Tensor, torch.Tensor]:
        """Target and reference latents, from the cache when the autoencoder allows it."""
        autoencoder, device = self.backbone.autoencoder, self.backbone.device
        if not self.cacheable or any(s.target_clip is None for s in samples):
            target = torch.stack([to_pixels(self._fit(s.target)) for s in samples]).to(device)
            reference = torch.stack([to_pixels(self._fit(s.reference))[:, None] for s in samples]).to(device)
            return autoencoder.encode(target), autoencoder.encode(reference)
        targets, references = [], []
        for sample in samples:
            key, cache = sample.entry["id"], self.latents[sample.source]
            if cache.get(key) is None:
                clip = to_pixels(self._fit(sample.target_clip))[None].to(device)
                still = to_pixels(self._fit(sample.reference))[None, :, None].to(device)
                cache.put(key, autoencoder.encode(clip)[0], autoencoder.encode(still)[0])
            clip_latents, reference_latents = cache.get(key)
            frames = slice(sample.start, sample.start + self.spec.frames)
            targets.append(clip_latents[:, frames].float())
            references.append(reference_latents.float())
        return torch.stack(targets).to(device), torch.stack(references).to(device)
