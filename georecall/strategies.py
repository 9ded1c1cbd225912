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
            "with_overflow", "without_exactness_proof"]


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
    from georecall.verify.reference import unembedding_support

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


def without_exactness_proof(weights):
    """The same function as ``weights`` (a one-layer model), with attention Lemma S8 cannot prove
    uniform: a new coordinate, 1 on every token, feeds both W_Q and W_K of head 0, so every score
    is attn_scale (equal within a row: the pattern is unchanged) but none is structurally zero.
    The verifier then bounds every stage with the general error model instead of proving it exact.
    """
    from dataclasses import replace

    def grow(array, axis):
        pad = [(0, 0)] * array.ndim
        pad[axis] = (0, 1)
        return np.pad(array, pad)

    attn, mlp = weights.blocks[0].attn, weights.blocks[0].mlp
    W_E = grow(weights.W_E, 1)
    W_E[:, -1] = 1.0
    W_Q, W_K = grow(attn.W_Q, 1), grow(attn.W_K, 1)
    W_Q[0, -1, 0] = W_K[0, -1, 0] = 1.0
    attn = replace(attn, W_Q=W_Q, W_K=W_K, W_V=grow(attn.W_V, 1), W_O=grow(attn.W_O, 2))
    mlp = replace(mlp, W_in=grow(mlp.W_in, 0), W_out=grow(mlp.W_out, 1), b_out=grow(mlp.b_out, 0))
    W_pos = None if weights.W_pos is None else grow(weights.W_pos, 1)
    return replace(weights, W_E=W_E, blocks=(replace(weights.blocks[0], attn=attn, mlp=mlp),), W_U=grow(weights.W_U, 0), W_pos=W_pos)


# --- Weights over the whole float64 range (docs/theorems/soundness.md) -------------------------
# Why not hypothesis.extra.numpy with floats(): uniform floats almost never make a product land
# on the underflow or overflow threshold, cancel a huge sum down to a tiny one, or put an
# overflowing coordinate under a zero row of W_U. These give each array its own scale (a power
# of two anywhere in 2^-1074 .. 2^1023), so that chains of products cross the thresholds often.

__all__ += ["edge_floats", "edge_models"]


def edge_floats(min_exponent: int = -1074, max_exponent: int = 1023, integers: int = 7) -> st.SearchStrategy[float]:
    """Finite floats m * 2^e: m a small signed integer, e anywhere in [min_exponent, max_exponent]
    (subnormals included), or 0."""
    def scaled(m: int, e: int) -> float:
        with np.errstate(over="ignore"):  # m 2^1023 with |m| > 1 is no float: filtered out below
            return float(np.ldexp(float(m), e))

    return st.one_of(st.just(0.0), st.builds(scaled, st.integers(-integers, integers), st.integers(min_exponent, max_exponent))).filter(np.isfinite)


@st.composite
def _scaled_array(draw, shape: tuple, scale_exponent: int, zero_chance: float = 0.4) -> np.ndarray:
    """Entries m * 2^(scale_exponent + j), m in -7..7, j in -3..3, many exact zeros."""
    size = int(np.prod(shape)) if shape else 1
    mantissas = draw(st.lists(st.integers(-7, 7), min_size=size, max_size=size))
    shifts = draw(st.lists(st.integers(-3, 3), min_size=size, max_size=size))
    zeros = draw(st.lists(st.floats(0, 1).map(lambda u: u < zero_chance), min_size=size, max_size=size))
    with np.errstate(over="ignore"):  # m 2^1023 with |m| > 1 is not a float: such entries become 0
        values = np.array([0.0 if z else float(np.ldexp(float(m), int(np.clip(scale_exponent + j, -1074, 1023))))
                           for m, j, z in zip(mantissas, shifts, zeros)])
    values[~np.isfinite(values)] = 0.0
    return values.reshape(shape)


@st.composite
def edge_models(draw, max_N: int = 3, max_R: int = 2, max_d: int = 4, max_d_mlp: int = 3, max_layers: int = 2, max_hops: int = 2):
    """(weights, instance): a one-head file with N <= max_N, R <= max_R, d_model <= max_d, one or
    more layers, single-hop or k-hop (exact chains) queries, maybe positional embeddings; each
    array at its own power-of-two scale anywhere in the float64 range (subnormal to 2^1020),
    attn_scale likewise. Meant for differential tests of verifiers against ball arithmetic."""
    from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights

    N = draw(st.integers(2, max_N))
    R = draw(st.integers(1, max_R))
    d = draw(st.integers(1, max_d))
    d_head = draw(st.integers(1, 2))
    d_mlp = draw(st.integers(1, max_d_mlp))
    layers = draw(st.integers(1, max_layers))
    hops = draw(st.integers(1, max_hops))
    scale_of = lambda: draw(st.sampled_from([0, 0, 0, -20, 20]) | st.integers(-1074, 1020))  # noqa: E731
    blocks = []
    for _ in range(layers):
        shapes = {"W_Q": (1, d, d_head), "W_K": (1, d, d_head), "W_V": (1, d, d_head), "W_O": (1, d_head, d),
                  "W_in": (d, d_mlp), "b_in": (d_mlp,), "W_out": (d_mlp, d), "b_out": (d,)}
        a = {name: draw(_scaled_array(shape, scale_of())) for name, shape in shapes.items()}
        blocks.append(Block(AttentionWeights(a["W_Q"], a["W_K"], a["W_V"], a["W_O"]), MLPWeights(a["W_in"], a["b_in"], a["W_out"], a["b_out"])))
    W_E = draw(_scaled_array((N + R, d), scale_of()))
    W_U, b_U = draw(_scaled_array((d, N), scale_of())), draw(_scaled_array((N,), scale_of()))
    W_pos = draw(_scaled_array((hops + 1, d), scale_of())) if draw(st.booleans()) else None
    scale = draw(st.sampled_from([1.0, 0.5, 2.0]) | edge_floats(-1074, 1020).filter(lambda v: v != 0))
    instance = draw(instances(min_N=N, max_N=N, min_R=R, max_R=R, explicit_max_N=N))
    kinds, extra = (("single_hop",), {}) if hops == 1 else (("multi_hop",), {"hops": hops, "chains": "exact"})
    meta = ModelMeta(N=N, R=R, n_layers=layers, attn_scale=float(scale), query_kinds=kinds, extra=extra)
    return TransformerWeights(W_E, tuple(blocks), W_U, b_U, meta, W_pos), instance

__all__ += ["rescaled", "edge_rescaled_constructions"]


def rescaled(weights, k: int = 0, a: int = 0, b: int = 0, c: int = 0, e: int = 0):
    """The same one-layer model with its scales moved by powers of two (exact in real arithmetic):
    residual x 2^k (W_E, W_O, W_out, b_out), values x 2^a against W_O x 2^-a, queries x 2^b against
    keys x 2^-b (scores / 2^2k through W_Q, W_K), hidden units x 2^c (W_in, b_in, W_out), logits
    x 2^e (W_U, b_U). ReLU is positively homogeneous, so every margin is the original times 2^e;
    the float64 values on the way are not, and that is the point. Out-of-range entries become inf,
    which ``TransformerWeights`` refuses: draw exponents that keep the stored values finite."""
    from dataclasses import replace

    attn, mlp = weights.blocks[0].attn, weights.blocks[0].mlp
    with np.errstate(over="ignore", under="ignore"):
        attn = replace(attn, W_Q=np.ldexp(attn.W_Q, b - k), W_K=np.ldexp(attn.W_K, -b - k), W_V=np.ldexp(attn.W_V, a),
                       W_O=np.ldexp(attn.W_O, -a))
        mlp = replace(mlp, W_in=np.ldexp(mlp.W_in, c - k), b_in=np.ldexp(mlp.b_in, c), W_out=np.ldexp(mlp.W_out, k - c),
                      b_out=np.ldexp(mlp.b_out, k))
        W_E = np.ldexp(weights.W_E, k)
        W_pos = None if weights.W_pos is None else np.ldexp(weights.W_pos, k)
        W_U, b_U = np.ldexp(weights.W_U, e - k), np.ldexp(weights.b_U, e)
    return replace(weights, W_E=W_E, W_pos=W_pos, blocks=(replace(weights.blocks[0], attn=attn, mlp=mlp),), W_U=W_U, b_U=b_U)


@st.composite
def edge_rescaled_constructions(draw, max_N: int = 6, max_R: int = 2, spread: int = 1000):
    """(weights, instance): a small exact construction (block or planar, binary codes, maybe made
    non-exact by ``without_exactness_proof``) moved by ``rescaled``, each array's shift drawn
    anywhere in [-spread, spread] (the five exponents are drawn so that every array's shift is),
    so stored values stay finite and normal while the products on the way cross the thresholds.
    Every exact margin is 2 * 2^e."""
    from georecall.constructions import build_construction

    N = draw(st.integers(2, max_N))
    R = draw(st.integers(1, max_R))
    instance = Instance.random(N, R, draw(st.integers(0, 2**16)))
    weights = build_construction(draw(st.sampled_from(["block", "planar"])), instance).weights
    if draw(st.booleans()):
        weights = without_exactness_proof(weights)
    k = draw(st.integers(-spread, spread))
    a = draw(st.integers(-spread, spread))
    b = draw(st.integers(abs(k) - spread, spread - abs(k)))  # b - k and -b - k in range
    c = draw(st.integers(max(-spread, k - spread), min(spread, k + spread)))  # c, c - k in range
    e = draw(st.integers(max(-spread, k - spread), min(spread, k + spread)))  # e, e - k in range
    return rescaled(weights, k=k, a=a, b=b, c=c, e=e), instance
