"""The plugin author's reference: every hook charanim calls.

A plugin is a module (usually a package installed from PyPI) with functions
decorated by ``charanim.hookimpl`` whose names match the specs below, exposed
through an entry point in the ``charanim`` group::

    # pyproject.toml of your plugin
    [project.entry-points.charanim]
    my_plugin = "my_plugin.plugin"

    # my_plugin/plugin.py
    import charanim

    @charanim.hookimpl
    def charanim_register_conditioners(register):
        from my_plugin.conditioner import DepthConditioner   # import heavy code lazily
        register(DepthConditioner)

Every ``charanim_register_*`` hook receives a ``register`` callable. Call it once
per thing you provide; charanim records which plugin registered what (shown by
``charanim plugins``). charanim's own backbones and conditioners register through
these same hooks, so a plugin can do anything they do. Keep module top levels
light (no torch import): plugin modules are imported when the CLI starts, the
hooks are only called when a registry is first needed.

A plugin that raises while importing or registering is reported by
``charanim plugins`` and as a warning; the other plugins keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

hookspec = pluggy.HookspecMarker("charanim")
hookimpl = pluggy.HookimplMarker("charanim")


@hookspec
def charanim_register_conditioners(register: Callable[..., None]) -> None:
    """Register motion conditioners: ``register(ConditionerClass)``.

    The class subclasses :class:`charanim.conditioning.Conditioner`: it has a unique
    ``name`` (what users pass to ``--conditioner``), a ``kind`` (``pose``, ``rgb``,
    ``audio``, ``face``...), the ``needs`` it requires (``video``, ``audio``,
    ``keypoints``), an injection ``site`` (``in_context``, ``channels``, ``tokens``
    or ``residual``), ``prepare()`` that turns the driving inputs into a
    :class:`~charanim.conditioning.Condition`, and ``augment()`` for training.
    Test it with :class:`charanim.testing.ConditionerContract`.
    """


@hookspec
def charanim_register_backbones(register: Callable[..., None]) -> None:
    """Register model families: ``register(BackboneFamilyClass)``.

    A family (subclass of :class:`charanim.models.backbones.BackboneFamily`) knows
    how to recognise a model directory (``can_load(path)``), load it from local files
    only (``load(path, device, dtype)``) into a
    :class:`~charanim.models.backbones.Backbone`, and which model names it provides
    (``named_models()``, e.g. ``charanim-tiny``).
    """


@hookspec
def charanim_register_pose_estimators(register: Callable[..., None]) -> None:
    """Register 2D pose estimators: ``register(EstimatorClass)``.

    An estimator has a ``name`` and ``estimate(frames) -> keypoints`` in the format
    of ``charanim.pose`` (body, hands, face per frame and person, in source pixels).
    Estimators that need weights take a local path and must say clearly when it is
    missing: no code path may download weights.
    """


@hookspec
def charanim_register_captioners(register: Callable[..., None]) -> None:
    """Register captioners: ``register(CaptionerClass)``.

    A captioner describes the driving motion and the reference's appearance and fuses
    them into a target-oriented prompt (``{motion, appearance, prompt}``).
    """


@hookspec
def charanim_register_metrics(register: Callable[..., None]) -> None:
    """Register benchmark metrics: ``register(MetricClass)``.

    A metric has a ``name``, its ``range`` and ``direction`` (higher or lower is
    better), whether it ``needs_target``, and ``compute(case) -> float``.
    """


@hookspec
def charanim_register_commands(app: typer.Typer) -> None:
    """Add sub-commands to the ``charanim`` CLI, e.g. ``app.add_typer(my_app, name="mytool")``
    or ``app.command()(my_function)``. Called once when the CLI starts."""


#: The registry kinds, in the order ``charanim plugins`` lists them, with their hook.
REGISTRY_HOOKS: dict[str, str] = {
    "conditioner": "charanim_register_conditioners",
    "backbone": "charanim_register_backbones",
    "pose_estimator": "charanim_register_pose_estimators",
    "captioner": "charanim_register_captioners",
    "metric": "charanim_register_metrics",
}


def registered_name(obj: Any) -> str:
    """The name a registered object is known by: its ``name`` attribute."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{obj!r} has no 'name' attribute; every registered object needs one")
    return name
