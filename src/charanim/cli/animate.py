"""``charanim animate``: one reference image + one driving video -> an animation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from charanim.cli import console, options
from charanim.cli.options import parse_size
from charanim.errors import InputFileError, InvalidOptionError

HELP = """Animate REFERENCE with the motion of DRIVING and write the video to -o.

The model (default: the embedded model trained for --conditioner, charanim-tiny when no
other bundled one covers more of it) and the conditioner that reads the motion
(default: the one the model was trained with) can be changed; sampling
options default to the model's own settings. Clips longer than the model's window
are generated in overlapping windows that continue each other.
"""

EPILOG = """[bold]Examples[/]

  charanim animate ref.png drive.mp4 -o out.mp4

  charanim animate cat.png walk.gif -o cat.mp4 --conditioner rgb --size 64x64 --seed 3

  charanim animate ref.png drive.mp4 -o out.mp4 --model ~/models/Wan2.1-I2V-14B-480P-Diffusers \\
      --prompt-file prompt.json --steps 30 --guidance 5 --device cuda

  charanim animate cat.png street-dog.mp4 -o cat.mp4 --conditioner rgb --driving-background remove

  charanim animate dog.png dog-walk.mp4 -o dog.mp4 --conditioner rgb --scene generate

  charanim animate ref.png dance.mp4 -o out.mp4 --model ~/models/Wan2.2-Animate-14B-Diffusers \\
      --size 832x480 --max-vram 24 --device cuda

  charanim animate ref.png street.mp4 -o swapped.mp4 --model ~/models/Wan2.2-Animate-14B-Diffusers \\
      --mode replace --overlap 5 --offload model --device cuda

  charanim animate ref.png drive.mp4 -o out.mp4 --conditioner pose+audio-face --audio speech.wav

  charanim animate ref.png -o talking.mp4 --conditioner audio-face --audio speech.wav

  torchrun --nproc_per_node 4 -m charanim animate ref.png drive.mp4 -o out.mp4 \\
      --model ~/models/Wan2.1-I2V-14B-480P-Diffusers --parallel ulysses

  charanim animate ref.png drive.mp4 -o out.mp4 --json | jq .seconds
"""


def animate(
    reference: Path = typer.Argument(
        ..., help="Image of the character (PNG, JPEG, WebP...; transparency is kept as its mask)."
    ),
    driving: Path | None = typer.Argument(
        None,
        help="Driving video (MP4, WebM, MOV, MKV, animated GIF/WebP, or a folder of frames). May be left out with --audio "
        "and an audio conditioner: the character then talks to the audio.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Output video: .mp4, .webm, .mov, .mkv or .gif."),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Model name or local model directory. Default: the bundled model trained for "
        "--conditioner (charanim-tiny; charanim-tiny-rgb for --conditioner rgb).",
    ),
    lora: list[str] = typer.Option(
        None, "--lora", help="LoRA folder from 'charanim train' (PATH or PATH@SCALE); repeatable."
    ),
    conditioner: str | None = typer.Option(
        None,
        "--conditioner",
        "-c",
        help="Conditioner(s) reading the motion, e.g. rgb or pose+audio-face. Default: the model's.",
    ),
    pose: Path | None = typer.Option(
        None,
        "--pose",
        help="Keypoints of the driving video (from 'charanim extract-pose', or OpenPose JSON); skips estimation.",
    ),
    reference_pose: Path | None = typer.Option(
        None,
        "--reference-pose",
        help="Keypoints of the reference (a cartoon or animal the estimator cannot read).",
    ),
    audio: Path | None = typer.Option(
        None,
        "--audio",
        help="Speech for the audio-face conditioner: a WAV/MP3 or a video's audio track (default: the "
        "driving video's own). Shorter audio is padded with silence, longer audio is cut at the video's end. "
        "It is also the output's sound (see --sound).",
    ),
    sound: str = typer.Option(
        "auto",
        "--sound",
        help="The output's sound track: auto (--audio if given, else the driving video's own, e.g. a "
        "dance's music; a GIF has none) or off (silent).",
    ),
    driving_background: str = typer.Option(
        "keep",
        "--driving-background",
        help="RGB conditioner: keep the driving video's background, or remove it (remove = person "
        "segmentation for people, else motion against a still camera; or force person / motion).",
    ),
    transfer: str = typer.Option(
        "body", "--transfer", help="What the driving motion controls: body, upper, face or hands."
    ),
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="Text describing the target video."),
    prompt_file: Path | None = typer.Option(
        None,
        "--prompt-file",
        help="Prompt from a file: JSON with a 'prompt' key (as 'charanim caption' writes) or plain text.",
    ),
    negative_prompt: str = typer.Option(
        "", "--negative-prompt", help="What the video should not show (text guidance)."
    ),
    caption_mode: str = typer.Option(
        "none",
        "--caption",
        help="none: use --prompt/--prompt-file as given; auto: write the prompt with the built-in "
        "captioner (as 'charanim caption' would).",
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Denoising steps. Default: the model's."),
    guidance: float | None = typer.Option(
        None, "--guidance", help="Text guidance scale (1 = off). Default: the model's."
    ),
    motion_guidance: float | None = typer.Option(
        None, "--motion-guidance", help="Motion-condition guidance scale (1 = off). Default: the model's."
    ),
    conditioner_guidance: list[str] = typer.Option(
        [],
        "--conditioner-guidance",
        help="NAME=SCALE: a guidance scale for one conditioner of a combination (one extra model pass "
        "per step), e.g. audio-face=2. Repeatable. Default: the model's (charanim-tiny: audio-face=3).",
    ),
    sampler: str | None = typer.Option(None, "--sampler", help="euler or unipc. Default: the model's."),
    flow_shift: float | None = typer.Option(
        None, "--flow-shift", help="Shift of the noise schedule. Default: the model's."
    ),
    strength: float | None = typer.Option(
        None,
        "--strength",
        help="1 starts from pure noise; lower (e.g. 0.8) starts from the reference held still, "
        "noised part-way, so the character keeps its place and colours (img2img). A model trained as "
        "a flow from its warp starts at the warp, not at noise; lower runs only the last steps of its "
        "flow. Default: the model's.",
    ),
    restore_detail: float | None = typer.Option(
        None,
        "--restore-detail",
        help="Add back the reference's fine detail (texture, eyes, background) that the model's "
        "autoencoder loses, where a frame did not change: up to this much change, in [-1, 1] units "
        "(e.g. 0.3); 0 turns it off. Default: the model's.",
    ),
    refine: str | None = typer.Option(
        None,
        "--refine",
        help="'on' or 'off': the model's refiner on the finished frames, a small network that "
        "redraws, where the character moved, what the model blurred (models trained with one). "
        "Default: on when the model has one and the motion condition drives the run; beside an "
        "adapter that says what it drives (audio-face: the face) that region is left as the model drew it "
        "(--json: refiner_kept_out).",
    ),
    start: str | None = typer.Option(
        None,
        "--start",
        help="With --strength below 1, what is noised part-way: 'still' (the reference held still) "
        "or 'warp' (the reference moved by the motion: skeleton or optical flow; models trained with "
        "the reference warp). Default: the model's (charanim-tiny: still).",
    ),
    scene: str | None = typer.Option(
        None,
        "--scene",
        help="'keep': where the output still shows the reference's scene (not its character), the "
        "reference's own pixels replace the model's blur and speckle (a still camera; the rgb conditioner "
        "says which pixels are scene); 'generate': the model draws the whole frame. Default: the model's.",
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same video."),
    size: str | None = typer.Option(
        None, "--size", help="Output WIDTHxHEIGHT, e.g. 64x64. Default: the model's."
    ),
    fps: float | None = typer.Option(
        None, "--fps", help="Output frame rate; the driving video is resampled to it. Default: the model's."
    ),
    max_frames: int | None = typer.Option(
        None, "--max-frames", min=1, help="Use at most this many frames of the driving video."
    ),
    fit: str = typer.Option(
        "contain", "--fit", help="How inputs fit the output size: contain (pad), cover (crop) or stretch."
    ),
    window: int | None = typer.Option(
        None, "--window", min=1, help="Frames per denoising window. Default: the model's."
    ),
    overlap: int | None = typer.Option(
        None, "--overlap", min=0, help="Frames shared by consecutive windows. Default: the model's."
    ),
    colour_correction: str = typer.Option(
        "overlap",
        "--colour-correction",
        help="overlap: match each window's colour means and spreads to the previous window's where they "
        "overlap (keeps long clips from drifting); mean: the means only; none: leave them.",
    ),
    mode: str = typer.Option(
        "animate",
        "--mode",
        help="animate: the character performs the motion; replace: it takes the driving person's "
        "place in the driving video (Wan-Animate models).",
    ),
    mask: Path | None = typer.Option(
        None,
        "--mask",
        help="--mode replace: a mask video, white where the character goes. Default: person segmentation.",
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    dtype: str = typer.Option("auto", "--dtype", help="auto, float32, bfloat16 or float16."),
    offload: str = typer.Option(
        "none",
        "--offload",
        help="GPU memory: none; model (each model on the GPU only while it runs); group (blocks of "
        "layers, less memory); sequential (layer by layer, least memory, slowest).",
    ),
    attention: str = typer.Option(
        "auto",
        "--attention",
        help="Attention kernel: auto, sdpa, xformers (pip install 'charanim\\[gpu]') or flash.",
    ),
    vae_tiling: bool = typer.Option(
        False, "--vae-tiling", help="Encode/decode in tiles and slices: less GPU memory for large frames."
    ),
    max_vram: float | None = typer.Option(
        None, "--max-vram", help="GiB of GPU memory to stay within: picks --offload and --vae-tiling for you."
    ),
    cache: str = typer.Option(
        "none",
        "--cache",
        help="first-block: skip the rest of the transformer on steps whose first block barely changed "
        "(faster, slightly different frames); none.",
    ),
    cache_threshold: float = typer.Option(
        0.05, "--cache-threshold", help="--cache first-block: relative change below which a step is reused."
    ),
    compile_blocks: bool = typer.Option(
        False,
        "--compile",
        help="torch.compile the transformer's repeated blocks (GPU; pays off on long clips).",
    ),
    parallel: str = typer.Option(
        "none",
        "--parallel",
        help="Split each step across the GPUs of a torchrun launch (one process per GPU): ulysses, ring "
        "(needs --attention flash) or none. Only the first process writes the video.",
    ),
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    from charanim.api import animate as run_animate
    from charanim.api import load_pipeline, split_conditioner_names
    from charanim.models.memory import MemorySettings
    from charanim.models.parallel import check_parallel, is_main_process, leave_parallel
    from charanim.models.speed import SpeedSettings

    check_parallel(parallel)
    main = is_main_process()
    console.apply(quiet or not main, verbose, debug)
    _check_output(output)
    if driving is None and audio is None:
        raise InvalidOptionError("Give a driving video, or --audio FILE to make the character talk.")
    text = _read_prompt(prompt, prompt_file)
    if caption_mode not in ("none", "auto"):
        raise InvalidOptionError(f"--caption must be none or auto, got '{caption_mode}'.")
    if caption_mode == "auto" and driving is None:
        raise InvalidOptionError("--caption auto describes the driving video; there is none.")
    if caption_mode == "auto" and not text:
        from charanim.captioning.run import get_captioner
        from charanim.cli.caption import _caption_one

        fps_for_caption = fps or 8.0
        text = _caption_one(
            get_captioner(),
            driving,
            reference,
            pose,
            reference_pose,
            None,
            None,
            fps_for_caption,
            max_frames or 64,
        ).prompt
        console.info(f"prompt: {text}")
    output_size = parse_size(size)
    console.silence_model_libraries()
    started = time.perf_counter()
    names = split_conditioner_names(conditioner) if conditioner else None
    if driving_background != "keep" and names:
        _check_background_option(names)
    with _status("Loading model..."):
        pipeline = load_pipeline(
            model,
            names,
            device,
            dtype,
            conditioner_options={"transfer": transfer, "background": driving_background},
            loras=lora or [],
            memory=MemorySettings(offload, attention, vae_tiling, max_vram),
            speed=SpeedSettings(cache, cache_threshold, compile_blocks),
            parallel=parallel,
        )
    if driving_background != "keep":
        _check_background_option([c.name for c in pipeline.conditioners])
    load_seconds = time.perf_counter() - started
    try:
        with _StepProgress() as progress:
            summary = run_animate(
                reference,
                driving,
                output=output if main else None,
                pipeline=pipeline,
                callback=progress.update,
                model=model,
                prompt=text,
                negative_prompt=negative_prompt,
                steps=steps,
                guidance=guidance,
                motion_guidance=motion_guidance,
                conditioner_guidance=_parse_scales(conditioner_guidance),
                sampler=sampler,
                flow_shift=flow_shift,
                strength=strength,
                restore_detail=restore_detail,
                refine=_on_off("--refine", refine),
                start=start,
                scene=scene,
                seed=seed,
                size=output_size,
                fps=fps,
                max_frames=max_frames,
                fit=fit,
                window=window,
                overlap=overlap,
                colour_correction=colour_correction,
                pose=pose,
                reference_pose=reference_pose,
                audio=audio,
                sound=sound,
                mode=mode,
                mask=mask,
            )
    except BaseException:
        leave_parallel(meet=False)  # the others may be mid-step: do not wait for them
        raise
    summary.pop("result")
    summary["load_seconds"] = round(load_seconds, 3)
    del pipeline  # it holds the launch's process groups: they must go before the process does
    leave_parallel()
    if not main:
        return
    if json_output:
        console.print_json(summary)
    else:
        console.out.print(
            f"Wrote {summary['output']}: {summary['frames']} frames, {summary['width']}x{summary['height']} "
            f"at {summary['fps']:g} fps in {summary['seconds']:.1f} s"
            + (f", with the sound of {Path(summary['sound']).name}" if summary.get("sound") else "")
        )


def _parse_scales(items: list[str]) -> dict[str, float]:
    scales = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            scales[name.strip()] = float(value)
        except ValueError:
            raise InvalidOptionError(
                f"--conditioner-guidance '{item}': write NAME=SCALE, e.g. audio-face=2."
            ) from None
    return scales


def _check_output(output: Path) -> None:
    from charanim.io.atomic import check_output_file
    from charanim.io.video import WRITERS

    if output.is_dir():
        raise InvalidOptionError(f"Output '{output}' is a folder; give a file name such as out.mp4.")
    if output.suffix.lower() not in WRITERS:
        raise InvalidOptionError(
            f"Cannot write '{output}': the output must end in one of {', '.join(sorted(WRITERS))}."
        )
    check_output_file(output)


def _read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    if prompt is not None and prompt_file is not None:
        raise InvalidOptionError("Give --prompt or --prompt-file, not both.")
    if prompt_file is None:
        return prompt or ""
    if prompt_file.is_dir():
        raise InputFileError(f"Prompt file '{prompt_file}' is a folder; give a .txt or .json file.")
    if not prompt_file.is_file():
        raise InputFileError(f"Prompt file '{prompt_file}' does not exist.")
    text = prompt_file.read_text(encoding="utf-8", errors="replace")
    if prompt_file.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"Prompt file '{prompt_file}' is not valid JSON ({exc.msg}).") from None
        if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
            raise InputFileError(f"Prompt file '{prompt_file}' has no \"prompt\" string.")
        return data["prompt"]
    return text.strip()


def _on_off(option: str, value: str | None) -> bool | None:
    if value is None:
        return None
    if value not in ("on", "off"):
        raise InvalidOptionError(f"{option} must be on or off, got '{value}'.")
    return value == "on"


class _StepProgress:
    """A rich progress bar over windows x steps (hidden with -q or when not a terminal)."""

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console.err,
            disable=console.state.quiet or not console.err.is_terminal,
            transient=True,
        )
        self.progress.__enter__()
        self.task = None
        return self

    def update(self, window, step, steps, latents) -> None:
        if self.task is None:
            self.task = self.progress.add_task("Denoising", total=steps)
        self.progress.update(
            self.task, description=f"Denoising window {window.index + 1}", completed=step + 1, total=steps
        )

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


def _check_background_option(names: list[str]) -> None:
    """--driving-background means something only to conditioners constructed with it."""
    from charanim.conditioners import accepted_options
    from charanim.plugins import get_plugins

    registry = get_plugins().conditioners
    if not any(accepted_options(registry.get(n), {"background": "remove"}) for n in names):
        raise InvalidOptionError(
            f"--driving-background applies to conditioners that read the driving frames (rgb); this run uses {'+'.join(names)}."
        )


def _status(message: str):
    """A spinner on a terminal; nothing when piped (rich would print a blank line)."""
    import contextlib

    if console.state.quiet or not console.err.is_terminal:
        return contextlib.nullcontext()
    return console.err.status(message, spinner="dots")
