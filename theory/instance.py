"""Instances: R bijections f_r of the entity set [N] = {0, ..., N-1}."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError, require_int


FACTS_LIMIT = 2**28  # 2 GiB of int64 facts (2^24 subjects, 16 relations): more is refused before the draw


@dataclass(frozen=True, eq=False)
class Instance:
    """R permutations of [N], one per relation.

    ``facts[r, s] = f_r(s)``: the attribute of subject ``s`` under relation ``r``.
    Shape ``[R, N]``, dtype int64, each row a permutation of ``0..N-1``.
    Build with :meth:`random` (from a seed) or :meth:`from_arrays` (validated).
    """

    facts: np.ndarray

    def __post_init__(self):
        facts = _validated_facts(self.facts)
        facts.setflags(write=False)
        object.__setattr__(self, "facts", facts)

    @property
    def N(self) -> int:
        return int(self.facts.shape[1])

    @property
    def R(self) -> int:
        return int(self.facts.shape[0])

    @classmethod
    def random(cls, N: int, R: int, seed: int | np.random.Generator) -> "Instance":
        """Draw each f_r i.i.d. uniformly from the permutations of [N], from an explicit seed."""
        N = require_int("N", N, minimum=2)
        R = require_int("R", R, minimum=1)
        if N * R > FACTS_LIMIT:
            raise InputError(f"an instance with N = {N:,} and R = {R:,} holds {N * R:,} facts, {8 * N * R / 2**30:,.3g} GiB of int64 "
                             f"(limit {FACTS_LIMIT:,} facts)")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return cls(np.stack([rng.permutation(N) for _ in range(R)]).astype(np.int64, copy=False))  # no second copy at 2^24

    @classmethod
    def from_arrays(cls, facts) -> "Instance":
        """Build from an [R, N] array (or a list of R permutations); every row is validated."""
        return cls(np.asarray(facts))

    def answer(self, subjects, relations) -> np.ndarray:
        """f_r(s) for arrays of subjects and relations (broadcast together)."""
        return self.facts[np.asarray(relations), np.asarray(subjects)]

    def chain_answer(self, subjects, chain) -> np.ndarray:
        """f_{r_k}(...f_{r_1}(s)) for a chain (r_1, ..., r_k) applied left to right."""
        values = np.asarray(subjects)
        for relation in chain:
            values = self.facts[relation, values]
        return values

    def __eq__(self, other) -> bool:
        return isinstance(other, Instance) and np.array_equal(self.facts, other.facts)

    def __hash__(self) -> int:
        return hash(self.facts.tobytes())

    def __repr__(self) -> str:
        return f"Instance(N={self.N}, R={self.R})"


def _validated_facts(facts) -> np.ndarray:
    arr = np.asarray(facts)
    if arr.ndim != 2:
        raise InputError(f"facts must be a 2-D [R, N] array, got shape {arr.shape}")
    R, N = arr.shape
    if R < 1:
        raise InputError("facts must have at least one row (R >= 1)")
    if N < 2:
        raise InputError(f"facts rows must have length N >= 2, got N = {N}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InputError("facts must hold integers; found a non-integer value")
    elif arr.dtype.kind not in "iu":
        raise InputError(f"facts must be an integer array, got dtype {arr.dtype}")
    if arr.dtype != np.int64 or arr.flags.writeable:  # a read-only int64 array (a file reader's) is kept, not copied
        arr = arr.astype(np.int64)
    for r, row in enumerate(arr):
        if row.min() < 0 or row.max() >= N:  # two reductions: at N = 2^24 a mask per row cost more than the rest
            s = int(np.flatnonzero((row < 0) | (row >= N))[0])
            raise InputError(
                f"facts row {r} is not a permutation of 0..{N - 1}: "
                f"entry {s} is {int(row[s])}, outside [0, {N})"
            )
        counts = np.bincount(row, minlength=N)
        if counts.min() == 0:  # N values in [0, N): one missing is the same as one repeated
            repeated = int(np.flatnonzero(counts > 1)[0])
            missing = int(np.flatnonzero(counts == 0)[0])
            raise InputError(
                f"facts row {r} is not a permutation of 0..{N - 1}: "
                f"value {repeated} appears {int(counts[repeated])} times and {missing} is missing"
            )
    return arr
