"""Help that reads at 80 columns (a pipe, CI logs, a narrow terminal).

Typer (0.29) keeps the single line breaks of a command's description, so source lines
wider than the terminal wrap into ragged ones; it wraps a long example command in the
middle, where a copied line no longer runs; and it shows a flag's type as ``<bool>`` and
a bounded number's as ``<int range> [x>=1]``, a type column wide enough to cut long
option names (``--conditioner-guidan…``). :func:`tidy_help` mends all three on a command
tree (Typer's vendored Click), once, before its help is shown.
"""

from __future__ import annotations

#: an example line longer than this is continued with a backslash
EXAMPLE_WIDTH = 76
#: how a continued example line is indented, past the command's own indent
CONTINUATION = "    "


def tidy_help(command) -> None:
    """Reflow ``command``'s description, wrap its examples and narrow its type column,
    and the same for every sub-command."""
    if getattr(command, "_charanim_tidied", False):
        return
    command._charanim_tidied = True
    if command.help:
        command.help = reflowed(command.help)
    if command.epilog:
        command.epilog = "\n".join(wrapped_example(line) for line in command.epilog.splitlines())
    for param in command.params:
        if getattr(param, "param_type_name", "") != "option" or param.metavar is not None:
            continue
        if param.is_flag:  # a flag takes no value: nothing to show
            param.metavar = ""
        elif getattr(param, "min", None) is not None or getattr(param, "max", None) is not None:
            param.metavar = f"<{param.bare_type()}>"  # the range is shown beside it anyway
    made_help_option = command.get_help_option  # --help is made when help is shown: no <bool> there either

    def help_option(ctx):
        option = made_help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def reflowed(text: str) -> str:
    """Each prose paragraph on one line (the terminal wraps it); indented blocks
    (examples, lists) kept line by line."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(
        p
        if any(line.startswith((" ", "\t", "-", "*")) for line in p.splitlines())
        else " ".join(p.split("\n"))
        for p in paragraphs
    )


def wrapped_example(line: str) -> str:
    """An indented example command wider than :data:`EXAMPLE_WIDTH`, continued with
    backslashes before an option (an option and its value stay on one line); a comment
    that does not fit after the command goes on a line of its own above it."""
    indent = line[: len(line) - len(line.lstrip())]
    if len(line) <= EXAMPLE_WIDTH or not indent:
        return line
    code, hash_, comment = line.partition("  # ")
    units: list[str] = []  # the command and its arguments, then each option with its values
    for token in code.split():
        starts_unit = (token.startswith("-") and len(token) > 1) or ("=" in token and token != "\\")
        if units and (not starts_unit or token == "\\"):
            units[-1] += " " + token
        else:
            units.append(token)
    lines, current = [], indent + units[0]
    for unit in units[1:]:
        if len(current) + 1 + len(unit) + 2 > EXAMPLE_WIDTH:
            lines.append(current + " \\")
            current = indent + CONTINUATION + unit
        else:
            current += " " + unit
    lines.append(current)
    if hash_:
        note = f"  # {comment.strip()}"
        if len(lines[-1]) + len(note) <= EXAMPLE_WIDTH:
            lines[-1] += note
        else:
            lines.insert(0, indent + note.strip())
    return "\n".join(lines)
