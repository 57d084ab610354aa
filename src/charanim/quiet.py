"""Silencing native libraries that log straight to file descriptor 2.

decord's C++ layer and MediaPipe's (absl, TF Lite) write to the process's stderr below
Python, so ``contextlib.redirect_stderr`` cannot catch them; the CLI's stderr is for our
own one-line messages and progress, so their chatter is sent to /dev/null while they run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null (and ignore Python warnings) inside the block."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_mediapipe_logs() -> None:
    """Ask MediaPipe's glog and TF Lite to log errors only (read when it is first imported)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
