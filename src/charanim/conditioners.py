"""Conditioner instances, built as their model needs them.

A model may be trained with a conditioner set up otherwise than by default (the pose
maps' limb width, say). Its recipe names those settings (``conditioner_options``), its
charanim.json keeps them, and everything that drives the model (``animate``, ``bench``,
``synthesize bootstrap``, training and its tools) builds the conditioner with them, then
adds the options of the run (``--transfer`` ...) that the conditioner takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from charanim.errors import CharanimError


def accepted_options(cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """The run's options a conditioner's constructor takes (``transfer`` for pose, say);
    unset ones (None) are left to the conditioner's default."""
    parameters = _parameters(cls)
    return {key: value for key, value in options.items() if key in parameters and value is not None}


def check_trained_options(name: str, cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """A model's settings for conditioner ``name``: every one must be a constructor
    option (a typo would otherwise drive the model with settings it never saw)."""
    parameters = _parameters(cls)
    unknown = sorted(set(options) - parameters)
    if unknown:
        takes = ", ".join(sorted(parameters)) or "no options"
        raise CharanimError(
            f"conditioner_options.{name}.{unknown[0]}: the {name} conditioner takes no such option ({takes})."
        )
    return dict(options)


def create_conditioners(
    names: list[str],
    trained: Mapping[str, Mapping[str, Any]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> list:
    """The named conditioners, each with its ``trained`` settings, then the run's ``options``."""
    from charanim.plugins import get_plugins

    registry = get_plugins().conditioners
    made = []
    for name in names:
        cls = registry.get(name)
        settings = check_trained_options(name, cls, (trained or {}).get(name, {}))
        made.append(cls(**{**settings, **accepted_options(cls, options or {})}))
    return made


def check_options_for(names: list[str], trained: Mapping[str, Mapping[str, Any]]) -> None:
    """Settings for a conditioner the model does not use are a mistake too."""
    from charanim.plugins import get_plugins

    registry = get_plugins().conditioners
    for name, options in trained.items():
        if name not in names:
            raise CharanimError(
                f"conditioner_options.{name}: the recipe's conditioners are {', '.join(names)}, not {name}."
            )
        check_trained_options(name, registry.get(name), options)


def _parameters(cls: type) -> set[str]:
    return {
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
