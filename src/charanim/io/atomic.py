"""Atomic outputs: a file appears complete under its final name, or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from charanim.errors import CharanimError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps the destination's suffix because writers such as
    ffmpeg pick the container from it. On any exception the temporary file is
    removed and ``path`` is left exactly as it was.

    >>> with atomic_output("out.mp4") as tmp:
    ...     write_something(tmp)
    """
    final = check_output_file(path)
    parent = final.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; give the result the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output_file(path: str | os.PathLike[str], what: str = "Output") -> Path:
    """Fail early, in one line, where a file could not be written at ``path``: it is a
    folder, or its folder is missing, a file, or not writable. Commands call this before
    their work, so a bad ``-o`` costs nothing."""
    final = Path(path)
    if final.is_dir():
        raise CharanimError(f"{what} '{final}' is a folder; give a file name.")
    parent = final.parent if str(final.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise CharanimError(f"{what} '{final}': '{parent}' is a file, not a folder.")
    if not parent.is_dir():
        raise CharanimError(f"Output folder '{parent}' does not exist.")
    if not os.access(parent, os.W_OK):
        raise CharanimError(f"Output folder '{parent}' is not writable.")
    return final


def check_output_folder(path: str | os.PathLike[str], what: str = "Output folder") -> Path:
    """Fail early where a folder could not be made at ``path`` (with its parents): it, or
    the nearest of its parents that exists, is a file, or that parent is not writable."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CharanimError(f"{what} '{folder}' is a file; give a folder.")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing != folder and not existing.is_dir():
        raise CharanimError(f"{what} '{folder}': '{existing}' is a file, not a folder.")
    if not os.access(existing, os.W_OK):
        raise CharanimError(f"{what} '{folder}': '{existing}' is not writable.")
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
