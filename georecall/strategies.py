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

from georecall.theory.checks import InputError
from georecall.theory.instance import Instance

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


# --- Adversarial inputs for the verifiers (docs/theorems/soundness.md) -------------------------
# Why not the built-ins: a verifier is only as good as the inputs that try to fool it. These draw
# weights whose float64 logits are far larger than their margins, codes whose Gram matrix
# cancels, margins a few ulps from zero, and overflow planted in one query's path.


@st.composite
def large_magnitude_codes(draw, min_exponent: int = 26, max_exponent: int = 30, max_count: int = 24) -> np.ndarray:
    """Scalar codes [N, 1]: small integers plus a run at 2^e + j (unit gaps), 2^26 <= 2^e <= 2^30.

    At these magnitudes the nearest-code logits (about 2^(2e)) round by more than their margins.
    """
    exponent = draw(st.integers(min_exponent, max_exponent))
    small = draw(st.integers(2, max_count))
    large = draw(st.integers(2, max_count))
    offset = draw(st.integers(0, 1000))
    codes = np.concatenate([np.arange(small, dtype=np.float64), 2.0**exponent + offset + np.arange(large, dtype=np.float64)])
    return codes[:, None]


@st.composite
def gram_cancellation_pairs(draw) -> np.ndarray:
    """Two 2-d codes (2^k + a, b) and (2^k + c, e), small a..e: ||u||^2 + ||v||^2 - 2 u.v cancels."""
    k = draw(st.integers(24, 40))
    a, b, c, e = (draw(st.integers(-8, 8)) for _ in range(4))
    if (a, b) == (c, e):
        c += 1
    return np.array([[2.0**k + a, float(b)], [2.0**k + c, float(e)]])


def near_tie_offsets() -> st.SearchStrategy[int]:
    """Offsets in units of 2^-48: a query's exact margin is this many units (0 = an exact tie)."""
    return st.integers(-4, 4)


__all__ += ["large_magnitude_codes", "gram_cancellation_pairs", "near_tie_offsets", "codebook_from_codes", "with_near_tie",
            "with_overflow"]


def codebook_from_codes(codes: np.ndarray):
    """A Codebook for build_construction('block', ...)-style use, from explicit codes [N, d0]."""
    from georecall.constructions.codebooks import Codebook

    codes = np.asarray(codes, dtype=np.float64)
    levels = max(len(np.unique(column)) for column in codes.T)
    return Codebook("custom", codes, float(np.log2(max(levels, 2))), float(np.abs(codes).max()))


def with_near_tie(weights, instance, ulps: int, subject: int = 0, relation: int = 0):
    """Block-construction weights whose query (subject, relation) has exact margin ``ulps`` * 2^-48.

    The answer's rivals all sit at margin >= 2; moving b_U of one rival up by its gap less
    ``ulps`` * 2^-48 brings that rival to the stated margin. Every b_U here lies in (-16, 16), where
    float64 spacing is at most 2^-49, so the new bias is stored exactly (checked).
    """
    from dataclasses import replace

    answer = int(instance.facts[relation, subject])
    rival = (answer + 1) % instance.N
    from georecall.theory.bounded import unembedding_support

    codes = weights.W_U[unembedding_support(weights)].T
    # the rival's margin is 1/2 ||u_rival - u_answer||^2 for the exact nearest-code residual u_answer
    gap = 0.5 * float(np.sum((codes[rival] - codes[answer]) ** 2))
    b_U = weights.b_U.copy()
    from fractions import Fraction

    target = Fraction(float(b_U[rival])) + Fraction(gap) - Fraction(ulps, 2**48)
    b_U[rival] = float(target)
    if Fraction(float(b_U[rival])) != target:
        raise InputError(f"the near-tie bias {target} is not a float64 value: use codes with smaller norms")
    return replace(weights, b_U=b_U), rival


def with_overflow(weights, subject: int):
    """Weights where every query about ``subject`` overflows to inf in the MLP input (rule N)."""
    W_E = weights.W_E.copy()
    W_E[subject] = W_E[subject] * 1e300
    mlp = weights.blocks[0].mlp
    from dataclasses import replace

    W_in = mlp.W_in * 1e10
    blocks = (replace(weights.blocks[0], mlp=replace(mlp, W_in=W_in, b_in=mlp.b_in * 1e10, W_out=mlp.W_out * 1e-10)),)
    return replace(weights, W_E=W_E, blocks=blocks)
