"""``charanim synthesize``: training data. ``world`` renders procedural cross-identity pairs
with ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from charanim.cli import console, options
from charanim.cli.options import parse_size

#: the smallest world frame side: below it a character has no room for its limbs
MIN_WORLD_SIDE = 16

HELP = (
    "Make training data: procedural pairs with ground truth (world) and self-bootstrapped pairs (bootstrap)."
)

WORLD_HELP = """Render procedural characters performing motions: for every sample, character A's driving video, character B's reference image in another pose, and the truth: B performing A's motion, with keypoints, masks and captions.

Output: OUT/manifest.jsonl (one line per sample) and OUT/shards/*.npz. Every sample depends only on --seed and its index, so a killed run continues where it stopped when rerun, and --shard i/n splits the work across processes or machines.
"""

WORLD_EPILOG = """[bold]Examples[/]

  charanim synthesize world -o data/world --count 1000

  charanim synthesize world -o data/world --count 5000 --workers 2 --size 64x64 --frames 16 --preview 8

  charanim synthesize world -o data/world --count 5000 --shard 0/4   # on machine 0 of 4

  charanim synthesize world -o data/quads --count 200 --body-plans quadruped,bird --json

  charanim synthesize world -o data/world-relative --count 6000 --reference-pose first-frame
"""

app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode="rich")


@app.command("world", help=WORLD_HELP, epilog=WORLD_EPILOG, no_args_is_help=True)
def world(
    out: Path = typer.Option(..., "--output", "-o", help="Output folder (created; rerunning continues it)."),
    count: int = typer.Option(1000, "--count", "-n", min=1, help="Number of samples."),
    seed: int = typer.Option(0, "--seed", help="World seed: the same seed gives identical files."),
    size: str = typer.Option("64x64", "--size", help="Frame WIDTHxHEIGHT."),
    frames: int = typer.Option(16, "--frames", min=1, help="Frames per video."),
    fps: float = typer.Option(8.0, "--fps", min=0.1, help="Frame rate the motions are sampled at."),
    body_plans: str = typer.Option(
        "humanoid,quadruped,bird,blob",
        "--body-plans",
        show_default=False,
        help="Comma-separated body plans to use (default: all of humanoid, quadruped, bird, blob).",
    ),
    motions: str | None = typer.Option(None, "--motions", help="Comma-separated motions (default: all)."),
    cross_plan: float = typer.Option(
        0.15, "--cross-plan", min=0.0, max=1.0, help="Probability that B has another body plan than A."
    ),
    one_to_many: float = typer.Option(
        0.25,
        "--one-to-many",
        min=0.0,
        max=1.0,
        help="Share of samples in groups of 3 sharing one driving video.",
    ),
    test_fraction: float = typer.Option(
        0.05, "--test-fraction", min=0.0, max=1.0, help="Share of groups in the test split."
    ),
    duets: float = typer.Option(
        0.0,
        "--duets",
        min=0.0,
        max=1.0,
        help="Probability that a sample shows two characters side by side, each with its own motion "
        "(several characters in one frame; their keypoints are stored per person).",
    ),
    audio: bool = typer.Option(
        False,
        "--audio",
        help="Give every driving clip a 16 kHz sound track: talking characters' voices follow their "
        "mouths (for the audio-face conditioner); the others are silent.",
    ),
    reference_pose: str = typer.Option(
        "other",
        "--reference-pose",
        help="How the reference image poses the target character: 'other' (a moment of another "
        "motion: absolute motion transfer) or 'first-frame' (as the target starts: relative motion "
        "transfer, what the RGB conditioner's flow warp expects).",
    ),
    shard_size: int = typer.Option(50, "--shard-size", min=1, help="Samples per shard file."),
    shard: str = typer.Option("0/1", "--shard", help="Make only shards i, i+n, i+2n... of n (i/n)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes rendering in parallel."),
    preview: int = typer.Option(
        0, "--preview", min=0, help="Also write OUT/preview.mp4 of the first N samples."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Delete the shards already in OUT and start again."
    ),
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    from charanim.errors import InvalidOptionError
    from charanim.synthetic.bodies import PLANS
    from charanim.synthetic.motions import MOTIONS
    from charanim.synthetic.samples import WorldConfig
    from charanim.synthetic.world import WorldJob, run_world, write_preview

    console.apply(quiet, verbose, debug)
    plans = _names(body_plans, PLANS, "body plan")
    motion_names = _names(motions, MOTIONS, "motion") if motions else None
    width, height = parse_size(size)
    if min(width, height) < MIN_WORLD_SIDE:
        raise InvalidOptionError(
            f"--size {size}: a world's frames must be at least {MIN_WORLD_SIDE}x{MIN_WORLD_SIDE} (its characters need the room)."
        )
    try:
        part, parts = (int(v) for v in shard.split("/"))
    except ValueError:
        raise InvalidOptionError(f"--shard must look like i/n (e.g. 0/4), got '{shard}'.") from None
    config = WorldConfig(
        size=(width, height),
        frames=frames,
        fps=fps,
        body_plans=plans,
        cross_plan=cross_plan,
        motions=motion_names,
        duets=duets,
        audio=audio,
        reference_pose=reference_pose,
    )
    job = WorldJob(out, count, seed, config, shard_size, (part, parts), workers, test_fraction, one_to_many)
    with console.progress("Rendering world") as progress:
        summary = run_world(job, overwrite=overwrite, on_progress=progress)
    if preview:
        summary["preview"] = str(write_preview(out, preview, fps))
    if json_output:
        console.print_json(summary)
    else:
        rate = f", {summary['samples_per_second']} samples/s" if summary["samples_per_second"] else ""
        console.out.print(
            f"{summary['samples']} samples in {summary['manifest']} ({summary['generated']} new{rate}; "
            f"splits {summary['splits']})"
        )


def _names(text: str, known: dict, kind: str) -> tuple[str, ...]:
    from charanim.errors import UnknownNameError

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if name not in known:
            raise UnknownNameError(kind, name, list(known))
    if not names:
        raise UnknownNameError(kind, text, list(known))
    return names


BOOTSTRAP_HELP = """Make pseudo cross-identity pairs with a pose model (DreamActor-M2's self-bootstrapping): the model animates other characters with real motions, quality filters score every result, and the ones that pass become training triplets whose target is the real clip.

--driving and --references take a manifest (e.g. a world's) or a folder (videos / images; keypoints from NAME.pose.jsonl beside each file, or the pose estimator). Every candidate and its scores are kept in OUT/candidates.jsonl; rerunning with other --min-score / --keep-top refilters without generating again.
"""

BOOTSTRAP_EPILOG = """[bold]Examples[/]

  charanim synthesize bootstrap --model runs/stage1/model --driving data/world/manifest.jsonl \\
      --references data/world/manifest.jsonl -o data/bootstrap --count 2000

  charanim synthesize bootstrap --model runs/stage1/model --driving clips/ --references characters/ \\
      -o data/bootstrap --count 500 --min-score 0.6 --keep-top 0.8 --json
"""


@app.command("bootstrap", help=BOOTSTRAP_HELP, epilog=BOOTSTRAP_EPILOG, no_args_is_help=True)
def bootstrap(
    model: str = typer.Option(..., "--model", "-m", help="A pose-based model (name or directory)."),
    driving: Path = typer.Option(..., "--driving", help="Real motions: a manifest, or a folder of videos."),
    references: Path = typer.Option(
        ..., "--references", help="Other characters: a manifest, or a folder of images."
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Output folder (rerunning continues it)."),
    count: int = typer.Option(1000, "--count", "-n", min=1, help="Candidates to generate."),
    seed: int = typer.Option(0, "--seed", help="Which sources and characters are paired."),
    steps: int | None = typer.Option(
        None, "--steps", min=1, help="Denoising steps per candidate. Default: the model's."
    ),
    min_score: float = typer.Option(
        0.5, "--min-score", min=0.0, max=1.0, help="Keep candidates scoring at least this."
    ),
    keep_top: float = typer.Option(
        1.0, "--keep-top", min=0.0, max=1.0, help="Then keep this share of the best."
    ),
    shard_size: int = typer.Option(20, "--shard-size", min=1, help="Candidates per shard file."),
    shard: str = typer.Option("0/1", "--shard", help="Make only shards i, i+n... of n (i/n)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    from charanim.errors import InvalidOptionError
    from charanim.synthesis.bootstrap import BootstrapJob, run_bootstrap

    console.apply(quiet, verbose, debug)
    console.silence_model_libraries()
    try:
        part, parts = (int(v) for v in shard.split("/"))
    except ValueError:
        raise InvalidOptionError(f"--shard must look like i/n (e.g. 0/4), got '{shard}'.") from None
    job = BootstrapJob(
        model,
        driving,
        references,
        out,
        count,
        seed,
        steps,
        min_score,
        keep_top,
        shard_size,
        (part, parts),
        device,
    )
    with console.progress("Bootstrapping") as progress:
        summary = run_bootstrap(job, on_progress=progress)
    if json_output:
        console.print_json(summary)
    else:
        console.out.print(
            f"kept {summary['kept']} of {summary['scored']} scored candidates ({summary['candidates']} in all) "
            f"in {summary['manifest']}; scores before {summary['score_histogram_before']}, after {summary['score_histogram_after']}"
        )
