"""``charanim caption``: a target-oriented prompt from the driving motion and the reference."""

from __future__ import annotations

from pathlib import Path

import typer

from charanim.cli import console, options

HELP = """Describe the motion of DRIVE and the look of --reference, and fuse them into a prompt for the target video: the reference character performing the driving motion (DreamActor-M2's target-oriented text guidance). Writes {motion, appearance, prompt, captioner, details} to -o, which 'charanim animate --prompt-file' reads.

The built-in captioner measures motion from keypoints (--pose, or the pose estimator) and appearance from pixels, and says only what it measured. --motion / --appearance replace either half and re-fuse. With --manifest it captions a whole training manifest into JSON lines (resumable) and scores itself against the world's true captions.
"""

EPILOG = """[bold]Examples[/]

  charanim caption drive.mp4 --reference ref.png -o prompt.json

  charanim caption drive.mp4 --pose drive.jsonl --reference ref.png --json

  charanim caption drive.mp4 --reference ref.png --appearance "a knight in red armour" -o prompt.json

  charanim caption --manifest data/world/manifest.jsonl -o data/world/captions.jsonl

  charanim caption drive.mp4 --reference ref.png --captioner vlm --model-dir ~/models/my-vlm -o prompt.json
"""


def caption(
    drive: Path | None = typer.Argument(None, help="Driving video (or image)."),
    reference: Path | None = typer.Option(
        None, "--reference", "-r", help="Reference image of the character."
    ),
    out: Path | None = typer.Option(
        None, "--output", "-o", help="Prompt JSON (or JSON lines with --manifest)."
    ),
    pose: Path | None = typer.Option(
        None, "--pose", help="Keypoints of the driving video (skips estimation)."
    ),
    reference_pose: Path | None = typer.Option(None, "--reference-pose", help="Keypoints of the reference."),
    motion: str | None = typer.Option(
        None, "--motion", help="Use this motion text instead of describing it."
    ),
    appearance: str | None = typer.Option(
        None, "--appearance", help="Use this appearance text instead of describing it."
    ),
    manifest: Path | None = typer.Option(
        None, "--manifest", help="Caption every sample of a training manifest."
    ),
    captioner_name: str = typer.Option(
        "heuristic", "--captioner", help="Captioner plugin: heuristic (no model) or vlm."
    ),
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Local vision-language model directory (vlm)."
    ),
    fusion_model_dir: Path | None = typer.Option(
        None,
        "--fusion-model-dir",
        help="Local language model for the fusion step (vlm; default: --model-dir).",
    ),
    fps: float = typer.Option(8.0, "--fps", help="Frame rate the driving video is read at."),
    max_frames: int = typer.Option(64, "--max-frames", min=1, help="At most this many driving frames."),
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    from charanim.captioning.run import caption_manifest, get_captioner
    from charanim.errors import InvalidOptionError

    console.apply(quiet, verbose, debug)
    if out is not None:  # before any work: a bad -o costs nothing
        from charanim.io.atomic import check_output_file

        check_output_file(out)
    console.silence_model_libraries()
    captioner = get_captioner(captioner_name, model_dir=model_dir, fusion_model_dir=fusion_model_dir)
    if manifest is not None:
        if out is None:
            raise InvalidOptionError("--manifest needs -o CAPTIONS.jsonl.")
        with console.progress("Captioning") as progress:
            summary = caption_manifest(captioner, manifest, out, on_progress=progress)
        console.print_json(summary) if json_output else console.out.print(
            f"{summary['captioned']} captions in {out}; motion labels agree with the truth on "
            f"{summary['motion_label_agreement']} of {summary['scored_against_ground_truth']} human samples"
        )
        return
    if drive is None and motion is None:
        raise InvalidOptionError("Give a driving video, --motion text, or --manifest.")
    result = _caption_one(
        captioner, drive, reference, pose, reference_pose, motion, appearance, fps, max_frames
    )
    if out is not None:
        import json

        from charanim.io.atomic import write_text_atomic

        write_text_atomic(out, json.dumps(result.as_dict(), indent=2) + "\n")
    if json_output or out is None:
        console.print_json(result.as_dict())
    else:
        console.out.print(f"Wrote {out}: {result.prompt}")


def _caption_one(captioner, drive, reference, pose, reference_pose, motion, appearance, fps, max_frames):
    from charanim.captioning.run import caption
    from charanim.errors import CharanimError
    from charanim.io.image import read_image
    from charanim.io.video import read_video
    from charanim.pose.estimate import estimate_sequence, get_estimator, keypoints_from

    frames = keypoints = None
    video_fps = fps
    if drive is not None and motion is None:
        from charanim.pose.extract import STILL_SUFFIXES

        if drive.suffix.lower() in STILL_SUFFIXES:
            image = read_image(drive)
            frames, size = image.rgb[None], image.size
        else:
            video = read_video(drive, fps=fps, max_frames=max_frames, max_side=512)
            frames, size, video_fps = video.frames, video.source_size, video.fps
        keypoints = keypoints_from(pose)
        if keypoints is None:
            try:
                keypoints = estimate_sequence(get_estimator(), frames, video_fps, size, str(drive))
            except CharanimError:  # no estimator installed: describe the global motion only
                keypoints = None
    image = alpha = reference_points = None
    if reference is not None and appearance is None:
        loaded = read_image(reference)
        image, alpha = loaded.rgb, loaded.alpha
        reference_points = keypoints_from(reference_pose)
        if reference_points is None:
            try:
                reference_points = estimate_sequence(
                    get_estimator(), image[None], 1.0, loaded.size, str(reference)
                )
            except CharanimError:
                reference_points = None
    return caption(
        captioner, frames, keypoints, video_fps, image, alpha, reference_points, motion, appearance
    )
