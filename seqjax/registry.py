"""Registries that grep can follow: a name maps to a definition made in one place (a cell, an
encoder), registered once; an unknown name is refused with the list of known ones."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """``name -> definition`` for one ``kind`` of thing (``"cell"``, ``"encoder"``); definitions
    have a ``name`` attribute."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, item: T) -> T:
        """Add ``item`` under ``item.name`` (a name is registered once) and return it."""
        if item.name in self:
            raise ValueError(f"{self.kind} {item.name!r} is already registered")
        self[item.name] = item
        return item

    def lookup(self, name: str) -> T:
        """The definition registered as ``name``; an unknown name raises ValueError with the list."""
        try:
            return self[name]
        except KeyError:
            raise ValueError(f"{self.kind} {name!r}: choose {', '.join(self)}") from None
