"""The show's styles: one list of (name, path, code, thumbnail), appended atomically, read as
snapshots.

Why one set: the names (the controller's), the codes (the inference worker's) and the files (the
control page's) used to be three parallel lists kept in step by a comment about ordering; an
upload had to reach all three in the right order or the worker could see an index without a code.
Here an entry is whole before anyone can see it: :meth:`StyleSet.append` publishes a new tuple in
one assignment, so every reader (any thread, no lock) gets either the old list or the new one, and
an index that a reader got from a snapshot stays valid (entries are never removed or reordered:
a style that leaves the show, a taken one past ``styles.taken_max``, is *replaced* in its slot by
:meth:`StyleSet.replace`, so the set never shrinks and no index shifts under a reader).
The controller holds an index into the set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional


@dataclass(frozen=True)
class StyleEntry:
    """One style of the show.  ``code``: its style code (None only for a set of names that is
    given its codes later, as tests and benchmarks do); ``thumbnail``: JPEG bytes, made once on
    first request."""

    name: str
    path: Optional[Path] = None
    code: Any = None
    thumbnail: Optional[bytes] = None


class StyleSet:
    """Entries in show order; appends and updates replace the whole tuple (copy on write)."""

    def __init__(self, entries: Iterable[StyleEntry]) -> None:
        self._entries: tuple[StyleEntry, ...] = tuple(entries)
        self._write = threading.Lock()  # writers only; readers take the current tuple as it is

    @classmethod
    def of_names(cls, names: Sequence[str]) -> "StyleSet":
        return cls(StyleEntry(n) for n in names)

    # -- reading (any thread, no lock) -------------------------------------------------------------
    def snapshot(self) -> tuple[StyleEntry, ...]:
        return self._entries

    def names(self) -> list[str]:
        return [e.name for e in self._entries]

    def index_of(self, name: str) -> Optional[int]:
        for i, e in enumerate(self._entries):
            if e.name == name:
                return i
        return None

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> StyleEntry:
        return self._entries[index]

    # -- writing -----------------------------------------------------------------------------------
    def append(self, entry: StyleEntry) -> tuple[int, bool]:
        """Add ``entry`` whole (its code computed first); (index, True), or the index of the entry
        of that name that is already there and False."""
        with self._write:
            for i, e in enumerate(self._entries):
                if e.name == entry.name:
                    return i, False
            self._entries = (*self._entries, entry)
            return len(self._entries) - 1, True

    def update(self, index: int, **fields: Any) -> StyleEntry:
        """Replace fields of one entry (a thumbnail made, codes given to a set of names)."""
        with self._write:
            entries = list(self._entries)
            entries[index] = replace(entries[index], **fields)
            self._entries = tuple(entries)
            return entries[index]

    def replace(self, index: int, entry: StyleEntry) -> StyleEntry:
        """Put ``entry`` (whole, its code computed) in the slot of entry ``index``, which leaves
        the show.  Why in place and not a removal: the controller's index, the inference worker's
        and the page's all stay valid (nothing shifts, the set never shrinks).  A name that another
        slot holds is refused (names are unique in a show)."""
        with self._write:
            entries = list(self._entries)
            old = entries[index]
            if any(e.name == entry.name for i, e in enumerate(entries) if i != index):
                raise ValueError(f"a style called {entry.name!r} is already in the show")
            entries[index] = entry
            self._entries = tuple(entries)
            return old

    def give_codes(self, codes: Sequence[Any]) -> None:
        """Codes for a set built from names (one per entry, in order)."""
        if len(codes) != len(self._entries):
            raise ValueError("one style code per style")
        with self._write:
            self._entries = tuple(replace(e, code=c) for e, c in zip(self._entries, codes))
