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
    levels = 1 << precision
    d0 = multilevel_d0(N, precision)
    digits = (np.arange(N)[:, None] // (levels ** np.arange(d0))[None, :]) % levels
    codes = (2.0 * digits - (levels - 1)).astype(np.float64)
    name = "binary" if precision == 1 else "multilevel"
    return Codebook(name, codes, float(precision), float(levels - 1), {"precision": precision})


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
