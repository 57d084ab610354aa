"""``charanim plugins``: what is installed, what each plugin registered, what failed."""

from __future__ import annotations

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
"""


def plugins(
    json_output: bool = options.JSON,
    quiet: bool = options.QUIET,
    verbose: bool = options.VERBOSE,
    debug: bool = options.DEBUG,
) -> None:
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
