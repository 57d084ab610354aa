"""The ``charanim`` Typer app, its global options, and the one place errors are formatted.

Exit codes: 0 success; 1 a user error (one line on stderr: missing file, bad value,
unknown plugin, out of memory...); 2 a usage error (unknown option, bad syntax);
130 interrupted. Internal errors are also one line unless ``--debug`` (or
``CHARANIM_DEBUG=1``) asks for the traceback; with it, a user error's traceback is printed
above its line too.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer
from typer.core import TyperGroup

from charanim import __version__
from charanim.cli import console, options
from charanim.cli.help_format import tidy_help
from charanim.errors import CharanimError

HELP = """Animate a character from one image and a driving video.

Give a reference image (a person, an animal, a cartoon, a sprite) and a video whose motion it should perform: [bold]charanim animate ref.png drive.mp4 -o out.mp4[/]

Every command has --help with examples, and --json for scripts.
"""


class CharanimGroup(TyperGroup):
    """Turns exceptions from any sub-command into one line and an exit code, and makes
    every command's help read at 80 columns (:mod:`charanim.cli.help_format`)."""

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            tidy_help(command)
        return command

    def format_help(self, ctx, formatter):
        tidy_help(self)
        return super().format_help(ctx, formatter)

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Usage errors (an unknown option, a value out of range) as one line too, not
        Typer's boxed panel; exit 2 as Click says. ``charanim`` alone still prints help."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            console.error("Aborted.")
            sys.exit(1)
        except typer.TyperException as exc:  # Typer's (vendored Click's) usage errors
            if type(exc).__name__ == "NoArgsIsHelpError":  # a command given nothing: its help
                exc.show()
            else:
                context = getattr(exc, "ctx", None)
                hint = f" (see '{context.command_path} --help')" if context is not None else ""
                console.error(exc.format_message() + hint)
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors: Typer prints them, exit 2
            raise
        except CharanimError as exc:
            if console.state.debug:  # where it was raised, for a bug report; the one line follows
                traceback.print_exc()
            console.error(str(exc))
            ctx.exit(getattr(exc, "exit_code", 1))  # a stopped run: 128 + the signal, as shells say
        except KeyboardInterrupt:
            console.error("Interrupted.")
            ctx.exit(130)
        except MemoryError:
            console.error(_out_of_memory("RAM", ctx.invoked_subcommand))
            ctx.exit(1)
        except Exception as exc:
            if _is_out_of_memory(exc):
                console.error(_out_of_memory("GPU memory", ctx.invoked_subcommand))
                ctx.exit(1)
            if console.state.debug:
                raise
            console.error(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback "
                "and please report it)"
            )
            ctx.exit(1)


def _is_out_of_memory(exc: Exception) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _out_of_memory(what: str, command: str | None = None) -> str:
    """One line, with the levers of the command that ran out."""
    if command == "train":
        return (
            f"Out of {what}. Lower training.batch_size (raise training.gradient_accumulation to keep the "
            "batch), set training.gradient_checkpointing=true, or training.mixed_precision=bf16 on GPU."
        )
    if command == "animate" and what != "RAM":
        return (
            f"Out of {what}. Try --offload model (or group), --max-vram GIB, --vae-tiling, a smaller --size "
            "or a shorter --window, or --dtype bfloat16."
        )
    return (
        f"Out of {what}. Try a smaller --size, fewer --max-frames or a shorter --window, "
        "or --dtype bfloat16 on GPU."
    )


app = typer.Typer(
    name="charanim",
    cls=CharanimGroup,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"charanim {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    console.configure(quiet, verbose, debug or os.environ.get("CHARANIM_DEBUG") == "1")


def _register_commands() -> None:
    from charanim.cli import animate, bench, caption, extract_pose, plugins, synthesize, train
    from charanim.plugins import get_plugins

    app.command("animate", help=animate.HELP, epilog=animate.EPILOG, no_args_is_help=True)(animate.animate)
    app.command("extract-pose", help=extract_pose.HELP, epilog=extract_pose.EPILOG, no_args_is_help=True)(
        extract_pose.extract_pose
    )
    app.command("caption", help=caption.HELP, epilog=caption.EPILOG, no_args_is_help=True)(caption.caption)
    app.command("train", help=train.HELP, epilog=train.EPILOG, no_args_is_help=True)(train.train)
    app.add_typer(synthesize.app, name="synthesize", help=synthesize.HELP)
    app.add_typer(bench.app, name="bench", help=bench.HELP)
    app.add_typer(plugins.app, name="plugins", help=plugins.HELP)
    get_plugins().add_commands(app)


# Plugins load (and may warn) while the app is built, before options are parsed.
console.configure(False, False, os.environ.get("CHARANIM_DEBUG") == "1")
_register_commands()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="charanim")


if __name__ == "__main__":  # python -m charanim.cli.app
    sys.exit(main())
