"""``charanim extract-pose``: body, hand and face keypoints of a video or an image."""

from __future__ import annotations

from pathlib import Path

import typer

from charanim.cli import console, options

HELP = """Find body, hand and face keypoints in every frame of SOURCE (a video, a folder of frames, or an image) and write them to -o: .jsonl (charanim's keypoint format), .npz, or OpenPose JSON (a .json file or a folder, for DWPose/ComfyUI tools).

Coordinates are in pixels of the source. Frames without a person are recorded as empty (never invented); --interpolate fills short gaps and --smooth removes jitter (a One-Euro filter). The default estimator is MediaPipe Holistic, which runs offline.
"""

EPILOG = """[bold]Examples[/]

  charanim extract-pose drive.mp4 -o drive.jsonl

  charanim extract-pose drive.mp4 -o drive.jsonl --render skeleton.mp4 --overlay --smooth

  charanim extract-pose ref.png -o ref.jsonl --json

  charanim extract-pose drive.mp4 -o openpose/ --fps 8 --max-frames 64   # a folder of OpenPose JSON

  charanim animate ref.png drive.mp4 --pose drive.jsonl -o out.mp4
"""


def extract_pose(
    source: Path = typer.Argument(..., help="Video, folder of frames, or image."),
    out: Path = typer.Option(
        ...,
        "--output",
        "-o",
        help="Keypoints: .jsonl, .npz, .json (OpenPose list) or a folder (OpenPose per frame).",
    ),
    render: Path | None = typer.Option(
        None, "--render", help="Also write a skeleton video (OpenPose colours)."
    ),
    overlay: bool = typer.Option(False, "--overlay", help="Draw the skeletons over the frames in --render."),
    fps: float | None = typer.Option(
        None, "--fps", help="Sample the video at this frame rate (default: the source's)."
    ),
    max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="At most this many frames."),
    smooth: bool = typer.Option(False, "--smooth", help="Remove jitter with a One-Euro filter."),
    interpolate: bool = typer.Option(
        False, "--interpolate", help="Fill frames where a joint is missing between two detections."
    ),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="Write a file even if no person is found."),
    hands: bool = typer.Option(True, "--hands/--no-hands", help="Hand keypoints (21 per hand)."),
    face: bool = typer.Option(True, "--face/--no-face", help="Face keypoints (mesh contours)."),
    estimator: str = typer.Option("mediapipe", "--estimator", help="Pose estimator plugin."),
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    from charanim.errors import UnsupportedFormatError
    from charanim.io.atomic import check_output_file, check_output_folder
    from charanim.pose.extract import ExtractOptions, render_skeleton_video
    from charanim.pose.extract import extract_pose as run_extract

    console.apply(quiet, verbose, debug)
    suffix = out.suffix.lower()
    if suffix not in (".jsonl", ".npz", ".json", ""):
        raise UnsupportedFormatError(
            f"-o must end in .jsonl, .npz or .json, or name a folder; got '{out.name}'."
        )
    if suffix:
        check_output_file(out)
    else:  # a folder of OpenPose JSON files, one per frame
        check_output_folder(out)
    if render is not None:  # checked before the work too: a bad --render leaves no -o behind
        from charanim.io.video import WRITERS

        if render.suffix.lower() not in WRITERS:
            raise UnsupportedFormatError(
                f"--render must end in one of {', '.join(sorted(WRITERS))}; got '{render.name}'."
            )
        check_output_file(render, "--render")
    chosen = ExtractOptions(estimator, fps, max_frames, smooth, interpolate, allow_empty, hands, face)
    with console.progress("Finding poses") as progress:
        progress(0, None)
        sequence, frames, summary = run_extract(source, chosen)
    if suffix in (".json", ""):
        from charanim.pose.openpose import save_openpose

        save_openpose(sequence, out)
    else:
        sequence.save(out)
    summary["output"] = str(out)
    if render is not None:
        summary["render"] = str(render_skeleton_video(sequence, frames, render, overlay))
    if json_output:
        console.print_json(summary)
    else:
        console.out.print(
            f"Wrote {out}: {summary['frames_with_person']} of {summary['frames']} frames with a person, "
            f"mean confidence {summary['mean_confidence']:.2f}, {summary['seconds']:.1f} s"
        )
