"""User-facing errors.

Everything a user can cause (a missing file, a corrupt video, an unknown plugin,
a bad option value) raises a subclass of :class:`CharanimError`. The CLI prints
its message as one line on stderr and exits with code 1; anything else is a bug
and is reported as an internal error (with the traceback under ``--debug``).
Messages are complete sentences that say what is wrong and, where there is one,
what to do about it.
"""

from __future__ import annotations


class CharanimError(Exception):
    """Base class of every error the user can fix."""


class InputFileError(CharanimError):
    """A file given on the command line is missing, unreadable, empty or corrupt."""


class UnsupportedFormatError(CharanimError):
    """A file exists but is of a kind charanim cannot read or write."""


class UnknownNameError(CharanimError):
    """A name (conditioner, backbone, model, metric...) that no plugin registered."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        choices = ", ".join(self.known) if self.known else "none are installed"
        super().__init__(f"Unknown {kind} '{name}'. Known {kind}s: {choices}.")


class ModelLoadError(CharanimError):
    """A model directory is missing, incomplete or of a family charanim does not know."""


class ConditionerInputError(CharanimError):
    """A conditioner cannot work with the inputs it was given (no pose found, no audio...)."""


class IncompatibleError(CharanimError):
    """Options or components that cannot be combined (e.g. two in-context conditioners)."""


class InvalidOptionError(CharanimError):
    """An option value that is well-formed but not acceptable (e.g. a size not divisible by 16)."""


class DeviceError(CharanimError):
    """The requested device is unavailable or ran out of memory."""


class CharanimWarning(UserWarning):
    """Something the user should know about a run that still goes ahead."""
