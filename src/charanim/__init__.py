"""charanim: animate a character from one image and a driving video.

>>> import charanim
>>> charanim.animate("ref.png", "drive.mp4", output="out.mp4", model="charanim-tiny")

Heavy modules (torch, diffusers) load on first use, so ``import charanim`` and the
CLI's ``--help`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from charanim.hookspecs import hookimpl

__version__ = "0.1.0"

if TYPE_CHECKING:
    from charanim.api import animate, load_pipeline

__all__ = ["__version__", "animate", "hookimpl", "load_pipeline"]


def __getattr__(name: str) -> Any:
    if name in ("animate", "load_pipeline"):
        from charanim import api

        return getattr(api, name)
    raise AttributeError(f"module 'charanim' has no attribute {name!r}")
