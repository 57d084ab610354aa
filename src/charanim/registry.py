"""Typed registries filled by the plugin hooks: conditioners, backbones, estimators..."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from charanim.errors import UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    plugin: str


class Registry(Generic[T]):
    """Name -> object, remembering which plugin registered each name.

    The first registration of a name wins; later ones are recorded as conflicts
    (reported by ``charanim plugins``) rather than silently replacing it, so
    installing a plugin never changes what an existing name means.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self.conflicts: list[str] = []

    def add(self, name: str, obj: T, plugin: str) -> bool:
        if name in self._entries:
            first = self._entries[name].plugin
            self.conflicts.append(
                f"{self.kind} '{name}' from plugin '{plugin}' ignored: already registered by '{first}'"
            )
            return False
        self._entries[name] = Entry(name, obj, plugin)
        return True

    def get(self, name: str) -> T:
        try:
            return self._entries[name].obj
        except KeyError:
            raise UnknownNameError(self.kind.replace("_", " "), name, self.names()) from None

    def entry(self, name: str) -> Entry[T]:
        self.get(name)
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
