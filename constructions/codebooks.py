"""Codebooks: a code u_a in R^{d0} for each attribute a in [N].

- binary sign codes: the p = 1 case of the multilevel code, d0 = ceil(log2 N);
- 2^p-level codes: base-2^p digits of a mapped to the odd levels -(L-1), ..., L-3, L-1
  (L = 2^p), d0 = ceil(log2 N / p). Distinct codes differ by >= 2 in some coordinate, so the
  minimum squared distance is exactly 4 (p = 1: Hamming distance 1, also squared distance 4);
- random Rademacher codes: i.i.d. uniform +-1 entries with d0 = ceil(log2(N(N-1) / (2 delta))),
  which makes all N codes distinct with probability >= 1 - delta (union bound over pairs).

Codebooks are shared weights: they never depend on the facts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from georecall.theory.checks import InputError, require_int, require_probability
from georecall.theory.geometry import min_squared_distance


@dataclass(frozen=True, eq=False)
class Codebook:
    """codes: float64 [N, d0]; bits_per_coordinate: log2 of the number of levels per entry."""

    name: str
    codes: np.ndarray
    bits_per_coordinate: float
    max_abs_entry: float
    params: dict = field(default_factory=dict)

    @property
    def N(self) -> int:
        return int(self.codes.shape[0])

    @property
    def d0(self) -> int:
        return int(self.codes.shape[1])

    def all_distinct(self) -> bool:
        return len(np.unique(self.codes, axis=0)) == self.N

    def min_squared_distance(self, chunk: int = 2048) -> float:
        """min_{a != b} ||u_a - u_b||^2, exactly (integer codes), in O(N^2 d0) chunked work."""
        return min_squared_distance(self.codes, chunk)

    def __repr__(self) -> str:
        return f"Codebook({self.name!r}, N={self.N}, d0={self.d0}, bits/coord={self.bits_per_coordinate})"


def multilevel_d0(N: int, precision: int) -> int:
    """ceil(log2 N / p), computed exactly with integers: the least d0 with 2^(p d0) >= N."""
    N = require_int("N", N, minimum=2)
    precision = require_int("precision", precision, minimum=1, maximum=16)
    d0 = 0
    while (1 << (precision * d0)) < N:
        d0 += 1
    return max(d0, 1)


def multilevel_codebook(N: int, precision: int = 1) -> Codebook:
    """2^p-level codes: digit l of a in base L = 2^p becomes the level 2l - (L - 1)."""
    N = require_int("N", N, minimum=2)
    precision = require_int("precision", precision, minimum=1, maximum=16)
    codes = multilevel_codes(np.arange(N), precision, multilevel_d0(N, precision))
    return Codebook(codes=codes, **multilevel_description(precision))


def multilevel_description(precision: int) -> dict:
    """Everything multilevel_codebook's Codebook says besides its codes (name, bits per coordinate, largest
    |entry|, params): what a builder that never holds the codes needs of it (block_superposition's streamed build)."""
    return {"name": "binary" if precision == 1 else "multilevel", "bits_per_coordinate": float(precision),
            "max_abs_entry": float((1 << precision) - 1), "params": {"precision": precision}}


def multilevel_codes(attributes: np.ndarray, precision: int, d0: int, dtype=np.float64) -> np.ndarray:
    """[len(attributes), d0] codes of the given attributes (the rows of multilevel_codebook's codes),
    in ``dtype``: a builder that cannot hold all N codes as float64 makes them a block at a time."""
    digits = (np.asarray(attributes, dtype=np.int64)[:, None] >> (precision * np.arange(d0, dtype=np.int64))[None, :]) & ((1 << precision) - 1)
    return _level(digits, precision, dtype)


def multilevel_codes_digit(N: int, precision: int, i: int, dtype=np.float64) -> np.ndarray:
    """Coordinate i of every code of multilevel_codebook(N, precision): a column of its codes, made alone."""
    return _level((np.arange(N, dtype=np.int64) >> (precision * i)) & ((1 << precision) - 1), precision, dtype)


def _level(digits: np.ndarray, precision: int, dtype=np.float64) -> np.ndarray:
    """Digit l in base L = 2^p as the code entry 2l - (L - 1): the one rule of the multilevel codes."""
    return (2 * digits - ((1 << precision) - 1)).astype(dtype)


class MultilevelDigits:
    """multilevel_codes a group of digits at a time through small tables, for a builder that never
    holds all N codes: a group of k = max(1, 8 // p) base-2^p digits of a is one index into a table
    of 2^(p k) <= 2^16 rows of k levels, so each code is a few table reads that stay in cache
    instead of a random read of an [N, d0] array (at N = 2^24, 11 s to about 2 s)."""

    def __init__(self, N: int, precision: int, dtype=np.float64):
        self.precision, self.d0 = precision, multilevel_d0(N, precision)
        self.group = max(1, 8 // precision)
        rows = 1 << (precision * self.group)
        self.table = multilevel_codes(np.arange(rows), precision, self.group, dtype)  # [rows, group]
        self.widths = [min(self.group, self.d0 - start) for start in range(0, self.d0, self.group)]
        self.squares = [np.sum(self.table[:, :width].astype(np.float64) ** 2, axis=1) for width in self.widths]  # exact integers
        # each table row as one opaque item of its bytes: a group is then copied as one item, not k numbers (3x faster)
        self.items = [np.ascontiguousarray(self.table[:, :width]).view(_bytes_of(width, self.table.dtype))[:, 0] for width in self.widths]

    def _indices(self, attributes: np.ndarray):
        for g, width in enumerate(self.widths):
            yield g, width, (attributes >> (self.precision * self.group * g)) & ((1 << (self.precision * self.group)) - 1)

    def codes(self, attributes: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out[..., :d0] = the codes of ``attributes`` (any shape; ``out`` has one more axis of length d0)."""
        for g, width, index in self._indices(np.asarray(attributes)):
            out[..., g * self.group : g * self.group + width].view(self.items[g].dtype)[..., 0] = self.items[g][index]
        return out

    def squared_norms(self, attributes: np.ndarray) -> np.ndarray:
        """||u_a||^2 of ``attributes``, exactly (integers below 2^53)."""
        total = np.zeros(np.shape(attributes))
        for g, _, index in self._indices(np.asarray(attributes)):
            total += self.squares[g][index]
        return total


def _bytes_of(width: int, dtype) -> np.dtype:
    return np.dtype((np.void, width * np.dtype(dtype).itemsize))


def multilevel_levels(N: int, precision: int) -> np.ndarray:
    """The distinct entries of multilevel_codebook(N, precision)'s codes, without making them: digit 0
    of a < N takes every value below min(N, 2^p), and no other digit takes a value digit 0 does not."""
    return _level(np.arange(min(N, 1 << precision)), precision)


def binary_codebook(N: int) -> Codebook:
    """Sign codes +-1 of the binary digits of a: d0 = ceil(log2 N)."""
    return multilevel_codebook(N, precision=1)


def rademacher_d0(N: int, delta: float) -> int:
    """ceil(log2(N(N-1) / (2 delta))): then P(two of N random +-1 codes coincide) <= delta."""
    N = require_int("N", N, minimum=2)
    delta = require_probability("delta", delta)
    return max(1, math.ceil(math.log2(N * (N - 1) / (2.0 * delta))))


def rademacher_codebook(N: int, delta: float = 1e-3, seed: int = 0, d0: int | None = None) -> Codebook:
    """i.i.d. uniform +-1 codes drawn from ``seed``; d0 defaults to rademacher_d0(N, delta)."""
    N = require_int("N", N, minimum=2)
    delta = require_probability("delta", delta)
    d0 = rademacher_d0(N, delta) if d0 is None else require_int("d0", d0, minimum=1)
    rng = np.random.default_rng(seed)
    codes = rng.choice(np.array([-1.0, 1.0]), size=(N, d0))
    return Codebook("rademacher", codes, 1.0, 1.0, {"delta": delta, "seed": seed})


CODEBOOKS = ("binary", "multilevel", "rademacher")


def make_codebook(name: str, N: int, *, precision: int = 1, delta: float = 1e-3, seed: int = 0, d0: int | None = None) -> Codebook:
    """Build a codebook by name: one of CODEBOOKS."""
    if name == "binary":
        return binary_codebook(N)
    if name == "multilevel":
        return multilevel_codebook(N, precision)
    if name == "rademacher":
        return rademacher_codebook(N, delta, seed, d0)
    raise InputError(f"codebook must be one of {', '.join(CODEBOOKS)}; got {name!r}")
