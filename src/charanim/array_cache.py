"""A least-recently-used cache of numpy arrays bounded by their bytes.

Training draws every reference again each epoch, so what depends on a reference alone
(its pose map, which bone each of its pixels moves with) is worth keeping; but its size
grows with the frame (12 KB a pose map at 64x64, 1.2 MB at 832x480), so a bound on the
count of entries (``functools.lru_cache``) is no bound on memory. Entries are arrays or
tuples of arrays, made read-only: every caller shares them. Thread-safe (the trainer
builds batches in a thread).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

Entry = np.ndarray | tuple[np.ndarray, ...]


def _nbytes(entry: Entry) -> int:
    return sum(a.nbytes for a in entry) if isinstance(entry, tuple) else entry.nbytes


def _frozen(entry: Entry) -> Entry:
    for array in entry if isinstance(entry, tuple) else (entry,):
        array.flags.writeable = False
    return entry


class ArrayCache:
    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self.used = 0
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, make: Callable[[], Entry]) -> Entry:
        """The entry for ``key``, made by ``make()`` the first time (not kept if it alone
        is over the budget); the least recently used go when the budget is exceeded."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        entry = _frozen(make())  # outside the lock: making may be slow
        size = _nbytes(entry)
        with self._lock:
            if key not in self._entries and size <= self.budget:
                self._entries[key] = entry
                self.used += size
                while self.used > self.budget:
                    _, dropped = self._entries.popitem(last=False)
                    self.used -= _nbytes(dropped)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.used = 0
