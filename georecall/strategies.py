"""Hypothesis strategies for instances, sizes, seeds and codebooks, for our tests and yours.

Why not the built-ins alone: an instance couples N and R and must hold R valid permutations
of [N]; drawing it either from a seed (cheap at large N, what experiments do) or from explicit
permutations (which Hypothesis can shrink to a minimal counterexample) needs both paths.

    from hypothesis import given
    from georecall.strategies import instances
    @given(instances(max_N=64, max_R=4))
    def test_mine(instance): ...
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from theory.instance import Instance

__all__ = ["seeds", "sizes", "instances", "codebook_options", "precisions", "hop_depths"]


def seeds() -> st.SearchStrategy[int]:
    """Seeds for numpy.random.default_rng."""
    return st.integers(min_value=0, max_value=2**32 - 1)


def sizes(min_N: int = 2, max_N: int = 2000, min_R: int = 1, max_R: int = 8) -> st.SearchStrategy[tuple[int, int]]:
    """(N, R) pairs."""
    return st.tuples(st.integers(min_N, max_N), st.integers(min_R, max_R))


def precisions(max_precision: int = 8) -> st.SearchStrategy[int]:
    """Bits per coordinate p for 2^p-level codes."""
    return st.integers(1, max_precision)


@st.composite
def _explicit_instance(draw, min_N, max_N, min_R, max_R):
    N = draw(st.integers(min_N, max_N))
    R = draw(st.integers(min_R, max_R))
    rows = [draw(st.permutations(range(N))) for _ in range(R)]
    return Instance.from_arrays(np.array(rows, dtype=np.int64))


def instances(
    min_N: int = 2, max_N: int = 2000, min_R: int = 1, max_R: int = 8, explicit_max_N: int = 64
) -> st.SearchStrategy[Instance]:
    """Instances drawn from a seed, or (for N <= explicit_max_N) from explicit, shrinkable permutations."""
    seeded = st.builds(
        lambda size, seed: Instance.random(size[0], size[1], seed),
        sizes(min_N, max_N, min_R, max_R),
        seeds(),
    )
    if explicit_max_N < min_N:
        return seeded
    return st.one_of(seeded, _explicit_instance(min_N, min(max_N, explicit_max_N), min_R, max_R))


def codebook_options(max_precision: int = 4) -> st.SearchStrategy[dict]:
    """Keyword options for ``build_construction``'s codebook: binary, multilevel(p) or rademacher(delta, seed)."""
    return st.one_of(
        st.just({"codebook": "binary"}),
        st.builds(lambda p: {"codebook": "multilevel", "precision": p}, precisions(max_precision)),
        st.builds(
            lambda delta, seed: {"codebook": "rademacher", "delta": delta, "codebook_seed": seed},
            st.sampled_from([1e-2, 1e-3, 1e-6]),
            seeds(),
        ),
    )


def hop_depths(max_hops: int = 4) -> st.SearchStrategy[int]:
    """Chain lengths k for multi-hop and chain-of-thought queries."""
    return st.integers(1, max_hops)
