"""The Python API: the same functions the CLI calls.

>>> import charanim
>>> result = charanim.animate("ref.png", "drive.mp4", output="out.mp4", model="charanim-tiny", seed=1)
>>> result["frames"], result["fps"]
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from charanim.conditioning import Conditioner, Driving, OutputSpec, Reference
from charanim.devices import resolve_device, resolve_dtype
from charanim.engine.pipeline import AnimatePipeline, AnimateResult, SamplingSettings, StepCallback
from charanim.errors import CharanimWarning, ConditionerInputError, InvalidOptionError
from charanim.io.audio import Audio
from charanim.io.image import LoadedImage, read_image
from charanim.io.pixels import to_pixels
from charanim.io.resize import FIT_MODES, fit_frames
from charanim.io.video import Video, read_video, write_video
from charanim.models.backbones import Backbone, load_backbone
from charanim.models.memory import (
    MemorySettings,
    apply_memory,
    check_attention,
    component_bytes,
    plan_memory,
)
from charanim.models.parallel import apply_context_parallel, join_parallel, parallel_device
from charanim.models.speed import SpeedSettings, apply_speed
from charanim.models.wan_animate import MODES

#: driving frames are decoded no larger than this (estimators and the RGB path downscale anyway)
DRIVING_MAX_SIDE = 1024


@dataclass
class AnimateOptions:
    """Everything ``charanim animate`` accepts; ``None`` means "the model's default"."""

    #: None: the bundled model trained for ``conditioners`` (charanim-tiny unless another covers more)
    model: str | None = None
    conditioners: list[str] = field(default_factory=list)
    prompt: str = ""
    negative_prompt: str = ""
    size: tuple[int, int] | None = None
    fps: float | None = None
    max_frames: int | None = None
    fit: str = "contain"
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    pose: Path | None = None
    reference_pose: Path | None = None
    #: a sound file, or (Python API) an in-memory ``charanim.io.audio.Audio``
    audio: Path | Audio | None = None
    #: the output's sound track: "auto" (``audio`` if given, else the driving video's own
    #: if it has one) or "off"
    sound: str = "auto"
    #: LoRA folders to load: "PATH" or "PATH@SCALE"
    loras: list[str] = field(default_factory=list)
    #: per-conditioner constructor options, e.g. {"transfer": "upper"}; each conditioner
    #: receives the ones its constructor accepts
    conditioner_options: dict = field(default_factory=dict)
    #: "animate", or "replace" (the character takes the driver's place; Wan-Animate)
    mode: str = "animate"
    #: replace mode: a mask video, white where the character goes (default: person segmentation)
    mask: Path | None = None


def load_pipeline(
    model: str | os.PathLike[str] | None = None,
    conditioners: list[str] | str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    conditioner_options: dict | None = None,
    loras: list[str] | None = None,
    memory: MemorySettings | None = None,
    speed: SpeedSettings | None = None,
    parallel: str = "none",
) -> AnimatePipeline:
    """Load a model (plus LoRAs, ``"path"`` or ``"path@scale"``; with none, the bundled model
    trained for ``conditioners``) and the conditioners to drive it (default: the model's own),
    with ``memory`` settings (offloading, attention, VAE tiling; see
    :mod:`charanim.models.memory`), ``speed`` settings (caching,
    compilation; :mod:`charanim.models.speed`) and ``parallel`` (context parallelism
    across the processes of a ``torchrun`` launch; :mod:`charanim.models.parallel`)."""
    if isinstance(conditioners, str):
        conditioners = split_conditioner_names(conditioners)
    if model is None:
        from charanim.models.tiny import bundled_model_for

        model = bundled_model_for(conditioners or [])
    memory = memory or MemorySettings()
    memory.validate()
    speed = speed or SpeedSettings()
    if parallel != "none" and device == "cpu":
        raise InvalidOptionError(f"--parallel {parallel} runs one process per GPU; drop --device cpu.")
    group = join_parallel(parallel)
    torch_device = parallel_device(group) if group.active else resolve_device(device)
    check_attention(memory.attention, torch_device)
    backbone = _load_with_memory(model, torch_device, resolve_dtype(dtype, torch_device), memory)
    backbone.runtime_options += apply_speed(backbone, speed)
    for spec in loras or []:
        path, _, scale = spec.partition("@")
        try:
            backbone.load_lora(Path(path), scale=float(scale) if scale else 1.0)
        except ValueError:
            raise InvalidOptionError(f"--lora '{spec}': the scale after @ must be a number.") from None
    pipeline = backbone.pipeline_class(
        backbone, _conditioners(backbone, conditioners, conditioner_options or {})
    )
    backbone.runtime_options += apply_context_parallel(backbone, parallel, group, memory, speed.cache)
    return pipeline


def _load_with_memory(model, device: torch.device, dtype: torch.dtype, memory: MemorySettings) -> Backbone:
    """Offloading starts from weights in RAM: such a model is loaded on the CPU and its
    hooks move each part to the GPU when it runs."""
    plans = memory.offloads or memory.max_vram_gb is not None
    if memory.max_vram_gb is not None and device.type == "cpu":
        raise InvalidOptionError("--max-vram plans GPU memory; this run is on the CPU (use --device cuda).")
    if not plans or device.type == "cpu":
        backbone = load_backbone(model, device, dtype)
        backbone.runtime_options = apply_memory(backbone, memory, device)
        return backbone
    backbone = load_backbone(model, torch.device("cpu"), dtype)
    pipe = getattr(backbone, "pipe", None)
    if memory.max_vram_gb is not None:
        if pipe is None:
            raise InvalidOptionError(
                f"--max-vram applies to diffusers pipelines (Wan models), not {backbone.family}."
            )
        memory = plan_memory(component_bytes(pipe), memory.max_vram_gb, memory)
    if not memory.offloads:
        pipe.to(device)
        backbone.place(device)
    backbone.runtime_options = apply_memory(backbone, memory, device)
    if memory.max_vram_gb is not None:
        backbone.runtime_options.insert(0, f"max_vram={memory.max_vram_gb:g}GiB")
    return backbone


def animate(
    reference: str | os.PathLike[str] | LoadedImage,
    driving: str | os.PathLike[str] | None,
    output: str | os.PathLike[str] | None = None,
    pipeline: AnimatePipeline | None = None,
    callback: StepCallback | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Animate ``reference`` with the motion of ``driving``; write ``output`` if given.

    ``options`` are the fields of :class:`AnimateOptions` (``model``, ``conditioners``,
    ``prompt``, ``size``, ``fps``, ``seed``...) plus the sampling settings (``steps``,
    ``guidance``, ``motion_guidance``, ``sampler``, ``flow_shift``, ``strength``, ``restore_detail``, ``refine``, ``start``, ``scene``, ``window``,
    ``overlap``). Returns a summary dict; ``summary["result"]`` holds the frames.
    """
    opts = _options(options)
    sound = None
    if output is not None:  # before the work: a bad output or sound fails in a second, not after it
        _check_not_an_input(
            Path(output), reference, driving, opts.audio, opts.pose, opts.reference_pose, opts.mask
        )
        sound = _sound_track(opts, driving, Path(output))
    started = time.perf_counter()
    if pipeline is None:
        pipeline = load_pipeline(
            opts.model, opts.conditioners, opts.device, opts.dtype, opts.conditioner_options
        )
    backbone = pipeline.backbone
    if (opts.prompt or opts.negative_prompt) and not backbone.text.available:
        warnings.warn("this model has no text encoder: the prompt is ignored", CharanimWarning, stacklevel=2)

    image = reference if isinstance(reference, LoadedImage) else read_image(reference)
    spec, video = _output_spec(backbone, opts, driving)
    reference_tensor = _fit_reference(image, spec)
    inputs = Driving(video=video, keypoints=opts.pose, audio=opts.audio)
    conditions = [
        c.prepare(inputs, Reference(image, keypoints=opts.reference_pose), spec)
        for c in pipeline.conditioners
    ]
    conditions += backbone.family_conditions(inputs, conditions, spec, opts.mode, opts.mask)

    generator = torch.Generator().manual_seed(opts.seed)
    result = pipeline(
        reference_tensor,
        conditions,
        spec,
        prompt=opts.prompt,
        negative_prompt=opts.negative_prompt,
        settings=opts.sampling,
        generator=generator,
        callback=callback,
    )
    if output is not None:
        write_video(output, result.frames, result.fps, audio=sound)
    return _summary(output, result, backbone, pipeline, opts, time.perf_counter() - started, sound)


def _check_not_an_input(output: Path, *inputs) -> None:
    """Refuse an output path that is one of the run's inputs: writing it would destroy the input."""
    for source in inputs:
        if isinstance(source, str | os.PathLike) and Path(source).exists() and output.exists():
            if output.resolve() == Path(source).resolve():
                raise InvalidOptionError(f"The output '{output}' is one of the inputs; write it elsewhere.")


def _sound_track(opts: AnimateOptions, driving, output: Path) -> Path | Audio | None:
    """What the output sounds like: --audio, else the driving video's own track (a dance's
    music), else nothing; a GIF carries none (said when --audio was asked for)."""
    from charanim.io.audio import has_audio, read_audio

    if opts.sound == "off":
        return None
    gif = output.suffix.lower() == ".gif"
    if opts.audio is not None:
        if gif:
            warnings.warn("a GIF has no sound track: the output is silent", CharanimWarning, stacklevel=3)
            return None
        if not isinstance(opts.audio, Audio):
            read_audio(opts.audio, 8000)  # its one-line errors: missing, empty, no audio track
        return opts.audio
    if gif or not isinstance(driving, str | os.PathLike) or not Path(driving).is_file():
        return None
    return Path(driving) if has_audio(driving) else None


# ---------------------------------------------------------------------------- steps


def _options(options: dict[str, Any]) -> AnimateOptions:
    sampling_keys = {f for f in SamplingSettings.__dataclass_fields__}
    sampling = SamplingSettings(**{k: options.pop(k) for k in list(options) if k in sampling_keys})
    unknown = set(options) - set(AnimateOptions.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown animate option(s): {', '.join(sorted(unknown))}")
    conditioners = options.pop("conditioners", None) or []
    if isinstance(conditioners, str):
        conditioners = [conditioners]
    opts = AnimateOptions(sampling=sampling, conditioners=list(conditioners), **options)
    if opts.fit not in FIT_MODES:
        raise InvalidOptionError(f"Unknown fit mode '{opts.fit}'; use one of {', '.join(FIT_MODES)}.")
    if opts.mode not in MODES:
        raise InvalidOptionError(f"Unknown --mode '{opts.mode}'; use {' or '.join(MODES)}.")
    if opts.sound not in ("auto", "off"):
        raise InvalidOptionError(f"Unknown --sound '{opts.sound}'; use auto or off.")
    return opts


def _conditioners(backbone: Backbone, names: list[str] | None, options: dict) -> list[Conditioner]:
    from charanim.conditioners import create_conditioners
    from charanim.plugins import get_plugins

    if not names:
        if not backbone.config.conditioners:
            known = ", ".join(get_plugins().conditioners.names()) or "none installed"
            raise InvalidOptionError(
                f"This model records no default conditioner; pass --conditioner ({known})."
            )
        names = backbone.config.conditioners[:1]
    registry = get_plugins().conditioners
    classes = [registry.get(name) for name in names]
    for cls in classes:
        message = backbone.check_conditioner(cls)
        if message:
            warnings.warn(message, CharanimWarning, stacklevel=3)
    return create_conditioners(names, backbone.config.conditioner_options, options)


def split_conditioner_names(text: str) -> list[str]:
    """``"pose+audio-face"`` -> ``["pose", "audio-face"]``."""
    names = [part.strip() for part in text.split("+")]
    if not all(names):
        raise InvalidOptionError(
            f"Malformed conditioner list '{text}'; write e.g. 'pose' or 'pose+audio-face'."
        )
    if len(set(names)) != len(names):
        raise InvalidOptionError(f"Conditioner list '{text}' names a conditioner twice.")
    return names


def _output_spec(backbone: Backbone, opts: AnimateOptions, driving) -> tuple[OutputSpec, Any]:
    config = backbone.config
    width, height = opts.size or (config.width, config.height)
    multiple = backbone.size_multiple
    if width % multiple or height % multiple or width <= 0 or height <= 0:
        raise InvalidOptionError(
            f"--size {width}x{height} is not valid for this model: width and height must be "
            f"positive multiples of {multiple}."
        )
    if opts.fps is not None and not opts.fps > 0:
        raise InvalidOptionError(f"--fps must be above 0, got {opts.fps:g}.")
    fps = opts.fps or config.fps
    if driving is None and opts.audio is not None:  # a talking character: as long as the audio
        from charanim.io.audio import read_audio

        audio = opts.audio if isinstance(opts.audio, Audio) else read_audio(opts.audio)
        frames = max(1, int(audio.duration * fps))
        if opts.max_frames is not None:
            frames = min(frames, opts.max_frames)
        return OutputSpec(width, height, frames, fps, opts.fit), None
    if driving is None:
        raise ConditionerInputError("A driving video is required (or --audio for a talking character).")
    if isinstance(driving, Video):  # already decoded (Python API): used at its own frame rate
        video = driving if opts.max_frames is None else driving.head(opts.max_frames)
        return OutputSpec(width, height, len(video), video.fps, opts.fit), video
    video = read_video(driving, fps=fps, max_frames=opts.max_frames, max_side=DRIVING_MAX_SIDE)
    if opts.fps is not None and opts.fps > video.source_fps * 1.01:
        warnings.warn(
            f"--fps {opts.fps:g} is above the driving video's {video.source_fps:g} fps: its frames are "
            f"repeated, {len(video)} of them to animate",
            CharanimWarning,
            stacklevel=3,
        )
    return OutputSpec(width, height, len(video), fps, opts.fit), video


def _fit_reference(image: LoadedImage, spec: OutputSpec) -> torch.Tensor:
    fitted, _ = fit_frames(image.rgb[None], (spec.width, spec.height), spec.fit)
    return to_pixels(fitted[0])


def _summary(output, result: AnimateResult, backbone: Backbone, pipeline, opts, seconds, sound=None):
    if isinstance(sound, Audio):  # the Python API's in-memory sound: its file, if it came from one
        sound = sound.path or "in-memory audio"
    return {
        "output": None if output is None else str(Path(output)),
        "sound": None if sound is None else str(sound),
        "frames": int(result.frames.shape[0]),
        "fps": float(result.fps),
        "width": int(result.frames.shape[2]),
        "height": int(result.frames.shape[1]),
        "model": str(backbone.path) if backbone.path else opts.model,
        "backbone": backbone.family,
        "conditioners": [c.name for c in pipeline.conditioners],
        "steps": result.settings.steps,
        "sampler": result.settings.sampler,
        "strength": result.settings.strength,
        "restore_detail": result.settings.restore_detail,
        "refine": result.settings.refine,
        "refiner_kept_out": list(result.refiner_kept_out),
        "start": result.settings.start,
        "scene": result.settings.scene,
        "guidance": result.settings.guidance,
        "motion_guidance": result.settings.motion_guidance,
        "conditioner_guidance": result.settings.conditioner_guidance,
        "windows": len(result.windows),
        "mode": opts.mode,
        "runtime_options": list(backbone.runtime_options),
        "colour_drift": round(result.colour_drift, 3),
        "seed": opts.seed,
        "device": str(backbone.device),
        "seconds": round(seconds, 3),
        "result": result,
    }
