"""Stopping a training run cleanly on Ctrl-C or ``kill`` (SIGINT / SIGTERM).

The first signal lets the current step finish; the loop then writes a checkpoint of
that step and raises :class:`TrainingStopped` (exit code 128 + the signal's number,
as shells report it), so ``--resume`` continues exactly where it stopped instead of
from the last periodic checkpoint. A second signal interrupts at once. In a
multi-process run every process stops at the same step (the flag is shared every
step): one process leaving early would leave the others waiting in a collective.
"""

from __future__ import annotations

import signal
import threading

from charanim.errors import CharanimError
from charanim.training import distributed

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(CharanimError):
    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopOnSignal:
    """Context manager: ``should_stop(group)`` turns true once a stop signal arrived."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():  # handlers live there only
            for sig in SIGNALS:
                if signal.getsignal(sig) is signal.SIG_IGN:  # e.g. SIGINT of a background job: keep ignoring
                    continue
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # asked twice: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def should_stop(self, group: distributed.Group) -> bool:
        return distributed.any_true(self.signum is not None, group)

    def stopped(self, step: int, checkpoint) -> TrainingStopped:
        name = signal.Signals(self.signum or signal.SIGINT).name
        return TrainingStopped(
            f"Stopped by {name} after step {step}; checkpoint {checkpoint} written. "
            "Continue with the same command and --resume (or export it with --export).",
            self.signum or signal.SIGINT,
        )
