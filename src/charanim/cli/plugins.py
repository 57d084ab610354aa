"""``charanim plugins``: what is installed, what each plugin registered, what failed;
``charanim plugins new``: start a conditioner plugin of your own."""

from __future__ import annotations

from pathlib import Path

import typer

from charanim.cli import console, options

HELP = """List installed plugins, their versions, what each registered, and load errors.

Builtins register through the same hooks as third-party plugins. Restrict what
loads with CHARANIM_PLUGINS=name1,name2 (only these) or
CHARANIM_DISABLE_PLUGINS=name (all but these).
"""

EPILOG = """[bold]Examples[/]

  charanim plugins

  charanim plugins --json | jq '.plugins[] | select(.errors != [])'

  CHARANIM_DISABLE_PLUGINS=rgb charanim plugins

  charanim plugins new depth -o charanim-depth      # a working plugin to start from
"""

app = typer.Typer(help=HELP, epilog=EPILOG, invoke_without_command=True, rich_markup_mode="rich")


@app.callback()
def plugins(
    ctx: typer.Context,
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from charanim.plugins import get_plugins

    console.apply(quiet, verbose, debug)
    loaded = get_plugins()
    loaded.load_all()
    infos = [info.as_dict() for info in loaded.infos.values()]
    if json_output:
        console.print_json({"plugins": infos})
        return
    from rich.table import Table

    table = Table(title="charanim plugins", show_lines=False)
    for column in ("plugin", "version", "registered", "status"):
        table.add_column(column)
    for info in infos:
        registered = (
            "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info["registered"].items()) or "-"
        )
        status = "[red]" + " | ".join(info["errors"]) + "[/]" if info["errors"] else "ok"
        name = info["name"] + (" (builtin)" if info["builtin"] else "")
        table.add_row(name, info["version"] or "?", registered, status)
    console.out.print(table)


NEW_HELP = """Write a new conditioner plugin distribution to start from.

The folder is a complete package: pyproject.toml with the 'charanim' entry point,
the plugin module, a conditioner that already works (the driving video's edge map,
in the in-context layout) and tests running charanim's shared conditioner contract.
Install it with 'pip install -e DIR'; then 'charanim plugins' lists it and
'charanim animate --conditioner NAME' uses it. See docs/plugins.md.
"""

NEW_EPILOG = """[bold]Examples[/]

  charanim plugins new line-art -o charanim-line-art
  pip install -e charanim-line-art && python -m pytest charanim-line-art
  charanim animate ref.png drive.mp4 -o out.mp4 --conditioner line-art --model my-model
"""


@app.command("new", help=NEW_HELP, epilog=NEW_EPILOG)
def new(
    name: str = typer.Argument(..., help="Conditioner name (lower case, digits, hyphens), e.g. line-art."),
    out: Path = typer.Option(..., "--output", "-o", help="Folder to create (must not exist, or be empty)."),
    description: str = typer.Option(
        "edge map of the driving video", "--description", help="One line on what it conditions on."
    ),
    json_output: bool = options.JSON,
) -> None:
    from charanim.scaffold import new_conditioner_plugin

    written = new_conditioner_plugin(name, out, description)
    if json_output:
        console.print_json({"name": name, "output": str(out), "files": [str(p) for p in written]})
        return
    for path in written:
        console.out.print(f"  {path}")
    console.out.print(f"Next: pip install -e {out} && python -m pytest {out}")
