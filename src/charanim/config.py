"""Recipes: YAML files mapped onto dataclasses, torchtune-style.

Unknown keys and wrong types are errors that name the key and the file line; command
line overrides (``optim.lr=3e-4 data.manifest=other.jsonl``) use dotted paths and are
checked the same way. ``resolve`` returns the dataclass; ``to_yaml`` prints what a run
will actually use (``--dry-run``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import yaml

from charanim.errors import CharanimError

T = TypeVar("T")


class RecipeError(CharanimError):
    """A recipe key that does not exist, or a value of the wrong type."""


class _LineLoader(yaml.SafeLoader):
    """Keeps the line of every mapping key, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    lines = {
        key_node.value: key_node.start_mark.line + 1
        for key_node, _ in node.value
        if hasattr(key_node, "value")
    }
    return _Located(mapping, lines)


class _Located(dict):
    def __init__(self, data: dict, lines: dict[str, int], overridden: set[str] | None = None):
        super().__init__(data)
        self.lines = lines
        self.overridden = overridden or set()


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> dict:
    if Path(path).is_dir():
        raise RecipeError(f"Recipe '{path}' is a folder; give a recipe YAML file.")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except FileNotFoundError:
        raise RecipeError(f"Recipe '{path}' does not exist.") from None
    except UnicodeDecodeError:
        raise RecipeError(f"Recipe '{path}' is not text (a YAML recipe).") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"Recipe '{path}' is not valid YAML: {_yaml_problem(exc)}") from None
    if data is None:
        raise RecipeError(f"Recipe '{path}' is empty.")
    if not isinstance(data, dict):
        raise RecipeError(f"Recipe '{path}' must be a mapping of keys to values.")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What PyYAML found wrong, and where (line and column, counted from 1)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def parse_overrides(items: list[str]) -> dict:
    """``["a.b=1", "c=[1, 2]"]`` -> nested dict; values are parsed as YAML scalars/lists."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise RecipeError(f"Override '{item}' is not key=value (e.g. optim.lr=3e-4).")
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def merge(base: dict, override: dict) -> dict:
    merged = _Located(dict(base), dict(getattr(base, "lines", {})), set(getattr(base, "overridden", ())))
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
            merged.lines.pop(key, None)  # errors then say "override", not the file's line
            merged.overridden.add(key)
    return merged


def build(cls: type[T], data: dict, source: str, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; every error names ``source``, key and line."""
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: '{path or 'recipe'}' must be a mapping.")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    lines = getattr(data, "lines", {})
    overridden = getattr(data, "overridden", set())

    def location(key: str) -> str:
        return f" (line {lines[key]})" if key in lines else " (override)" if key in overridden else ""

    unknown = [key for key in data if key not in fields]
    if unknown:
        key = unknown[0]
        where = location(key)
        known = ", ".join(fields)
        raise RecipeError(f"{source}{where}: unknown key '{_join(path, key)}'; known keys here: {known}.")
    values = {}
    for name, value in data.items():
        values[name] = _coerce(hints[name], value, f"{source}{location(name)}", _join(path, name))
    try:
        return cls(**values)
    except TypeError as exc:
        raise RecipeError(f"{source}: {exc}") from None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _coerce(hint: Any, value: Any, where: str, key: str) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        shaped, other = [], []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, where, key)
            except RecipeError as exc:
                # a list's fault is best told by the list option ("key[1] must be ..."),
                # not by "must be a string"
                is_list = get_origin(option) in (list, tuple)
                (shaped if is_list == isinstance(value, (list, tuple)) else other).append(str(exc))
        errors = shaped + other
        raise RecipeError(errors[0] if errors else f"{where}: '{key}' has the wrong type.")
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where.split(" (line")[0], key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise RecipeError(f"{where}: '{key}' must be a list, got {value!r}.")
        args = get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: '{key}' must be a mapping, got {value!r}.")
        item = get_args(hint)[1] if get_args(hint) else Any
        return {k: _coerce(item, v, where, f"{key}.{k}") for k, v in value.items()}
    if hint is Any:
        return _plain(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{where}: '{key}' must be true or false, got {value!r}.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{where}: '{key}' must be an integer, got {value!r}.")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{where}: '{key}' must be a number, got {value!r}.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise RecipeError(f"{where}: '{key}' must be a string, got {value!r}.")
        return value
    if origin is typing.Literal:
        if value not in get_args(hint):
            raise RecipeError(
                f"{where}: '{key}' must be one of {', '.join(map(str, get_args(hint)))}, got {value!r}."
            )
        return value
    return value


def _plain(value: Any) -> Any:
    """Mappings as plain dicts (the loader's line-tracking ones do not copy or serialise)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def resolve(cls: type[T], recipe: Path, overrides: list[str] | None = None) -> T:
    data = merge(load_yaml(recipe), parse_overrides(overrides or []))
    return build(cls, data, str(recipe))


def to_dict(config: Any) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def config_hash(data: dict) -> str:
    """A short, order-independent hash of a (resolved) config dict."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
