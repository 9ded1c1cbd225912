"""Fast single-hop paths with rigorous radii; tests hold them to the bounded reference on the same inputs.

single_hop_residuals: one-layer models on [s, N + r] prompts. The subject side of attention
(keys, and values through W_O) is computed once per subject and the relation side once per
relation, instead of once per query; the softmax over the two positions and the MLP run per
query. Its radius is a per-row norm bound (docs/theorems/soundness.md, Lemma S7): the
attention stage from per-subject and per-relation magnitude twins, the MLP input by
Cauchy-Schwarz on W_in's columns (no second wide product), the output stage on the support
columns only. So the bound costs O(1) per hidden unit, not a second matrix product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas

from georecall.theory.checks import InputError
from georecall.theory.parallel import map_in_threads
from georecall.theory.rounding import overflow_is_a_verdict
from georecall.theory.bounded import ExactSingleHop, MarginBatch, UnembeddingNorms, check_context, unembedding_support
from georecall.theory.rounding import (
    INFLATE,
    TINY,
    attention_output_depth,
    chain_underflow,
    gamma,
    in_range,
    magnitude,
    mlp_in_depth,
    mlp_out_depth,
    norm_up,
    row_magnitude,
    score_depth,
    softmax_radius,
    stage_radius,
)
from georecall.theory.weights import TransformerWeights

FAST_MEMORY_BUDGET_BYTES = 256 * 2**20
LOGIT_BLOCK_BYTES = 16 * 2**20  # one block of logits: small enough for its passes to stay in cache
COLUMN_BLOCK = 2048  # attributes per logits block



@dataclass
class BoundedRows:
    """Residual rows on some columns with norm bounds: ||exact - center|| <= radius_norm (and the
    same for every conforming evaluation); upper_norm >= || |center| + radius ||; safe: finite
    here and no conforming evaluation can overflow (Lemma S1's envelope, on every column)."""

    center: np.ndarray
    radius_norm: np.ndarray
    upper_norm: np.ndarray
    safe: np.ndarray


class SingleHopSides:
    """Per-relation quantities, with everything the MLP needs folded through W_in, computed once per weights."""

    def __init__(self, weights: TransformerWeights, columns: np.ndarray | None):
        if weights.n_layers != 1:
            raise InputError("single_hop_residuals handles one-layer models; use theory.bounded.BoundedForward")
        check_context(weights, 2)
        self.weights = weights
        N, R, d = weights.meta.N, weights.meta.R, weights.d_model
        self.columns = np.arange(d) if columns is None else np.asarray(columns)
        cols = self.columns
        attn, mlp = weights.blocks[0].attn, weights.blocks[0].mlp
        H = attn.n_heads
        self.exact = bool(ExactSingleHop(weights))  # Lemma S8: every radius 0, nothing below needed
        x1 = weights.W_E[N : N + R]
        self.pos = None if weights.W_pos is None else weights.W_pos[:2]
        if self.pos is not None:
            x1, self.r1 = _with_position(x1, self.pos[1])
        else:
            self.r1 = np.zeros_like(x1)
        self.x1_cols = x1[:, cols]
        self.q1 = [x1 @ attn.W_Q[h] for h in range(H)]
        self.k1 = [x1 @ attn.W_K[h] for h in range(H)]
        out1 = [(x1 @ attn.W_V[h]) @ attn.W_O[h] for h in range(H)]
        self.out1_cols = [o[:, cols] for o in out1]
        self.out1_W_in = [o @ mlp.W_in for o in out1]  # [R, d_mlp]: the relation side of the MLP input
        self.x1_W_in = x1 @ mlp.W_in + mlp.b_in
        # The subject side, reassociated (Lemma S7): x_0 (W_K q_1^T), x_0 (W_V W_O W_in), x_0 (W_V W_O)[:, cols]
        self.key_query = [attn.W_K[h] @ self.q1[h].T for h in range(H)]  # [d, R]
        value_out = [attn.W_V[h] @ attn.W_O[h] for h in range(H)]
        self.value_in = [v @ mlp.W_in for v in value_out]  # [d, d_mlp]
        self.value_cols = [v[:, cols] for v in value_out]  # [d, k]
        self.W_out_cols = np.ascontiguousarray(mlp.W_out[:, cols])
        self.W_out_cols_T = np.ascontiguousarray(self.W_out_cols.T)
        self.b_out_cols = mlp.b_out[cols]
        if not self.exact:
            self._radius_terms(weights, x1)

    def _radius_terms(self, weights: TransformerWeights, x1: np.ndarray) -> None:
        """The magnitude twins, norms and Lemma S1 magnitudes the radii need (Lemma S7)."""
        d = weights.d_model
        attn, mlp = weights.blocks[0].attn, weights.blocks[0].mlp
        H = attn.n_heads
        upper1 = np.abs(x1) + self.r1
        self.q1_up = [upper1 @ np.abs(attn.W_Q[h]) for h in range(H)]
        self.q1_c = [np.abs(x1) @ np.abs(attn.W_Q[h]) for h in range(H)]
        self.k1_up = [upper1 @ np.abs(attn.W_K[h]) for h in range(H)]
        self.k1_c = [np.abs(x1) @ np.abs(attn.W_K[h]) for h in range(H)]
        self.out1_up = [norm_up(_value_twin(upper1, attn, h)) for h in range(H)]
        self.out1_pert = [norm_up(_value_twin(self.r1, attn, h)) for h in range(H)]
        self.x1_up_norm = norm_up(upper1)
        self.r1_norm = norm_up(self.r1)
        self.key_query_up = [np.abs(attn.W_K[h]) @ self.q1_up[h].T * (1 + gamma(d + attn.d_head + 2)) for h in range(H)]
        self.key_query_c = [np.abs(attn.W_K[h]) @ self.q1_c[h].T for h in range(H)]
        # ||(|x| |W_V|)|W_O| || <= ||x|| || |W_V||W_O| ||_F (Cauchy-Schwarz row by row)
        self.value_twin_norm = [float(norm_up((_value_twin(np.eye(d), attn, h)).reshape(1, -1))[0]) for h in range(H)]
        # Lemma S7: the attention stage and the MLP input form one multilinear stage (depth of both)
        self.attn_depth = attention_output_depth(d, attn.n_heads, attn.d_head, 2)
        self.pre_depth = self.attn_depth + mlp_in_depth(d)
        self.W_in_norms = UnembeddingNorms(mlp.W_in, mlp.b_in)
        abs_W_out_cols = np.abs(self.W_out_cols)
        # rho_pre[q, c] = alpha_q n_c + beta_c + underflow_q, so rho_pre |W_out| costs three vectors
        self.n_abs_W_out = self.W_in_norms.column @ abs_W_out_cols * (1 + gamma(mlp.d_mlp + 2))
        beta = 8.0 * gamma(self.pre_depth) * self.W_in_norms.bias + TINY
        self.beta_abs_W_out = beta @ abs_W_out_cols * (1 + gamma(mlp.d_mlp + 2))
        self.beta_norm = float(norm_up(beta[None, :])[0])
        self.ones_abs_W_out = abs_W_out_cols.sum(axis=0) * (1 + gamma(mlp.d_mlp + 2))
        self.W_in_column_norm = float(norm_up(self.W_in_norms.column[None, :])[0])
        self.W_out_frobenius = float(norm_up(self.W_out_cols.reshape(1, -1))[0])
        self.b_out_norm = float(norm_up(self.b_out_cols[None, :])[0])
        # Lemma S1's factor magnitudes: relation rows, the score chain, the value chain into W_in or the residual
        self.mu1 = row_magnitude(upper1)
        self.max1 = np.max(upper1, axis=1)
        self.mu_QK = magnitude(attn.W_Q) * magnitude(attn.W_K)
        self.mu_VO_in = magnitude(attn.W_V) * magnitude(attn.W_O) * magnitude(mlp.W_in, "last")
        self.mu_VO = magnitude(attn.W_V) * magnitude(attn.W_O, "last")
        self.mu_in = float(magnitude(mlp.W_in, "last"))
        self.mu_out = float(magnitude(mlp.W_out, "last"))  # every column: the envelope covers W_U's zero rows too
        self.b_in_max = float(np.max(np.abs(mlp.b_in), initial=0.0))
        self.b_out_max = float(np.max(np.abs(mlp.b_out), initial=0.0))


def _with_position(x: np.ndarray, position: np.ndarray):
    upper = np.abs(x) + np.abs(position)
    return x + position, stage_radius(upper, upper, 2)


def _value_twin(magnitudes: np.ndarray, attn, h: int) -> np.ndarray:
    """(|m| |W_V[h]|) |W_O[h]|, upper-rounded: the magnitude twin of (x W_V) W_O."""
    return (magnitudes @ np.abs(attn.W_V[h])) @ np.abs(attn.W_O[h]) * (1 + gamma(attn.W_V.shape[1] + attn.d_head + 2))


def _finite_rows(values: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Rows of ``values`` with no NaN/inf, read off their norms (a non-finite norm is re-checked
    entry by entry: squares of huge finite values overflow too)."""
    finite = np.isfinite(norms)
    doubtful = np.flatnonzero(~finite)
    if len(doubtful):
        finite[doubtful] = np.all(np.isfinite(values[doubtful]), axis=1)
    return finite


def bounded_single_hop_residuals(weights: TransformerWeights, subjects: np.ndarray, columns: np.ndarray | None = None,
                                 sides: SingleHopSides | None = None) -> BoundedRows:
    """Final residual (on ``columns``) for every (s, r), s in ``subjects``, with norm radii: rows q = s * R + r.

    The MLP input is computed as (x_1 W_in + b_in) + sum_h a_0 ((x_0 W_V) W_O W_in) + a_1 (...):
    subject and relation sides through W_in once each, so the widest product has one row per
    subject, not per query (another association of the same monomials: Lemma S7).
    """
    sides = sides or SingleHopSides(weights, columns)
    R = weights.meta.R
    attn, scale = weights.blocks[0].attn, weights.meta.attn_scale
    x0 = weights.W_E[subjects]
    r0 = None
    if sides.pos is not None:
        x0, r0 = _with_position(x0, sides.pos[0])
    S, k = len(subjects), len(sides.columns)
    safe = np.ones((S, R), dtype=bool)
    weights0, weights1, subject_in, subject_cols, pattern_radii = [], [], [], [], []
    for h in range(attn.n_heads):
        s10 = scale * (x0 @ sides.key_query[h])  # [S, R]: the last position attends to the subject
        s11 = scale * np.einsum("re,re->r", sides.q1[h], sides.k1[h])  # [R]: and to itself
        safe &= np.isfinite(s10) & np.isfinite(s11)[None, :]
        top = np.maximum(s10, s11[None, :])
        e0, e1 = np.exp(s10 - top), np.exp(s11[None, :] - top)
        a0, a1 = e0 / (e0 + e1), e1 / (e0 + e1)
        out0_W_in = x0 @ sides.value_in[h]  # [S, d_mlp]: the subject side of the MLP input
        safe &= np.isfinite(norm_up(out0_W_in))[:, None]
        weights0.append(a0)
        weights1.append(a1)
        subject_in.append(out0_W_in)
        subject_cols.append(x0 @ sides.value_cols[h])
        if not sides.exact:
            pattern_radii.append(_pattern_radius(sides, x0, r0, h, s10, s11, top, a0, a1))
    out = np.empty((S, R, k))
    hidden_norm = np.empty((S, R))
    finite_hidden = np.ones((S, R), dtype=bool)
    ones = np.ones(S)

    def relation_block(r: int) -> None:
        """The MLP for relation r: its [S, d_mlp] block stays in cache through every pass."""
        pre = np.multiply(subject_in[0], weights0[0][:, r, None], out=np.empty_like(subject_in[0]))
        for a0, side in zip(weights0[1:], subject_in[1:]):
            pre += side * a0[:, r, None]
        # relation side and bias: one product accumulated into pre (BLAS beta = 1)
        left = np.stack([ones] + [w[:, r] for w in weights1], axis=1)
        right = np.vstack([sides.x1_W_in[r][None, :]] + [side[r][None, :] for side in sides.out1_W_in])
        pre = _accumulate_product(left, right, pre)
        hidden = np.maximum(pre, 0.0, out=pre)
        hidden_norm[:, r] = norm_up(hidden)
        finite_hidden[:, r] = _finite_rows(hidden, hidden_norm[:, r])
        z_r = np.empty((S, k))
        z_r[...] = sides.x1_cols[r]
        for a0, a1, cols0, cols1 in zip(weights0, weights1, subject_cols, sides.out1_cols):
            z_r += a0[:, r, None] * cols0
            z_r += a1[:, r, None] * cols1[r][None, :]
        # W_out^T h^T: OpenBLAS is faster with the skinny side first
        out[:, r, :] = z_r + ((sides.W_out_cols_T @ hidden.T).T + sides.b_out_cols)

    for r in range(R):
        relation_block(r)
    out = out.reshape(S * R, k)
    safe = (safe & finite_hidden).reshape(-1)
    out_norm = norm_up(out)
    safe &= _finite_rows(out, out_norm)
    if sides.exact:  # Lemma S8: every conforming evaluation computes these rows exactly, in range
        return BoundedRows(out, np.zeros(S * R), out_norm, safe)
    radius, upper_norm, in_bounds = _residual_radius(sides, x0, r0, weights0, weights1, pattern_radii, hidden_norm.reshape(-1), out_norm)
    return BoundedRows(out, radius, upper_norm, safe & in_bounds)


def _pattern_radius(sides: SingleHopSides, x0, r0, h: int, s10, s11, top, a0, a1):
    """(radius of a0, radius of a1, safe) for head h: Lemma S1 on the score chain, Lemma S3."""
    weights = sides.weights
    attn, scale, d = weights.blocks[0].attn, weights.meta.attn_scale, weights.d_model
    upper0 = np.abs(x0) if r0 is None else np.abs(x0) + r0
    depth = score_depth(d, attn.d_head)
    mu0 = row_magnitude(upper0)
    G10 = max(1.0, abs(scale)) * sides.mu_QK[h] * np.outer(mu0, sides.mu1)
    G11 = max(1.0, abs(scale)) * sides.mu_QK[h] * sides.mu1 * sides.mu1
    width = max(d, attn.d_head)
    center10 = abs(scale) * (np.abs(x0) @ sides.key_query_c[h])
    upper10 = abs(scale) * (upper0 @ sides.key_query_up[h])
    r10 = stage_radius(upper10, center10, depth, chain_underflow(G10, 4, width))
    r11 = stage_radius(abs(scale) * np.einsum("re,re->r", sides.q1_up[h], sides.k1_up[h]),
                       abs(scale) * np.einsum("re,re->r", sides.q1_c[h], sides.k1_c[h]), depth, chain_underflow(G11, 4, width))
    scores = np.stack([s10 - top, np.broadcast_to(s11[None, :] - top, s10.shape)], axis=-1)
    radii = np.stack([r10, np.broadcast_to(r11[None, :], r10.shape)], axis=-1)
    pattern_radius = softmax_radius(np.stack([a0, a1], axis=-1), scores, radii, np.array([[True, True]]))
    return pattern_radius[..., 0], pattern_radius[..., 1], in_range(G10) & in_range(G11)[None, :]


def _residual_radius(sides: SingleHopSides, x0, r0, weights0, weights1, pattern_radii, hidden_norm, out_norm):
    """(radius norm, upper norm, in range) of every residual row on the support columns (Lemma S7)."""
    weights = sides.weights
    attn, mlp, d = weights.blocks[0].attn, weights.blocks[0].mlp, weights.d_model
    k = len(sides.columns)
    S, R = x0.shape[0], weights.meta.R
    upper0 = np.abs(x0) if r0 is None else np.abs(x0) + r0
    x0_norm = norm_up(upper0)
    r0_norm = np.zeros(S) if r0 is None else norm_up(r0)
    mu_values = row_magnitude(upper0)[:, None] + sides.mu1[None, :]  # the value matrix [x_0; x_1] as an inner factor
    # ||U - C|| and ||U|| of the attention stage (Lemma S7), accumulated per head; G of its chains
    pert = np.broadcast_to(sides.r1_norm[None, :], (S, R)).copy()
    upper = np.broadcast_to(sides.x1_up_norm[None, :], (S, R)).copy()
    in_bounds = np.ones((S, R), dtype=bool)
    G_pre = sides.mu1[None, :] * sides.mu_in + np.zeros((S, 1))
    G_z = np.zeros((S, R))
    for h, (a0, a1, (ra0, ra1, ok)) in enumerate(zip(weights0, weights1, pattern_radii)):
        in_bounds &= ok
        out0_up = x0_norm * sides.value_twin_norm[h]
        out0_pert = r0_norm * sides.value_twin_norm[h]
        pert += ra0 * out0_up[:, None] + ra1 * sides.out1_up[h][None, :] + a0 * out0_pert[:, None] + a1 * sides.out1_pert[h][None, :]
        upper += (a0 + ra0) * out0_up[:, None] + (a1 + ra1) * sides.out1_up[h][None, :]
        share = np.maximum(a0 + ra0 + a1 + ra1, 1.0) * mu_values
        G_pre += share * sides.mu_VO_in[h]
        G_z += share * sides.mu_VO[h]
    accumulated = 1.0 + 2.0 * gamma(6 * attn.n_heads + 4)  # the roundings of the sums above
    pert, upper = pert * accumulated, upper * accumulated
    width = max(2, d, attn.d_head)
    underflow_z = chain_underflow(G_z, 3, width) + TINY
    underflow_pre = chain_underflow(G_pre, 4, width)
    in_bounds &= in_range(G_pre + sides.b_in_max)
    z_radius = (pert * INFLATE + 8.0 * gamma(sides.attn_depth) * upper + underflow_z * np.sqrt(d)) * INFLATE
    z_upper = (upper * (1.0 + gamma(sides.attn_depth)) + z_radius) * INFLATE  # |z_hat| <= C (1 + gamma_m) <= U (1 + gamma_m)
    alpha = (pert * INFLATE + 8.0 * gamma(sides.pre_depth) * upper) * INFLATE  # rho_pre = alpha n_c + beta_c + underflow
    z_radius, z_upper, alpha, underflow_pre, in_bounds = (v.reshape(-1) for v in (z_radius, z_upper, alpha, underflow_pre, in_bounds))
    pre_term = norm_up(alpha[:, None] * sides.n_abs_W_out[None, :] + sides.beta_abs_W_out[None, :]
                       + underflow_pre[:, None] * sides.ones_abs_W_out[None, :])
    # the output chain h W_out: ||h + rho_pre||_1 <= sqrt(d_mlp) (||h|| + ||rho_pre||)
    pre_norm = (alpha * sides.W_in_column_norm + sides.beta_norm + underflow_pre * np.sqrt(mlp.d_mlp)) * INFLATE
    G_out = np.maximum((hidden_norm + pre_norm) * np.sqrt(mlp.d_mlp) * INFLATE, 1.0) * sides.mu_out
    in_bounds &= in_range(z_upper + G_out + sides.b_out_max)
    out_upper = (z_upper + hidden_norm * sides.W_out_frobenius + pre_term + sides.b_out_norm) * INFLATE
    underflow_out = (chain_underflow(G_out, 1, mlp.d_mlp) + TINY) * np.sqrt(k)
    radius = ((z_radius + pre_term) * INFLATE + 8.0 * gamma(mlp_out_depth(mlp.d_mlp)) * out_upper + underflow_out) * INFLATE
    return radius, (out_norm + radius) * INFLATE, in_bounds


def _accumulate_product(left: np.ndarray, right: np.ndarray, into: np.ndarray) -> np.ndarray:
    """into + left @ right, written into ``into`` by BLAS (one pass instead of a product and a sum)."""
    return blas.dgemm(1.0, right.T, left.T, beta=1.0, c=into.T, overwrite_c=True, trans_a=0, trans_b=0).T


def single_hop_residuals(weights: TransformerWeights, subjects: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """Centers of ``bounded_single_hop_residuals``: [len(subjects) * R, len(columns)], rows q = s * R + r."""
    return bounded_single_hop_residuals(weights, np.asarray(subjects), columns).center


def blocked_margins(residuals: np.ndarray, W_U: np.ndarray, b_U: np.ndarray | None, answers: np.ndarray,
                    column_block: int = COLUMN_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """(margin, best other token) per row of ``residuals @ W_U + b_U``, one block of columns at a time.

    The answer's logit is read from the same matrix product as its rivals, and ties keep the
    lowest token index, as ``answer_margins`` on the whole row does. The full row of logits is
    never held: each block is written, masked and reduced while it is still in cache.
    """
    rows = np.arange(len(answers))
    best = np.full(len(answers), -np.inf)
    best_other = np.zeros(len(answers), dtype=np.int64)
    target = np.empty(len(answers))
    for c0 in range(0, W_U.shape[1], column_block):
        block = residuals @ W_U[:, c0 : c0 + column_block]
        if b_U is not None:
            block += b_U[c0 : c0 + column_block]
        inside = np.flatnonzero((answers >= c0) & (answers < c0 + block.shape[1]))
        target[inside] = block[inside, answers[inside] - c0]
        block[inside, answers[inside] - c0] = -np.inf
        index = block.argmax(axis=1)
        value = block[rows, index]
        better = value > best  # strict: an equal value further right is not preferred
        best[better] = value[better]
        best_other[better] = index[better] + c0
    return target - best, best_other


def blocked_top2(residuals: np.ndarray, W_U: np.ndarray, b_U: np.ndarray | None, column_block: int = COLUMN_BLOCK):
    """Per row of ``residuals @ W_U + b_U``: the largest value and its lowest index, and the largest
    value among the other columns and its lowest index, by blocks of columns (left to right)."""
    n = residuals.shape[0]
    rows = np.arange(n)
    t1, t2 = np.full(n, -np.inf), np.full(n, -np.inf)
    i1, i2 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    for c0 in range(0, W_U.shape[1], column_block):
        block = residuals @ W_U[:, c0 : c0 + column_block]
        if b_U is not None:
            block += b_U[c0 : c0 + column_block]
        j1 = block.argmax(axis=1)
        b1 = block[rows, j1]
        block[rows, j1] = -np.inf
        j2 = block.argmax(axis=1)
        b2 = block[rows, j2]
        j1, j2 = j1 + c0, j2 + c0
        # Columns of this block lie right of every earlier one: an equal value keeps the earlier index.
        new_first = b1 > t1
        second_from_old_first = new_first & (t1 >= b2)
        n2_val = np.where(new_first, np.where(t1 >= b2, t1, b2), np.where(t2 >= b1, t2, b1))
        n2_idx = np.where(new_first, np.where(second_from_old_first, i1, j2), np.where(t2 >= b1, i2, j1))
        t1, i1 = np.where(new_first, b1, t1), np.where(new_first, j1, i1)
        t2, i2 = n2_val, n2_idx
    return t1, i1, t2, i2


def deduplicated_margins(residuals: np.ndarray, W_U: np.ndarray, b_U: np.ndarray | None, answers: np.ndarray,
                         column_block: int = COLUMN_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """``blocked_margins`` computing the logits of each distinct residual row once.

    Identical residual rows have identical logits, so the top two of each distinct row decide every
    query that shares it: answer at the top -> margin top1 - top2; elsewhere the query fails with
    margin logit[answer] - top1 (that logit from one dot product). Constructions whose residual
    depends only on the answer have N distinct rows for N R queries.
    """
    unique, inverse = np.unique(residuals, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    rows_per_block = max(1, LOGIT_BLOCK_BYTES // (8 * column_block))
    if 2 * len(unique) > len(residuals):  # mostly distinct rows: the top-two pass would cost more than it saves
        parts = [blocked_margins(residuals[i : i + rows_per_block], W_U, b_U, answers[i : i + rows_per_block], column_block)
                 for i in range(0, len(residuals), rows_per_block)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    parts = [blocked_top2(unique[i : i + rows_per_block], W_U, b_U, column_block) for i in range(0, len(unique), rows_per_block)]
    t1, i1, t2, i2 = (np.concatenate([p[k] for p in parts]) for k in range(4))
    t1, i1, t2, i2 = t1[inverse], i1[inverse], t2[inverse], i2[inverse]
    at_top = answers == i1
    margins = np.where(at_top, t1 - t2, 0.0)
    off = np.flatnonzero(~at_top)
    if len(off):
        logit = np.einsum("ij,ji->i", residuals[off], W_U[:, answers[off]])
        if b_U is not None:
            logit += b_U[answers[off]]
        margins[off] = np.minimum(logit - t1[off], 0.0)  # idx1 != answer: a rival is at least as large
    return margins, np.where(at_top, i2, i1)


@overflow_is_a_verdict
def verify_single_hop_fast(weights: TransformerWeights, instance, *, memory_budget_bytes: int | None = None, max_listed: int = 10,
                           max_exact: int | None = None, progress=None):
    """Brute force over every single-hop query, through bounded_single_hop_residuals, W_U's non-zero
    rows and column-blocked margins; when every residual row (support columns only) fits the memory
    budget, distinct rows are computed once (``deduplicated_margins``). One-layer models only.
    """
    from georecall.theory.exact import ExactDecider
    from georecall.theory.queries import SingleHopQueries
    from georecall.theory.verdict import DEFAULT_MAX_EXACT, VerdictAccumulator

    budget = memory_budget_bytes or FAST_MEMORY_BUDGET_BYTES
    N, R = instance.N, instance.R
    queries = SingleHopQueries(instance)
    scan = FastScan(weights, instance, budget)
    accumulator = VerdictAccumulator(queries, queries.total, decider=ExactDecider(weights), max_listed=max_listed,
                                     max_exact=DEFAULT_MAX_EXACT if max_exact is None else max_exact)
    for first, stop, batch in scan.batches():
        positions = np.arange(first * R, stop * R)
        accumulator.add(positions, positions, batch)
        if progress is not None:
            progress(stop * R, N * R)
    return accumulator.report("single_hop", N * R, True, chunk_size=scan.chunk_queries,
                              details={"path": "fast_brute_force", "support_rows": int(len(scan.support)),
                                       "column_block": scan.column_block, "deduplicated": bool(scan.deduplicate)})


class FastScan:
    """Margins and radii of every single-hop query (or of chosen subjects), in subject chunks."""

    def __init__(self, weights: TransformerWeights, instance, budget: int):
        N, R = instance.N, instance.R
        self.weights, self.instance = weights, instance
        self.support = unembedding_support(weights)
        self.W_U = np.ascontiguousarray(weights.W_U[self.support])
        self.b_U = weights.b_U if np.any(weights.b_U != 0) else None
        self.norms = UnembeddingNorms(weights.W_U, weights.b_U, rows=self.support)
        self.column_block = min(COLUMN_BLOCK, weights.meta.d_vocab_out)
        d_mlp = max(b.mlp.d_mlp for b in weights.blocks)
        # subjects per residual chunk: a few [R, d_mlp] and [R, d_model] arrays per subject
        self.step = max(1, min(N, budget // (8 * 6 * R * (weights.d_model + d_mlp))))
        self.rows_per_block = max(1, LOGIT_BLOCK_BYTES // (8 * self.column_block))  # residual rows per logits block
        # residual rows, unique rows, inverse, answers and four top-2 arrays: about 2K + 14 numbers per query
        self.deduplicate = 8 * N * R * (2 * len(self.support) + 14) <= budget
        self.chunk_queries = (N if self.deduplicate else self.step) * R
        self.sides = SingleHopSides(weights, self.support) if weights.n_layers == 1 else None

    def subject_chunks(self):
        N = self.instance.N
        return (np.arange(first, min(first + self.step, N)) for first in range(0, N, self.step))

    def rows(self, subjects: np.ndarray) -> BoundedRows:
        return bounded_single_hop_residuals(self.weights, subjects, self.support, self.sides)

    def batch(self, rows: BoundedRows, answers: np.ndarray, margins, best_other) -> MarginBatch:
        if self.sides is not None and self.sides.exact:  # Lemma S8: the float64 logits are the exact ones
            zero = np.zeros(len(answers))
            return MarginBatch(margins, best_other, zero, zero, rows.safe)
        target, rival = self.norms.radii(rows.radius_norm, rows.upper_norm, answers, self.weights.d_model)
        return MarginBatch(margins, best_other, target, rival, rows.safe & self.norms.logits_in_range(rows.upper_norm))

    def batches(self):
        """(first subject, stop subject, MarginBatch) covering every query in order."""
        N = self.instance.N
        facts_T = self.instance.facts.T
        if self.deduplicate:
            parts = list(map_in_threads(self.rows, self.subject_chunks()))
            rows = BoundedRows(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("center", "radius_norm", "upper_norm", "safe")))
            answers = facts_T.reshape(-1)
            margins, best_other = deduplicated_margins(rows.center, self.W_U, self.b_U, answers, self.column_block)
            yield 0, N, self.batch(rows, answers, margins, best_other)
            return
        for subjects, rows in zip(self.subject_chunks(), map_in_threads(self.rows, self.subject_chunks())):
            first, stop = int(subjects[0]), int(subjects[-1]) + 1
            answers = facts_T[first:stop].reshape(-1)
            margins, best_other = self.margins(rows.center, answers)
            yield first, stop, self.batch(rows, answers, margins, best_other)

    def margins(self, residuals: np.ndarray, answers: np.ndarray):
        """blocked_margins over blocks of rows small enough for each logits block to stay in cache."""
        parts = [blocked_margins(residuals[i : i + self.rows_per_block], self.W_U, self.b_U, answers[i : i + self.rows_per_block],
                                 self.column_block) for i in range(0, len(answers), self.rows_per_block)]
        if not parts:
            return np.empty(0), np.empty(0, dtype=np.int64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def query_batch(self, indices: np.ndarray) -> MarginBatch:
        """Margins of chosen queries (sorted indices), computing the rows of their subjects only."""
        R = self.instance.R
        subjects = np.unique(indices // R)
        rows = self.rows(subjects)
        where = np.searchsorted(subjects, indices // R) * R + indices % R
        picked = BoundedRows(rows.center[where], rows.radius_norm[where], rows.upper_norm[where], rows.safe[where])
        answers = self.instance.facts[indices % R, indices // R]
        margins, best_other = self.margins(picked.center, answers)
        return self.batch(picked, answers, margins, best_other)


__all__ = ["single_hop_residuals", "bounded_single_hop_residuals", "blocked_margins", "blocked_top2", "deduplicated_margins",
           "verify_single_hop_fast", "FastScan", "BoundedRows"]
