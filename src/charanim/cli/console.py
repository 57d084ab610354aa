"""Where output goes: results to stdout (plain or JSON), everything else to stderr.

rich degrades to plain text when stderr is not a terminal, so logs piped into a
file stay readable; ``--json`` output on stdout is never mixed with anything else.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from rich.console import Console


@dataclass
class Verbosity:
    quiet: bool = False
    verbose: bool = False
    debug: bool = False


state = Verbosity()
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """The one line every user error is reduced to."""
    first = " ".join(str(message).split()) or "unknown error"
    err.print(f"[bold red]error:[/] {first}", markup=True, highlight=False) if err.is_terminal else print(
        f"error: {first}", file=sys.stderr
    )


def info(message: str) -> None:
    if not state.quiet:
        err.print(message, highlight=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def apply(quiet: bool, verbose: bool, debug: bool) -> None:
    """Add a command's own -q/-v/--debug to those given before the command."""
    configure(state.quiet or quiet, state.verbose or verbose, state.debug or debug)


def configure(quiet: bool, verbose: bool, debug: bool) -> None:
    """Apply -q/-v/--debug: warnings as one line each, library chatter off unless -v."""
    state.quiet, state.verbose, state.debug = quiet, verbose, debug

    def show(message, category, filename, lineno, file=None, line=None):
        if state.quiet:
            return
        text = " ".join(str(message).split())
        if err.is_terminal:
            err.print(f"[yellow]warning:[/] {text}", markup=True, highlight=False)
        else:
            print(f"warning: {text}", file=sys.stderr)

    warnings.showwarning = show
    if not debug:
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    _quiet_libraries(verbose)


def _quiet_libraries(verbose: bool) -> None:
    """diffusers/transformers log and draw tqdm bars while loading; ours say enough.
    The environment variables reach them if they are imported later in the process."""
    import os

    level = logging.INFO if verbose else logging.ERROR
    for name in ("diffusers", "transformers", "accelerate", "huggingface_hub", "peft"):
        logging.getLogger(name).setLevel(level)
    if verbose:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def silence_model_libraries() -> None:
    """Call after importing diffusers/transformers (model loading) unless -v."""
    if state.verbose:
        return
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


class progress:
    """A rich progress bar fed ``(done, total)``; hidden with -q or when stderr is not a terminal.

    >>> with progress("Rendering") as update:
    ...     update(3, 10)
    """

    def __init__(self, description: str):
        self.description = description

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=state.quiet or not err.is_terminal,
            transient=True,
        )
        self.bar.__enter__()
        self.task = self.bar.add_task(self.description, total=None)
        return self.update

    def update(self, done: int, total: int | None = None, description: str | None = None) -> None:
        self.bar.update(
            self.task, completed=done, total=total, **({"description": description} if description else {})
        )

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)
