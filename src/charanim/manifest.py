"""Reading a JSON-lines manifest (world, bootstrap, captions), one clear error per way it
can be wrong: every command that takes ``--manifest`` or ``--data`` reads it here."""

from __future__ import annotations

import json
from pathlib import Path

from charanim.errors import InputFileError


def read_manifest(path: str | Path, what: str = "Manifest") -> list[dict]:
    """The entries of ``path``, one JSON object per non-empty line."""
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{what} '{path}' is a folder; give its manifest.jsonl.")
    if not path.is_file():
        raise InputFileError(f"{what} '{path}' does not exist.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputFileError(f"{what} '{path}' is not text (a JSON-lines manifest).") from None
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{what} '{path}' line {number} is not valid JSON ({exc.msg}).") from None
        if not isinstance(entry, dict):
            raise InputFileError(f"{what} '{path}' line {number} is not an entry (a JSON object).")
        entries.append(entry)
    return entries
