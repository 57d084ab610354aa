"""Option parsers shared by several commands."""

from __future__ import annotations

import re

import typer


def parse_size(value: str | None) -> tuple[int, int] | None:
    """``"832x480"`` -> (832, 480)."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", value)
    if not match:
        raise typer.BadParameter(
            f"'{value}' is not WIDTHxHEIGHT, e.g. 64x64 or 832x480.", param_hint="'--size'"
        )
    width, height = int(match.group(1)), int(match.group(2))
    if width < 1 or height < 1:
        raise typer.BadParameter(f"'{value}': width and height must be at least 1.", param_hint="'--size'")
    return width, height


# -q/-v/--debug work before or after the sub-command (charanim -q animate ... or
# charanim animate ... -q); each command passes them to console.apply().
QUIET = typer.Option(False, "--quiet", "-q", help="Only print results and errors.")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Also show the model libraries' own logs.")
DEBUG = typer.Option(False, "--debug", help="Show tracebacks (also CHARANIM_DEBUG=1).")
JSON = typer.Option(False, "--json", help="Print a machine-readable JSON result on stdout.")
