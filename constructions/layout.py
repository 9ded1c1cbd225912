"""Named subspaces of the residual stream, so a weight reads as "block r, coordinate i"."""

from __future__ import annotations

from dataclasses import dataclass
from georecall.theory.checks import InputError


@dataclass(frozen=True)
class Subspace:
    """A contiguous run of residual coordinates [start, start + size)."""

    name: str
    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.size:
            raise IndexError(f"{self.name} has {self.size} coordinates, asked for {i}")
        return self.start + i


class Layout:
    """Residual-stream layout built by appending named subspaces in order."""

    def __init__(self):
        self._spaces: dict[str, Subspace] = {}
        self.d_model = 0

    def add(self, name: str, size: int) -> Subspace:
        if name in self._spaces:
            raise InputError(f"subspace {name!r} already exists")
        space = Subspace(name, self.d_model, size)
        self._spaces[name] = space
        self.d_model += size
        return space

    def __getitem__(self, name: str) -> Subspace:
        return self._spaces[name]

    def __contains__(self, name: str) -> bool:
        return name in self._spaces

    def to_json_dict(self) -> dict:
        return {name: [s.start, s.stop] for name, s in self._spaces.items()}
