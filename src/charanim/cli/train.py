"""``charanim train``: a YAML recipe (plus key=value overrides) -> a trained model in RUN_DIR."""

from __future__ import annotations

from pathlib import Path

import typer

from charanim.cli import console, options

HELP = """Train a model from a recipe (recipes/*.yaml); key=value arguments override recipe keys.

The run folder gets recipe.yaml (resolved), log.jsonl, checkpoints/ (every checkpoint.every steps), samples/ (validation videos) and, at the end, model/: a model directory 'charanim animate --model' loads. A killed run continues exactly with --resume. Ctrl-C or SIGTERM stops cleanly: the step in progress finishes, a checkpoint of it is written, and the exit code is 130 (SIGINT) or 143 (SIGTERM); press Ctrl-C twice to stop at once.
"""

EPILOG = """[bold]Examples[/] (in order: each tiny recipe reads what the one before made)

  charanim synthesize world -o data/world --count 6000 --workers 2   # the data every tiny recipe reads

  charanim train recipes/tiny/stage1-pose.yaml -o runs/check --dry-run \\
      model.init=src/charanim/assets/models/charanim-tiny   # validate, print the resolved recipe

  charanim train recipes/tiny/vae.yaml -o runs/tiny-vae

  charanim train recipes/tiny/vae-decoder.yaml -o runs/tiny-vae-decoder   # its decoder only, latents kept

  charanim train recipes/tiny/stage1-pose.yaml -o runs/stage1 training.steps=20000 training.batch_size=8

  charanim train recipes/tiny/stage1-pose.yaml -o runs/stage1 --resume

  charanim train recipes/tiny/stage1-pose.yaml -o runs/stage1 --export   # the latest checkpoint as runs/stage1/model
"""


def train(
    recipe_file: Path = typer.Argument(..., help="Recipe YAML file."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. optim.lr=3e-4."),
    out: Path = typer.Option(..., "--output", "-o", help="Run folder."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run folder's latest checkpoint."),
    force: bool = typer.Option(False, "--force", help="Resume (or --export) even if the recipe changed."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the recipe and data, print the resolved recipe, train nothing."
    ),
    export: bool = typer.Option(
        False,
        "--export",
        help="Export the run's latest checkpoint as RUN/model and exit (safe while it trains).",
    ),
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    from charanim.config import resolve, to_yaml
    from charanim.io.atomic import check_output_folder
    from charanim.training.recipe import Recipe
    from charanim.training.trainer import check_recipe
    from charanim.training.trainer import train as run_training

    console.apply(quiet, verbose, debug)
    check_output_folder(out, "Run folder")  # before any work: a bad -o costs nothing
    recipe = resolve(Recipe, recipe_file, overrides or [])
    if dry_run:
        check_recipe(recipe)
        if json_output:
            from charanim.config import to_dict

            console.print_json({"recipe": to_dict(recipe), "valid": True})
        else:
            console.out.print(to_yaml(recipe), end="")
        return
    console.silence_model_libraries()
    if export:
        from charanim.training.trainer import export_latest

        summary = export_latest(recipe, out, force=force)
        console.print_json(summary) if json_output else console.out.print(
            f"Exported step {summary['steps']} to {summary['model']}"
        )
        return
    if resume and not export:
        from charanim.training.checkpoint import list_checkpoints

        if not list_checkpoints(out):  # scripts pass --resume on every start: begin the run
            console.info(f"'{out}' has no checkpoint yet; starting at step 0.")
    with _TrainProgress(recipe.training.steps) as progress:
        summary = run_training(recipe, out, resume=resume, force=force, on_progress=progress.update)
    if json_output:
        console.print_json(summary)
    else:
        console.out.print(
            f"Trained {summary['trained_steps']} steps ({summary['steps']} in all) in {summary['seconds']:.0f} s; "
            f"model in {summary['model']}"
        )


class _TrainProgress:
    """A live bar with the loss on a terminal; a log line every 10 % of the run otherwise."""

    def __init__(self, total: int):
        self.total = total
        self.next_line = 0
        self.stage: str | None = None  #: work before training's first step, while it runs

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.live = console.err.is_terminal and not console.state.quiet
        self.bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=console.err,
            disable=not self.live,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task("Training", total=self.total, loss="-", speed="")
        return self

    def update(self, step: int, total: int, record: dict) -> None:
        if "stage" in record:  # work before the first step (sampling a decoder's pairs)
            self._stage(record["stage"], step, total)
            return
        if self.stage is not None:  # its timing says nothing of the steps': start the bar anew
            self.stage, self.next_line = None, 0
            self.bar.reset(self.task, description="Training", total=total, loss="-", speed="")
        loss = f"{record['loss_smooth']:.4f}"
        self.bar.update(
            self.task,
            completed=step,
            total=total,
            loss=loss,
            speed=f"{record['seconds_per_step']:.2f} s/step",
        )
        if not self.live and not console.state.quiet and step >= self.next_line:
            console.info(f"step {step}/{total} loss {loss} ({record['seconds_per_step']:.2f} s/step)")
            self.next_line = step + max(1, total // 10)

    def _stage(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stage, self.next_line = stage, 0
            self.bar.reset(self.task, description=stage, total=total, loss="-", speed="")
        self.bar.update(self.task, completed=done, total=total)
        if not self.live and not console.state.quiet and done >= self.next_line:
            console.info(f"{stage.lower()}: {done}/{total}")
            self.next_line = done + max(1, total // 10)

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)
