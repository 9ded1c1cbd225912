"""What a weights file is, read from its arrays and its docs/FORMAT.md meta fields alone: never from its spec.

``describe(weights)`` gives the query semantics (kinds, hops, exact or up_to chains, chain-of-
thought and hops per emitted token), the sizes and parameter counts, and the bits per coordinate
the subject embeddings' values need. ``compare``, ``verify`` and the report read a file through it;
a spec the file carries is a claim checked against it (``theory.spec.checked_spec``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from georecall.theory.queries import cot_parameters, multi_hop_parameters
from georecall.theory.spec import ConstructionSpec, spec_from_weights
from georecall.theory.weights import TransformerWeights

MAX_BITS = 64  # a float64 coordinate carries at most 64 bits


@dataclass(frozen=True)
class Description:
    """The file's own account of itself. ``hops`` is k (multi_hop) or K (cot), 1 for single hop."""

    kinds: tuple
    hops: int
    chains: str
    cot: bool
    hops_per_step: int
    bits_per_coordinate: int
    distinct_values: int | None  # distinct subject-coordinate values, pooled (None: more than N, so each coordinate needs <= log2 N bits)


def query_semantics(weights: TransformerWeights) -> dict:
    """kinds, hops, chains, cot, hops_per_step from meta (docs/FORMAT.md §4-5), validated."""
    meta = weights.meta
    kinds = tuple(meta.query_kinds)
    hops, chains, cot, h = 1, "exact", "cot" in kinds, 1
    if cot:
        hops, h = cot_parameters(meta)
    elif "multi_hop" in kinds:
        hops, chains = multi_hop_parameters(meta)
    return {"kinds": kinds, "hops": hops, "chains": chains, "cot": cot, "hops_per_step": h}


def describe(weights: TransformerWeights) -> Description:
    distinct = pooled_distinct_values(weights)
    N = weights.meta.N
    bits = math.ceil(math.log2(N)) if distinct is None else max(1, math.ceil(math.log2(max(distinct, 2))))
    return Description(**query_semantics(weights), bits_per_coordinate=min(bits, MAX_BITS), distinct_values=distinct)


def used_columns(weights: TransformerWeights) -> np.ndarray:
    """The coordinates some subject row makes non-zero (the d of the bound d p >= R log2 N)."""
    return np.flatnonzero(np.any(weights.W_E[: weights.meta.N] != 0, axis=0))


def pooled_distinct_values(weights: TransformerWeights, rows: int = 1 << 16) -> int | None:
    """How many distinct values the subject rows take on their used coordinates, all coordinates
    pooled (so at least any one coordinate's count), or None once that exceeds N (no coordinate can
    hold more than N values over N subjects). Read a block of rows at a time against the values seen."""
    N = weights.meta.N
    block = weights.W_E[:N][:, used_columns(weights)]
    seen = np.empty(0)
    for begin in range(0, N, rows):
        part = block[begin : begin + rows].reshape(-1) + 0.0  # -0.0 and 0.0 are one value
        new = part[~np.isin(part, seen)]
        if len(new):
            seen = np.union1d(seen, np.unique(new))
            if len(seen) > N:
                return None
    return int(len(seen))


def coordinate_needing_more_than(weights: TransformerWeights, bits: float) -> tuple[int, int] | None:
    """(column, its count of distinct values) of the first used coordinate whose values need more
    than ``bits`` bits (more than 2^bits distinct values over the subjects), or None."""
    N = weights.meta.N
    if bits >= N.bit_length():  # 2^bits > N: no column of N subjects has more distinct values (and 2.0**bits may overflow)
        return None
    limit = 2.0**bits
    for column in used_columns(weights):
        count = len(np.unique(weights.W_E[:N, column] + 0.0))
        if count > limit:
            return int(column), count
    return None


def measured_spec(weights: TransformerWeights, **fields) -> ConstructionSpec:
    """A spec built from the file alone: sizes, counts, semantics and bits per coordinate read off it;
    ``fields`` gives what no array can say (name, guaranteed margin, fact independence)."""
    facts = describe(weights)
    extra = {"chains": facts.chains, "hops_per_step": facts.hops_per_step}
    return spec_from_weights(weights, hops=facts.hops, cot=facts.cot, bits_per_coordinate=float(facts.bits_per_coordinate),
                             extra={**extra, **fields.pop("extra", {})}, **fields)
