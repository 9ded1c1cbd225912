"""Small weights files at the edges of float64, built from docs/FORMAT.md alone (issue 19's cases).

Each builder returns (weights, instance, truth) where truth maps a query index to what ball
arithmetic at 600+ bits says of it: its exact margin, or "overflow" when every conforming
evaluation overflows. The numbers are chosen so that a float64 evaluation and the exact value
disagree; the docstrings say how. tests/test_edges.py runs every path on them.
"""

from __future__ import annotations

import numpy as np

from georecall.theory.instance import Instance
from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights

SUB = 2.0**-1074  # the smallest subnormal


def one_layer(W_E, W_Q, W_K, W_V, W_O, W_U, b_U, facts, *, scale=1.0, W_in=None, b_in=None, W_out=None, b_out=None):
    """A one-head, one-layer file from plain lists (a zero MLP unless given)."""
    f = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    W_E, W_U = f(W_E), f(W_U)
    d = W_E.shape[1]
    W_in = np.zeros((d, 1)) if W_in is None else f(W_in)
    b_in = np.zeros(W_in.shape[1]) if b_in is None else f(b_in)
    W_out = np.zeros((W_in.shape[1], d)) if W_out is None else f(W_out)
    b_out = np.zeros(d) if b_out is None else f(b_out)
    facts = np.asarray(facts, dtype=np.int64)
    R, N = facts.shape
    meta = ModelMeta(N=N, R=R, n_layers=1, attn_scale=float(scale))
    attn = AttentionWeights(f(W_Q), f(W_K), f(W_V), f(W_O))
    weights = TransformerWeights(W_E, (Block(attn, MLPWeights(W_in, b_in, W_out, b_out)),), W_U, f(b_U), meta)
    return weights, Instance.from_arrays(facts)


def _head(d: int, entries: dict) -> np.ndarray:
    """A [1, d, 1] (or [1, 1, d] for 'O') one-head map from {(row, col): value}."""
    out = np.zeros((1, d, 1))
    for (row, col), value in entries.items():
        out[0, row, col] = value
    return out


def score_underflow():
    """Case 1. q = x1 W_Q = 1.625 * 2^-1074 rounds to 2 * 2^-1074, then meets a key of 2^1000 and a
    scale of 2^73: the float64 score is 1.0, the exact one 0.8125. Subject 0's answer needs
    A_0 v > 0.71; float64 gives sigma(1) = 0.731, the exact pattern sigma(0.8125) = 0.693.
    Every path used to say EXACT. Subject 1 is correct, but scale * W_K = 2^1073 overflows in
    an allowed association: fragile."""
    W_E = [[1, 0, 1], [1, 0, 0], [0, 1.625, 0]]  # coords: key, query, value
    W_O = np.zeros((1, 1, 3))
    W_O[0, 0, 2] = 1
    W_U = np.zeros((3, 2))
    W_U[2, 0] = 1
    weights = one_layer(W_E, _head(3, {(1, 0): SUB}), _head(3, {(0, 0): 2.0**1000}), _head(3, {(2, 0): 1}), W_O, W_U, [0, 0.71],
                        [[0, 1]], scale=2.0**73)
    return (*weights, {0: -0.017358016865263813, 1: 0.71})


def value_underflow():
    """Case 2. v = x0 W_V = 1.375 * 2 * 2^-1074 rounds to 3 * 2^-1074 and A v = 1.5 * 2^-1074 to
    2 * 2^-1074 before W_O = 2^1000 and W_in = 2^73 scale it up: §3's order gives margin 0.2,
    the exact margin is -0.1125 (the fast path's association x0 (W_V W_O) is exact)."""
    W_E = [[0, 1.375, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]  # coords: relation flag, value, attention out, MLP out
    W_O = np.zeros((1, 1, 4))
    W_O[0, 0, 2] = 2.0**1000
    W_in = np.zeros((4, 1))
    W_in[2, 0] = 2.0**73
    W_out = np.zeros((1, 4))
    W_out[0, 3] = 1
    W_U = np.zeros((4, 2))
    W_U[3, 0] = 1
    weights = one_layer(W_E, np.zeros((1, 4, 1)), np.zeros((1, 4, 1)), _head(4, {(1, 0): 2 * SUB}), W_O, W_U, [0, 0.8], [[0, 1]],
                        W_in=W_in, W_out=W_out)
    return (*weights, {0: -0.1125, 1: 0.8})


def _cancelling_residual(big: float, small: float, read: float, rival_bias: float):
    """z = 2 x1 + x0 = 2 big + small rounds away 1/4 ulp; b_out = -2 big leaves 1 ulp (float64)
    against 3/4 ulp (exact); W_U reads it with weight ``read``, the rival is a bias."""
    W_E = [[small, 0], [0, 0], [big, 0]]
    W_O = np.zeros((1, 1, 2))
    W_O[0, 0, 0] = 1
    W_U = np.zeros((2, 2))
    W_U[0, 0] = read
    return one_layer(W_E, np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), _head(2, {(0, 0): 2}), W_O, W_U, [0, rival_bias], [[0, 1]],
                     b_out=[-2 * big, 0])


def unembedding_norm_underflow():
    """Case 3a. A residual coordinate off by 2^453 (after cancelling 2^507) read by W_U entries of
    2^-590, whose squares underflow: a plain column norm is 0 and the radius term r ||w|| vanishes.
    Float64 margin 2^-138, exact -2^-138."""
    weights = _cancelling_residual(2.0**506, 3 * 2.0**453, 2.0**-590, 7 * 2.0**-138)
    return (*weights, {0: -(2.0**-138), 1: 7 * 2.0**-138})


def residual_norm_underflow():
    """Case 3b. The same at 2^-548: the residual and its radius (about 2^-600) have squares that
    underflow, so plain norms of both are 0. W_U reads it with 2^500. Float64 margin 2^-103,
    exact -2^-103."""
    weights = _cancelling_residual(2.0**-549, 3 * 2.0**-602, 2.0**500, 7 * 2.0**-103)
    return (*weights, {0: -(2.0**-103), 1: 7 * 2.0**-103})


def certificate_fed_a_wrong_radius(N: int = 4097):
    """Case 4. A nearest-code file (multilevel codes, 128 levels, d0 = 2; b_U = -||u||^2 / 2) whose
    residual is c A_0 u with case 1's scores: float64 puts it on the answer's code, the exact
    pattern shrinks it by 0.947, onto another code wherever |u_i| is large. The certificate,
    fed case 1's radius, used to certify every query."""
    levels = np.arange(-127.0, 128.0, 2.0)
    codes = np.stack(np.meshgrid(levels, levels, indexing="ij"), axis=-1).reshape(-1, 2)[:N]
    rng = np.random.default_rng(0)
    answers = rng.permutation(N)
    d = 4  # coords: code (2), key, query
    W_E = np.zeros((N + 1, d))
    W_E[:N, :2] = codes[answers]
    W_E[:N, 2] = 1.0
    W_E[N, 3] = 1.625
    scale_back = float(1.0 / (1.0 / (1.0 + np.exp(-1.0))))  # 1 / sigma(1): the float64 pattern's reciprocal
    W_V = np.zeros((1, d, 2))
    W_V[0, 0, 0] = W_V[0, 1, 1] = scale_back
    W_O = np.zeros((1, 2, d))
    W_O[0, 0, 0] = W_O[0, 1, 1] = 1.0
    W_U = np.zeros((d, N))
    W_U[:2] = codes.T
    b_U = -0.5 * np.einsum("ij,ij->i", codes, codes)
    W_Q, W_K = np.zeros((1, d, 2)), np.zeros((1, d, 2))
    W_Q[0, 3, 0], W_K[0, 2, 0] = SUB, 2.0**1000
    weights = one_layer(W_E, W_Q, W_K, W_V, W_O, W_U, b_U, answers[None, :], scale=2.0**73)
    return (*weights, None)


def off_support_overflow():
    """Case 5. A residual coordinate that W_U never reads is 2^1023 + 2^1023 = 2^1024 in every
    conforming evaluation: it overflows, and §3's x W_U gives NaN (inf * 0). The exact margins
    are positive, but every evaluation is non-finite: a failure, on every path."""
    W_E = [[0, 1, 0], [0, 0, 1], [2.0**1023, 0, 0]]  # coords: overflow, subject 0 flag, subject 1 flag
    W_V = np.zeros((1, 3, 3))
    W_V[0] = np.eye(3) * 2  # weight 1/2 each: z = x1 + x0 + x1
    W_O = np.eye(3)[None]
    W_U = np.array([[0, 0], [1, 0], [0, 1]], dtype=float)
    weights = one_layer(W_E, np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), W_V, W_O, W_U, [0, 0], [[0, 1]])
    return (*weights, {0: "overflow", 1: "overflow"})


def association_overflow():
    """Case 6. §3's (x0 W_V) W_O = (2^-1000 2^600) 2^600 = 2^200 is finite, but the allowed
    association x0 (W_V W_O) overflows (2^1200): correct, never robust. Exact margins positive."""
    W_E = [[2.0**-1000, 0], [0, 0], [0, 1]]  # coords: value, relation flag
    W_V = _head(2, {(0, 0): 2.0**600})
    W_O = np.zeros((1, 1, 2))
    W_O[0, 0, 0] = 2.0**600
    W_U = np.array([[2.0**-199, 0], [0, 0]])  # z_0 = 2^199 for subject 0: logit_0 = 1; 0 for subject 1
    weights = one_layer(W_E, np.zeros((1, 2, 1)), np.zeros((1, 2, 1)), W_V, W_O, W_U, [0, 0.25], [[0, 1]])
    return (*weights, {0: 0.75, 1: 0.25})


def huge_unembedding():
    """Case 7. W_U = 1e160 I and one-hot residuals: exact margins +-5e159 apart, no NaN or inf in
    any evaluation, but the squares of W_U's columns overflow (1e320). A plain norm gives an
    infinite radius and the answer became its own rival: two false failures."""
    W_E = [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
    W_V = np.zeros((1, 3, 3))
    W_V[0, :2, :2] = np.eye(2)
    W_O = np.zeros((1, 3, 3))
    W_O[0, :2, :2] = np.eye(2)
    W_U = np.zeros((3, 2))
    W_U[:2] = 1e160 * np.eye(2)
    weights = one_layer(W_E, np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), W_V, W_O, W_U, [0, 0], [[0, 1]])
    return (*weights, {0: 5e159, 1: 5e159})


CASES = {
    "score_underflow": score_underflow,
    "value_underflow": value_underflow,
    "unembedding_norm_underflow": unembedding_norm_underflow,
    "residual_norm_underflow": residual_norm_underflow,
    "certificate_fed_a_wrong_radius": certificate_fed_a_wrong_radius,
    "off_support_overflow": off_support_overflow,
    "association_overflow": association_overflow,
    "huge_unembedding": huge_unembedding,
}
