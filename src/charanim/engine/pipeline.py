"""``AnimatePipeline``: reference image + prepared conditions -> animation frames.

Reads like a diffusers pipeline: ``__call__`` is a list of numbered steps, and the
denoising loop is ``engine.sampler.sample`` with the in-context pieces plugged in.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from charanim.conditioning import Condition, Conditioner, InjectionSite, OutputSpec
from charanim.engine import sampler as flow
from charanim.engine.detail import restore_detail
from charanim.engine.injection import InjectionInput
from charanim.engine.layout import Packed, per_token_timesteps, reference_token_mask
from charanim.engine.reference_warp import warped_reference
from charanim.engine.refine import condition_skeletons, reference_bones, refine
from charanim.engine.scene import SCENES, keep_scene, reference_character
from charanim.engine.windows import (
    Window,
    colour_drift,
    crossfade_weights,
    match_overlap_colours,
    plan_windows,
)
from charanim.errors import CharanimWarning, IncompatibleError, InvalidOptionError
from charanim.io.pixels import to_pixels, to_uint8
from charanim.models.backbones import Backbone
from charanim.models.speed import cache_context, reset_cache

StepCallback = Callable[[Window, int, int, torch.Tensor], None]
#: overlap: per-channel gain and offset matched over each window's overlap; mean: offset only
COLOUR_CORRECTIONS = ("overlap", "mean", "none")
#: what a run with strength < 1 noises part-way (SamplingSettings.start)
STARTS = ("still", "warp")


@dataclass
class SamplingSettings:
    """Per-run settings; ``None`` fields take the model's defaults (``ModelConfig.sampler``)."""

    steps: int | None = None
    guidance: float | None = None
    motion_guidance: float | None = None
    sampler: str | None = None
    flow_shift: float | None = None
    #: 1 starts from pure noise; lower starts part-way from the reference held still
    #: over the window, noised to that level (img2img / SDEdit)
    strength: float | None = None
    #: > 0: the reference's detail back where frames did not change (engine.detail); 0: off
    restore_detail: float | None = None
    #: with strength < 1: "still" noises the reference held still, "warp" the reference
    #: moved by the motion condition (models with reference_warp_channels)
    start: str | None = None
    #: "keep": the reference's scene where the output still shows it (engine.scene);
    #: "generate": the model's whole frame
    scene: str | None = None
    window: int | None = None
    overlap: int | None = None
    #: "overlap": match each window's colours to the previous window's over their overlap
    colour_correction: str = "overlap"
    #: guidance scale per conditioner name, on top of ``motion_guidance`` (combinations)
    conditioner_guidance: dict[str, float] = field(default_factory=dict)
    #: run the model's refiner on the finished frames (engine.refine); None: if it has one
    refine: bool | None = None

    def resolved(self, backbone: Backbone, conditioners: Iterable[str] = ()) -> SamplingSettings:
        """Unset settings from the model's defaults; its per-conditioner guidance for those
        of ``conditioners`` this run does not set itself."""
        defaults, config = backbone.config.sampler, backbone.config
        used = set(conditioners)
        conditioner_guidance = {k: v for k, v in defaults.conditioner_guidance.items() if k in used}
        return SamplingSettings(
            steps=self.steps or defaults.steps,
            guidance=defaults.guidance if self.guidance is None else self.guidance,
            motion_guidance=defaults.motion_guidance
            if self.motion_guidance is None
            else self.motion_guidance,
            sampler=self.sampler or defaults.name,
            flow_shift=defaults.flow_shift if self.flow_shift is None else self.flow_shift,
            strength=defaults.strength if self.strength is None else self.strength,
            restore_detail=defaults.restore_detail if self.restore_detail is None else self.restore_detail,
            start=self.start or defaults.start,
            scene=self.scene or defaults.scene,
            window=self.window or config.window_frames,
            overlap=config.window_overlap if self.overlap is None else self.overlap,
            colour_correction=self.colour_correction,
            conditioner_guidance={**conditioner_guidance, **self.conditioner_guidance},
            refine=backbone.refiner is not None if self.refine is None else self.refine,
        )


@dataclass
class AnimateResult:
    frames: np.ndarray  #: uint8 [F, H, W, 3]
    fps: float
    windows: list[Window]
    settings: SamplingSettings
    colour_drift: float
    seconds: dict[str, float] = field(default_factory=dict)
    #: each window's denoised latents before decoding, with ``keep_latents`` (what a
    #: decoder fine-tuned on the model's own samples learns from)
    latents: list[torch.Tensor] | None = None
    #: the regions the refiner left as the model drew them, for the conditioners that drive them
    refiner_kept_out: tuple[str, ...] = ()


class AnimatePipeline:
    """Denoise with a loaded :class:`Backbone` and a set of conditioners."""

    def __init__(self, backbone: Backbone, conditioners: list[Conditioner]):
        in_context = [c.name for c in conditioners if c.site is InjectionSite.IN_CONTEXT]
        if len(in_context) > 1:
            raise IncompatibleError(
                f"Conditioners {' and '.join(in_context)} both inject in-context; combine one "
                "in-context conditioner with channel/token/residual ones."
            )
        self.backbone = backbone
        self.conditioners = list(conditioners)
        self.injector = backbone.attach([type(c) for c in conditioners])

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
        keep_latents: bool = False,
    ) -> AnimateResult:
        """``reference`` is ``float [3, H, W]`` in [-1, 1] at the output size."""
        backbone, autoencoder = self.backbone, self.backbone.autoencoder
        asked = settings or SamplingSettings()
        settings = asked.resolved(backbone, [c.name for c in self.conditioners])
        in_context = next((c for c in conditions if c.site is InjectionSite.IN_CONTEXT), None)
        kept_from_refiner = self._kept_from_refiner(in_context, spec) if settings.refine else None
        if settings.refine and asked.refine is None and not self._refines_beside(kept_from_refiner):
            settings = replace(settings, refine=False)
        seconds: dict[str, float] = {}
        started = time.perf_counter()

        # 1. Check inputs
        self._check_inputs(reference, conditions, spec, settings)
        if not backbone.text.available:  # no text encoder: the text guidance pass would be a copy
            settings = replace(settings, guidance=1.0)

        # 2. Encode the prompt (the null prompt is the negative one, as in Wan)
        passes = flow.guidance_passes(
            settings.guidance, settings.motion_guidance, settings.conditioner_guidance
        )
        text = backbone.text.encode([prompt])
        null_text = backbone.text.encode([negative_prompt]) if not all(p.text for p in passes) else None
        backbone.text.release()

        # 3. Encode the reference (and, to start from it, the reference held still)
        reference_pixels = reference[None, :, None].to(backbone.device, torch.float32)
        reference_latents = autoencoder.encode(reference_pixels)
        still_latents = {}  # per window length: the reference held still, encoded
        # what the autoencoder makes of the reference: where frames still match it, the
        # detail it lost is the reference's own (step 5)
        reconstruction = autoencoder.decode(reference_latents) if settings.restore_detail > 0 else None
        image_embeds = backbone.image_embeds(reference_pixels)
        # the reference moved to the driving skeleton: the still one on the latent grid, the
        # moved frames in pixels (each window takes and encodes its own)
        warp = None
        if backbone.config.reference_warp_channels:
            moved = warped_reference(in_context, reference, spec.frames, backbone.config.warp_behind)
            moved = moved[None].to(backbone.device, torch.float32)
            warp = (backbone.encode_motion(reference_pixels), moved)
        # which of the reference's pixels are scene, to keep (--scene keep); a condition
        # that does not say leaves the whole frame to the model
        character = reference_character(in_context) if settings.scene == "keep" else None
        if character is None and settings.scene == "keep":
            says = (
                f"the {in_context.conditioner} condition does not say"
                if in_context is not None
                else "no in-context condition says"
            )
            warnings.warn(
                f"--scene keep: {says} which of the reference's pixels are scene; the model draws the "
                "whole frame",
                CharanimWarning,
                stacklevel=2,
            )
            settings = replace(settings, scene="generate")
        seconds["encode"] = time.perf_counter() - started

        # 4. Plan windows
        windows = plan_windows(spec.frames, settings.window, settings.overlap, backbone.valid_frames)

        # 5. Denoise and decode each window, continuing from the previous one
        output = np.zeros((windows[-1].start + windows[-1].frames, spec.height, spec.width, 3), np.uint8)
        kept = [] if keep_latents else None
        # a model whose flow starts from its warp starts there at any strength
        from_source = backbone.config.flow_source == "warp"
        from_warp = warp is not None and (settings.start == "warp" or from_source)
        for window in windows:
            known = None
            if window.context:
                known = to_pixels(output[window.start : window.start + window.context], backbone.device)[None]
            init, detail_source, detail_reconstruction = None, reference_pixels, reconstruction
            if from_warp:  # the moved reference is both the start and the detail to keep
                moved_window = _take_frames(warp[1], 2, window)
                init = autoencoder.encode(moved_window)
                if reconstruction is not None:
                    detail_source, detail_reconstruction = moved_window, autoencoder.decode(init)
            elif settings.strength < 1.0:
                init = _still(still_latents, reference_pixels, window.frames, autoencoder)
            latents = self._denoise_window(
                window,
                reference_latents,
                conditions,
                text,
                null_text,
                image_embeds,
                known,
                settings,
                generator,
                callback,
                init if settings.strength < 1.0 else None,
                warp,
                init if from_source else None,
            )
            if kept is not None:
                kept.append(latents.detach().cpu())
            decoded = autoencoder.decode(latents)
            if reconstruction is not None:
                decoded = restore_detail(
                    decoded, detail_source, detail_reconstruction, settings.restore_detail
                )
            if character is not None:
                decoded = keep_scene(decoded, reference_pixels, character)
            frames = to_uint8(decoded[0])
            if window.context and settings.colour_correction != "none":
                frames = match_overlap_colours(
                    frames,
                    output[window.start : window.start + window.context],
                    settings.colour_correction == "overlap",
                )
            _blend_into(output, frames, window)
        seconds["total"] = time.perf_counter() - started

        frames = output[: spec.frames]
        if settings.refine:  # 6. The model's refiner, where the character moved
            started_refine = time.perf_counter()
            # the warp the refiner reads: the denoiser's, unless it was trained on another
            behind = self.backbone.refiner_spec.behind(self.backbone.config.warp_behind)
            moved = (
                warp[1][0]
                if warp is not None and behind == self.backbone.config.warp_behind
                else warped_reference(in_context, reference, spec.frames, behind)
            )
            frames = self._refine(frames, reference, moved, in_context, kept_from_refiner)
            seconds["refine"] = time.perf_counter() - started_refine
            seconds["total"] = time.perf_counter() - started
        kept_out = tuple(sorted(self._drives())) if settings.refine and kept_from_refiner is not None else ()
        return AnimateResult(
            frames, spec.fps, windows, settings, colour_drift(frames, windows), seconds, kept, kept_out
        )

    # ------------------------------------------------------------------ steps

    def _check_inputs(self, reference, conditions, spec, settings) -> None:
        multiple = self.backbone.size_multiple
        if spec.width % multiple or spec.height % multiple:
            raise InvalidOptionError(
                f"Output size {spec.width}x{spec.height} is not a multiple of {multiple} for this model."
            )
        if tuple(reference.shape) != (3, spec.height, spec.width):
            raise ValueError(
                f"reference must be [3, {spec.height}, {spec.width}], got {tuple(reference.shape)}"
            )
        names = {c.name for c in self.conditioners}
        for condition in conditions:
            if condition.conditioner not in names:
                raise ValueError(
                    f"condition from '{condition.conditioner}', which this pipeline was not built with"
                )
            condition.validate(spec)
        if settings.sampler not in flow.SAMPLERS:
            raise InvalidOptionError(
                f"Unknown sampler '{settings.sampler}'; choose from {', '.join(flow.SAMPLERS)}."
            )
        if settings.colour_correction not in COLOUR_CORRECTIONS:
            raise InvalidOptionError(
                f"Unknown colour correction '{settings.colour_correction}'; use {', '.join(COLOUR_CORRECTIONS)}."
            )
        if settings.steps < 1:
            raise InvalidOptionError("--steps must be at least 1.")
        if not 0.0 < settings.strength <= 1.0:
            raise InvalidOptionError(f"--strength must be in (0, 1], got {settings.strength:g}.")
        if settings.start not in STARTS:
            raise InvalidOptionError(f"Unknown start '{settings.start}'; use {' or '.join(STARTS)}.")
        if settings.start == "warp" and not self.backbone.config.reference_warp_channels:
            raise InvalidOptionError(
                "--start warp needs a model trained with the reference warp (reference_warp_channels); "
                "this one starts from the reference held still."
            )
        if settings.scene not in SCENES:
            raise InvalidOptionError(f"Unknown scene '{settings.scene}'; use {' or '.join(SCENES)}.")
        if not settings.flow_shift > 0.0:
            raise InvalidOptionError(f"--flow-shift must be above 0, got {settings.flow_shift:g}.")
        scales = {"--guidance": settings.guidance, "--motion-guidance": settings.motion_guidance}
        scales.update({f"--conditioner-guidance {k}": v for k, v in settings.conditioner_guidance.items()})
        for option, scale in scales.items():
            if not scale >= 0.0:  # 1 is off, 0 the unconditioned pass alone; below makes no sense
                raise InvalidOptionError(f"{option} must be 0 or more, got {scale:g}.")
        if settings.refine and self.backbone.refiner is None:
            raise InvalidOptionError(
                "--refine on: this model has no refiner (train one with training.task: refiner)."
            )
        if settings.refine and not any(c.site is InjectionSite.IN_CONTEXT for c in self.conditioners):
            raise InvalidOptionError(
                "--refine on: the refiner reads the motion condition (pose maps, the moved reference); "
                "this run has none."
            )
        if not 0.0 <= settings.restore_detail <= 2.0:  # 2: a pixel's largest change in [-1, 1] units
            raise InvalidOptionError(
                f"--restore-detail must be in [0, 2] (0: off), got {settings.restore_detail:g}."
            )
        unknown = sorted(set(settings.conditioner_guidance) - names)
        if unknown:
            raise InvalidOptionError(
                f"--conditioner-guidance names {', '.join(unknown)}, which this run does not use "
                f"(conditioners: {', '.join(sorted(names))})."
            )

    def _drives(self) -> frozenset[str]:
        """The regions the conditioners beside the in-context one drive (``Conditioner.drives``)."""
        return frozenset().union(
            *(c.drives for c in self.conditioners if c.site is not InjectionSite.IN_CONTEXT)
        )

    def _refines_beside(self, kept_from_refiner: torch.Tensor | None) -> bool:
        """Whether the refiner runs by default beside these conditioners. It was trained on
        runs driven by the motion condition alone: with none (a voice alone) it has nothing
        to read; beside an adapter it runs only if the adapter says which regions it drives
        and the motion condition's skeleton locates them, to leave them out (charanim-tiny's
        lip sync fell from r 0.66 to 0.00 with the mouth refined)."""
        others = [c for c in self.conditioners if c.site is not InjectionSite.IN_CONTEXT]
        if len(others) == len(self.conditioners) or any(not c.drives for c in others):
            return False
        return not others or kept_from_refiner is not None

    def _kept_from_refiner(self, in_context: Condition | None, spec: OutputSpec) -> torch.Tensor | None:
        """``[F, 1, H, W]``: the regions the other conditioners drive, in each output frame,
        from the in-context condition's skeletons (every person's); None where none is driven
        or no skeleton says where."""
        from charanim.pose.face_region import FACE_POINTS, face_boxes
        from charanim.pose.formats import get_format

        meta = in_context.meta if in_context is not None else {}
        people = condition_skeletons(in_context, "keypoints")
        if "face" not in self._drives() or not people or meta.get("body_format") is None:
            return None
        if not set(FACE_POINTS) <= set(get_format(meta["body_format"]).keypoints):
            return None  # a skeleton without a face cannot say where it is
        kept = np.zeros((spec.frames, spec.height, spec.width), bool)
        for points in people:
            points = np.asarray(points)[: spec.frames]
            kept[: len(points)] |= face_boxes(points, meta["body_format"], spec.height, spec.width)
        return torch.from_numpy(kept)[:, None].float()

    def _refine(
        self,
        frames: np.ndarray,
        reference: torch.Tensor,
        moved: torch.Tensor,
        in_context: Condition | None,
        keep_out: torch.Tensor | None = None,
    ) -> np.ndarray:
        """``frames`` uint8 ``[F, H, W, 3]`` through the model's refiner, beside the reference
        ``[3, H, W]``, the reference moved to each frame ``[3, F, H, W]``, the in-context
        condition's motion video (its pose maps) and its own reference map, all in [-1, 1];
        ``keep_out`` ``[F, 1, H, W]`` is left as it is."""
        backbone = self.backbone
        device = backbone.device
        count = len(frames)
        pixels = to_pixels(frames, device).transpose(0, 1)  # [F, 3, H, W]
        motion = None
        if in_context is not None and in_context.video is not None:
            motion = in_context.video[:, :count].to(device, torch.float32).transpose(0, 1)
        spec = backbone.refiner_spec
        height, width = reference.shape[1:]
        bones = reference_bones(in_context, (width, height)) if spec.reference_bones else None
        reference_motion = None  # the reference's own pose map [3, H, W], beside its frames'
        if in_context is not None and in_context.reference is not None:
            reference_motion = in_context.reference[:, 0].to(device, torch.float32)
        refined = refine(
            backbone.refiner,
            spec,
            pixels,
            moved[:, :count].to(device, torch.float32).transpose(0, 1),
            motion,
            reference.to(device, torch.float32),
            bones=bones,
            keep_out=None if keep_out is None else keep_out[:count].to(device),
            reference_motion=reference_motion,
        )
        return to_uint8(refined.transpose(0, 1))

    def _denoise_window(
        self,
        window,
        reference_latents,
        conditions,
        text,
        null_text,
        image_embeds,
        known,
        settings,
        generator,
        callback,
        still=None,
        warp=None,
        source=None,
    ) -> torch.Tensor:
        """``source``: where the flow starts at σ = 1 for a model trained from its warp (the
        moved reference's latents), in place of Gaussian noise."""
        backbone, autoencoder, layout = self.backbone, self.backbone.autoencoder, self.backbone.layout
        sliced = [_slice_condition(c, window) for c in conditions]
        latent_frames = autoencoder.latent_frames(window.frames)
        _, channels, _, height, width = reference_latents.shape
        noise = torch.randn(
            (1, channels, latent_frames, height, width), generator=generator, dtype=torch.float32
        ).to(backbone.device)
        if source is not None:  # drawn all the same: the generator's stream stays as it was
            noise = source

        if warp is not None:
            warp = (warp[0], backbone.encode_motion(_take_frames(warp[1], 2, window)))
        packed, null_packed = self._sequences(reference_latents, noise, sliced, warp)
        passes = flow.guidance_passes(
            settings.guidance, settings.motion_guidance, settings.conditioner_guidance
        )
        injection = self._injection_inputs(sliced, packed, latent_frames)
        in_context = next((c.conditioner for c in sliced if c.site is InjectionSite.IN_CONTEXT), None)
        reference_tokens = None  # computed once: the hot loop only scales it
        if backbone.config.reference_timestep_zero:
            reference_tokens = reference_token_mask(packed.reference_mask, backbone.patch_size)
        known_latents = autoencoder.encode(known) if known is not None else None

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            timestep = per_token_timesteps(t, reference_tokens)
            outputs = []
            for index, guidance_pass in enumerate(passes):
                keeps_in_context = guidance_pass.motion and in_context not in guidance_pass.drop
                base = packed if keeps_in_context else null_packed
                hidden = backbone.assemble(replace(base, latents=x))
                feeding = {}
                if guidance_pass.motion and self.injector:
                    feeding = {k: v for k, v in injection.items() if k not in guidance_pass.drop}
                with (
                    self.injector.feeding(feeding) if self.injector else _nothing(),
                    cache_context(backbone, f"pass{index}"),
                ):
                    v = backbone.velocity(
                        hidden, timestep, text if guidance_pass.text else null_text, image_embeds
                    )
                outputs.append(v.float())
            return flow.combine_guidance(
                outputs, settings.guidance, settings.motion_guidance, settings.conditioner_guidance
            )

        def project(x: torch.Tensor, sigma: float) -> torch.Tensor:
            x = layout.impose_reference(x, reference_latents)
            if known_latents is not None:
                k = known_latents.shape[2]
                layout.unpack(x, latent_frames)[:, :, :k] = (1 - sigma) * known_latents + sigma * noise[
                    :, :, :k
                ]
            return x

        scheduler = flow.make_scheduler(settings.sampler, settings.flow_shift)
        reset_cache(backbone)
        on_step = None
        if callback is not None:
            on_step = lambda i, x: callback(window, i, settings.steps, x)  # noqa: E731
        init = backbone.pack(reference_latents, still).latents if still is not None else None
        x = flow.sample(
            velocity, packed.latents, scheduler, settings.steps, project, on_step, init, settings.strength
        )
        return layout.unpack(x, latent_frames)

    def _sequences(self, reference_latents, noise, conditions, warp=None) -> tuple[Packed, Packed]:
        """The in-context sequence with the motion condition, and without it (guidance)."""
        backbone, autoencoder = self.backbone, self.backbone.autoencoder
        null_packed = backbone.pack(reference_latents, noise, warp=warp)
        in_context = [c for c in conditions if c.site is InjectionSite.IN_CONTEXT]
        if not in_context:
            return null_packed, null_packed
        condition = in_context[0]
        motion = backbone.encode_motion(condition.video[None].to(backbone.device, torch.float32))
        valid = None
        if condition.valid is not None:
            valid = autoencoder.downsample_mask(condition.valid[None].to(backbone.device, torch.float32))
        reference_motion = None
        if condition.reference is not None:
            reference_motion = backbone.encode_motion(
                condition.reference[None].to(backbone.device, torch.float32)
            )
        return backbone.pack(reference_latents, noise, motion, valid, reference_motion, warp), null_packed

    def _injection_inputs(self, conditions, packed: Packed, latent_frames: int) -> dict[str, InjectionInput]:
        """Adapter inputs on the packed grid for channel/token/residual conditions."""
        adapters = [c for c in conditions if c.site is not InjectionSite.IN_CONTEXT]
        return adapter_inputs(
            self.backbone,
            {c.conditioner: c.site for c in adapters},
            {c.conditioner: c.features[None] for c in adapters if c.features is not None},
            {c.conditioner: c.video[None] for c in adapters if c.video is not None},
            packed,
            latent_frames,
        )


def adapter_inputs(
    backbone: Backbone,
    sites: dict[str, InjectionSite],
    features: dict[str, torch.Tensor],
    videos: dict[str, torch.Tensor],
    packed: Packed,
    latent_frames: int,
) -> dict[str, InjectionInput]:
    """What each adapter receives for a batch: ``features[name]`` ``[B, F, D]`` (one vector
    per pixel frame) or ``videos[name]`` ``[B, C, F, H, W]`` (in [-1, 1] when C = 3), mapped
    onto the packed latent grid. Shared by sampling (B = 1) and training."""
    autoencoder, layout = backbone.autoencoder, backbone.layout
    inputs: dict[str, InjectionInput] = {}
    pt, ph, pw = backbone.patch_size
    grid = packed.reference_mask[:, :, ::pt, ::ph, ::pw]
    target_tokens = 1.0 - grid
    token_frames = _token_frames(grid)
    # a target latent frame's place in the packed sequence (the temporal layout puts the
    # reference first); a token spans pt packed frames (charanim-tiny's patch is [2, 2, 2])
    offset = 1 if layout.name == "temporal" else 0
    for name, site in sites.items():
        if site is InjectionSite.CHANNELS:
            video = videos[name].to(backbone.device, torch.float32)
            latents = (
                autoencoder.encode(video)
                if video.shape[1] == 3
                else _resize_to_latent_grid(video, autoencoder)
            )
            extra = layout.pack(torch.zeros_like(latents[:, :, :1]), latents).latents
            inputs[name] = InjectionInput(extra=extra)
        elif site is InjectionSite.RESIDUAL:
            per_latent = torch.stack([
                _features_per_latent_frame(f.to(backbone.device), autoencoder, latent_frames) for f in features[name]
            ])  # fmt: skip
            if offset:
                per_latent = torch.cat([torch.zeros_like(per_latent[:, :1]), per_latent], dim=1)
            per_token = per_latent.unflatten(1, (-1, pt)).mean(2)
            inputs[name] = InjectionInput(features=per_token, token_mask=target_tokens)
        elif site is InjectionSite.TOKENS:
            batched = features[name]
            packed_frame = _latent_frame_of(batched.shape[1], autoencoder) + offset
            inputs[name] = InjectionInput(
                features=batched.to(backbone.device),
                feature_frames=(packed_frame // pt).to(backbone.device),
                token_frames=token_frames,
            )
    return inputs


# ---------------------------------------------------------------------- helpers


def _still(cache: dict, reference_pixels: torch.Tensor, frames: int, autoencoder) -> torch.Tensor:
    """The reference held still for ``frames`` frames, encoded like a clip (a causal
    video autoencoder codes a still clip's later latent frames differently from its first)."""
    if frames not in cache:
        cache[frames] = autoencoder.encode(reference_pixels.expand(-1, -1, frames, -1, -1))
    return cache[frames]


def _slice_condition(condition: Condition, window: Window) -> Condition:
    """The window's frames of a condition; frames past the clip's end repeat the last one."""
    return condition.replace(
        video=_take_frames(condition.video, 1, window),
        valid=_take_frames(condition.valid, 1, window),
        features=_take_frames(condition.features, 0, window),
    )


def _take_frames(tensor: torch.Tensor | None, dim: int, window: Window) -> torch.Tensor | None:
    """The window's frames along ``dim``; frames past the clip's end repeat the last one."""
    if tensor is None:
        return None
    last = tensor.shape[dim] - 1
    index = torch.arange(window.start, window.start + window.frames).clamp(max=last).to(tensor.device)
    return tensor.index_select(dim, index)


def _latent_frame_of(frames: int, autoencoder) -> torch.Tensor:
    """Latent frame index of each pixel frame (frame 0 alone, then groups, for Wan's causal VAE)."""
    index = torch.arange(frames)
    factor = autoencoder.temporal_factor
    return index if factor == 1 else torch.where(index == 0, 0, (index - 1) // factor + 1)


def _features_per_latent_frame(features: torch.Tensor, autoencoder, latent_frames: int) -> torch.Tensor:
    groups = _latent_frame_of(features.shape[0], autoencoder).to(features.device)
    summed = torch.zeros(latent_frames, features.shape[1], device=features.device, dtype=features.dtype)
    summed.index_add_(0, groups, features)
    counts = torch.bincount(groups, minlength=latent_frames).clamp(min=1).to(features.dtype)
    return summed / counts[:, None]


def _token_frames(reference_grid: torch.Tensor) -> torch.Tensor:
    """Frame of every token on the token grid (packed latent frames // the temporal
    patch), in transformer order; -1 for reference tokens."""
    _, _, frames, height, width = reference_grid.shape
    frame = torch.arange(frames, device=reference_grid.device)
    per_token = frame.view(frames, 1, 1).expand(frames, height, width).clone()
    per_token[reference_grid[0, 0] > 0.5] = -1
    return per_token.reshape(-1)


def _resize_to_latent_grid(video: torch.Tensor, autoencoder) -> torch.Tensor:
    """Non-RGB channel conditions skip the VAE: averaged onto the latent grid."""
    first, rest = video[:, :, :1], video[:, :, 1:]
    factor = autoencoder.temporal_factor
    if factor > 1 and rest.shape[2]:
        b, c, f, h, w = rest.shape
        rest = rest.view(b, c, f // factor, factor, h, w).mean(3)
    grouped = torch.cat([first, rest], dim=2) if factor > 1 else video
    s = autoencoder.spatial_factor
    return torch.nn.functional.avg_pool3d(grouped, kernel_size=(1, s, s)) if s > 1 else grouped


def _blend_into(output: np.ndarray, frames: np.ndarray, window: Window) -> None:
    start, context = window.start, window.context
    if context:
        weight = crossfade_weights(context)[:, None, None, None]
        old = output[start : start + context].astype(np.float32)
        output[start : start + context] = np.round(old * (1 - weight) + frames[:context] * weight).astype(
            np.uint8
        )
    output[start + context : start + window.frames] = frames[context:]


def _nothing():
    import contextlib

    return contextlib.nullcontext()
