"""Plugin loading: builtins and entry points of the ``charanim`` group, through pluggy.

One broken plugin never breaks the others: an import error or an exception inside a
hook is recorded on that plugin (``charanim plugins`` shows it) and issued as a
:class:`PluginLoadWarning`. Two environment variables restrict what loads:

``CHARANIM_PLUGINS``
    comma-separated entry-point or distribution names: load only these (builtins
    always load). Set it to an empty string to load no external plugin at all.
``CHARANIM_DISABLE_PLUGINS``
    comma-separated names never to load.

Names compare as packaging compares them: ``audio-face``, ``audio_face`` and
``Audio_Face`` are one name.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from charanim import __version__, hookspecs
from charanim.registry import Registry

ENTRY_POINT_GROUP = "charanim"
#: builtin plugin name -> module; they load first, so they win name conflicts
BUILTIN_MODULES = {"charanim": "charanim.builtin_plugin"}


class PluginLoadWarning(UserWarning):
    """A plugin failed to import or to register; the others were loaded."""


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "registered": {kind: sorted(names) for kind, names in self.registered.items()},
            "errors": list(self.errors),
        }


Validator = Callable[[Any], None]


class Plugins:
    """The loaded plugins and the registries their hooks fill (filled lazily, once)."""

    def __init__(
        self,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        env = os.environ if environ is None else environ
        self.manager = pluggy.PluginManager("charanim")
        self.manager.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] = {}
        self._validators: dict[str, Validator] = {}
        for name, module_name in BUILTIN_MODULES.items():
            self._load_module(name, module_name, "charanim", __version__, builtin=True)
        if entry_points is None:
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        only = _name_set(env.get("CHARANIM_PLUGINS"))
        disabled = _name_set(env.get("CHARANIM_DISABLE_PLUGINS")) or set()
        installed: set[str] = set()
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            names = {_normal(n) for n in (ep.name, dist_name) if n is not None}
            installed |= names
            if names & disabled or (only is not None and not names & only):
                continue
            self._load_module(ep.name, ep.value, dist_name, dist.version if dist is not None else None)
        for variable, chosen in (("CHARANIM_PLUGINS", only), ("CHARANIM_DISABLE_PLUGINS", disabled)):
            unknown = sorted((chosen or set()) - installed)
            if unknown:  # a typo would otherwise silently load all, or none, of them
                warnings.warn(
                    f"{variable} names {', '.join(unknown)}, which no installed plugin is "
                    f"(installed: {', '.join(sorted(installed)) or 'none'}).",
                    PluginLoadWarning,
                    stacklevel=2,
                )

    # ------------------------------------------------------------------ loading

    def _load_module(self, name: str, module_path: str, dist: str | None, version: str | None, builtin=False):
        info = PluginInfo(name, module_path, dist, version or (__version__ if builtin else None), builtin)
        self.infos[name] = info
        try:
            module = importlib.import_module(module_path.split(":")[0])
            if ":" in module_path:
                module = getattr(module, module_path.split(":", 1)[1])
            self.manager.register(module, name=name)
        except Exception as exc:  # a plugin's bug must not take the tool down
            self._record_error(info, f"import failed: {_describe(exc)}")

    def _record_error(self, info: PluginInfo, message: str) -> None:
        info.errors.append(message)
        warnings.warn(f"charanim plugin '{info.name}': {message}", PluginLoadWarning, stacklevel=3)

    # ------------------------------------------------------------------ registries

    def set_validator(self, kind: str, validator: Validator) -> None:
        """Check each object a plugin registers under ``kind`` (raise TypeError to reject it)."""
        self._validators[kind] = validator

    def registry(self, kind: str) -> Registry:
        """The registry of ``kind`` (see ``hookspecs.REGISTRY_HOOKS``), calling its hook on first use."""
        if kind not in self._registries:
            self._registries[kind] = self._fill(kind)
        return self._registries[kind]

    def _fill(self, kind: str) -> Registry:
        registry: Registry = Registry(kind)
        hook = getattr(self.manager.hook, hookspecs.REGISTRY_HOOKS[kind])
        # Walk the implementations in registration order (pluggy would call the newest
        # first): builtins were registered first and must win name conflicts.
        for impl in hook.get_hookimpls():
            info = self.infos[self.manager.get_name(impl.plugin)]
            register = self._register_function(kind, registry, info)
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except Exception as exc:
                self._record_error(info, f"registering {kind}s failed: {_describe(exc)}")
        for conflict in registry.conflicts:
            warnings.warn(conflict, PluginLoadWarning, stacklevel=2)
        return registry

    def _register_function(self, kind: str, registry: Registry, info: PluginInfo):
        def register(obj: Any, name: str | None = None) -> None:
            validator = self._validators.get(kind)
            if validator is not None:
                validator(obj)
            name = name or hookspecs.registered_name(obj)
            if registry.add(name, obj, info.name):
                info.registered.setdefault(kind, []).append(name)

        return register

    def load_all(self) -> None:
        """Fill every registry (``charanim plugins`` shows everything)."""
        for kind in hookspecs.REGISTRY_HOOKS:
            self.registry(kind)

    def add_commands(self, app: Any) -> None:
        for impl in self.manager.hook.charanim_register_commands.get_hookimpls():
            info = self.infos[self.manager.get_name(impl.plugin)]
            try:
                impl.function(**{arg: app for arg in impl.argnames})
            except Exception as exc:
                self._record_error(info, f"adding commands failed: {_describe(exc)}")

    @property
    def conditioners(self) -> Registry:
        return self.registry("conditioner")

    @property
    def backbones(self) -> Registry:
        return self.registry("backbone")

    @property
    def pose_estimators(self) -> Registry:
        return self.registry("pose_estimator")

    @property
    def captioners(self) -> Registry:
        return self.registry("captioner")

    @property
    def metrics(self) -> Registry:
        return self.registry("metric")


@functools.cache
def get_plugins() -> Plugins:
    """The process-wide plugin set, loaded on first use (``get_plugins.cache_clear()`` reloads)."""
    plugins = Plugins()
    plugins.set_validator("conditioner", _validate_conditioner)
    plugins.set_validator("backbone", _validate_backbone)
    return plugins


def _validate_conditioner(obj: Any) -> None:
    from charanim.conditioning import validate_conditioner_class  # torch: import only when used

    validate_conditioner_class(obj)


def _validate_backbone(obj: Any) -> None:
    from charanim.models.backbones import validate_backbone_family

    validate_backbone_family(obj)


def _name_set(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {_normal(part) for part in value.split(",") if part.strip()}


def _normal(name: str) -> str:
    """A name as packaging compares them (PEP 503): case, '-', '_' and '.' alike, so
    'audio-face' names the entry point 'audio_face' as the conditioner is called."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
