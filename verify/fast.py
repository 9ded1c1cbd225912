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

from georecall.theory.arrays import read_rows, rows_as_stored
from georecall.theory.checks import InputError
from georecall.verify.chunks import map_in_threads
from georecall.verify.fast_radius import _with_position, attach_radius_terms, pattern_radius, residual_radius
from georecall.verify.margins import COLUMN_BLOCK, LOGIT_BLOCK_BYTES, blocked_margins, deduplicated_margins
from georecall.verify.error_model import overflow_is_a_verdict
from georecall.verify.reference import ExactSingleHop, MarginBatch, UnembeddingNorms, check_context, unembedding_support
from georecall.verify.error_model import (
    norm_up,
)
from georecall.theory.weights import TransformerWeights

FAST_MEMORY_BUDGET_BYTES = 256 * 2**20
SPARSE_BELOW = 0.05  # a product factor with fewer non-zeros than this share (and 4,096 entries or more) is multiplied as sparse


def sparse_if_mostly_zero(values: np.ndarray):
    """``values`` for products ``x @ values``: a sparse matrix where it is large enough and mostly zero
    (the constructions' selectors and value maps: 0.5% of W_V W_O W_in at N = 2^20). Skipping exact
    zeros is one more summation order of the same products (soundness.md, Lemma S1)."""
    if values.size >= 4096 and np.count_nonzero(values) < SPARSE_BELOW * values.size:
        from scipy import sparse

        return sparse.csc_matrix(values)
    return values



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
            raise InputError("single_hop_residuals handles one-layer models; use verify.reference.BoundedForward")
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
        # per relation, the rows a chunk's [1, a1 of each head] multiplies: bias and relation row, then each head's value
        self.relation_in = np.ascontiguousarray(np.stack([self.x1_W_in] + self.out1_W_in, axis=1))  # [R, 1 + H, d_mlp]
        # The subject side, reassociated (Lemma S7): x_0 (W_K q_1^T), x_0 (W_V W_O W_in), x_0 (W_V W_O)[:, cols]
        key_query = [attn.W_K[h] @ self.q1[h].T for h in range(H)]  # [d, R]
        value_out = [attn.W_V[h] @ attn.W_O[h] for h in range(H)]
        value_in = [v @ mlp.W_in for v in value_out]  # [d, d_mlp]
        value_cols = [v[:, cols] for v in value_out]  # [d, k]
        # the products every subject row goes through, sparse where mostly zero
        self.subject_maps = [[sparse_if_mostly_zero(m[h]) for h in range(H)] for m in (key_query, value_in, value_cols)]
        self.W_out_cols = np.ascontiguousarray(mlp.W_out[:, cols])
        self.W_out_cols_T = np.ascontiguousarray(self.W_out_cols.T)
        self.b_out_cols = mlp.b_out[cols]
        if not self.exact:
            attach_radius_terms(self, weights, x1)


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
    x0 = read_rows(weights.W_E, subjects)  # a mapped W_E's pages are released as the chunks pass
    r0 = None
    if sides.pos is not None:
        x0, r0 = _with_position(x0, sides.pos[0])
    S, k = len(subjects), len(sides.columns)
    safe = np.ones((S, R), dtype=bool)
    weights0, weights1, subject_in, subject_cols, pattern_radii = [], [], [], [], []
    for h in range(attn.n_heads):
        key_query, value_in, value_cols = (maps[h] for maps in sides.subject_maps)
        s10 = scale * np.asarray(x0 @ key_query)  # [S, R]: the last position attends to the subject
        s11 = scale * np.einsum("re,re->r", sides.q1[h], sides.k1[h])  # [R]: and to itself
        safe &= np.isfinite(s10) & np.isfinite(s11)[None, :]
        top = np.maximum(s10, s11[None, :])
        e0, e1 = np.exp(s10 - top), np.exp(s11[None, :] - top)
        a0, a1 = e0 / (e0 + e1), e1 / (e0 + e1)
        out0_W_in = np.asarray(x0 @ value_in)  # [S, d_mlp]: the subject side of the MLP input
        if not sides.exact:  # Lemma S8 proves every value in range
            safe &= np.isfinite(norm_up(out0_W_in))[:, None]
        weights0.append(a0)
        weights1.append(a1)
        subject_in.append(out0_W_in)
        subject_cols.append(np.asarray(x0 @ value_cols))
        if not sides.exact:
            pattern_radii.append(pattern_radius(sides, x0, r0, h, s10, s11, top, a0, a1))
    out = np.empty((S, R, k))
    hidden_norm = np.empty((S, R))
    finite_hidden = np.ones((S, R), dtype=bool)
    ones = np.ones(S)
    # per head, over the chunk's subjects: each unit's largest and largest absolute subject side, each relation's a0 range
    envelope = []
    for side, a0 in zip(subject_in, weights0):
        largest, least = side.max(axis=0), side.min(axis=0)
        envelope.append((largest, np.maximum(largest, -least), a0.min(axis=0), a0.max(axis=0)))

    opening = _units_that_may_open(sides, envelope)
    lefts = np.empty((R, S, 1 + attn.n_heads))  # per relation: [1, a1 of each head], the relation side's weights
    lefts[:, :, 0] = ones
    for h, a1 in enumerate(weights1):
        lefts[:, :, 1 + h] = a1.T

    def relation_block(r: int) -> None:
        """The MLP for relation r: its [S, units] block stays in cache through every pass."""
        units = opening[r]
        picked = [side if units is None else side[:, units] for side in subject_in]
        pre = np.multiply(picked[0], weights0[0][:, r, None])
        for a0, side in zip(weights0[1:], picked[1:]):
            pre += side * a0[:, r, None]
        # relation side and bias: one product accumulated into pre (BLAS beta = 1)
        right = sides.relation_in[r]
        pre = _accumulate_product(lefts[r], right if units is None else np.ascontiguousarray(right[:, units]), pre)
        hidden = np.maximum(pre, 0.0, out=pre)
        if sides.exact:  # Lemma S8: every value is in range and no radius needs the norm
            hidden_norm[:, r] = 0.0
        else:
            hidden_norm[:, r] = norm_up(hidden)
            finite_hidden[:, r] = _finite_rows(hidden, hidden_norm[:, r])
        z_r = np.empty((S, k))
        z_r[...] = sides.x1_cols[r]
        for a0, a1, cols0, cols1 in zip(weights0, weights1, subject_cols, sides.out1_cols):
            z_r += a0[:, r, None] * cols0
            z_r += a1[:, r, None] * cols1[r][None, :]
        # units shut for every subject of the chunk add exact zeros: skip them (another summation order;
        # a selector opens about 1/R of its units per relation). W_out^T h^T: the skinny side first.
        W_out_T = sides.W_out_cols_T if units is None else sides.W_out_cols_T[:, units]
        opened = np.flatnonzero(np.bitwise_or.reduce(hidden.view(np.uint64), axis=0))
        if 2 * len(opened) < hidden.shape[1]:
            hidden, W_out_T = hidden[:, opened], W_out_T[:, opened]
        out[:, r, :] = z_r + ((W_out_T @ hidden.T).T + sides.b_out_cols)

    for r in range(R):
        relation_block(r)
    out = out.reshape(S * R, k)
    safe = (safe & finite_hidden).reshape(-1)
    out_norm = norm_up(out)
    safe &= _finite_rows(out, out_norm)
    if sides.exact:  # Lemma S8: every conforming evaluation computes these rows exactly, in range
        return BoundedRows(out, np.zeros(S * R), out_norm, safe)
    radius, upper_norm, in_bounds = residual_radius(sides, x0, r0, weights0, weights1, pattern_radii, hidden_norm.reshape(-1), out_norm)
    return BoundedRows(out, radius, upper_norm, safe & in_bounds)


def _units_that_may_open(sides: SingleHopSides, envelope) -> list:
    """Per relation, the hidden units some subject of the chunk may open (None: most of them).

    A unit's pre-activation is c + sum_h (a0 s_h + a1 o_h) with a1 = 1 - a0 up to rounding, that is
    c + sum_h (o_h + a0 (s_h - o_h)): at most c + sum_h (o_h + max(lo (S_h - o_h), hi (S_h - o_h))) for
    a0 in [lo, hi] and s_h <= S_h over the chunk. Computed in float64 it exceeds that by far less
    than 2^-40 of the magnitudes. Where even that is <= 0, this evaluation's ReLU gives exactly 0
    and the unit is left out: its products are exact zeros (another summation order). Every relation
    at once: [R, d_mlp] arrays, one numpy call per step instead of R."""
    c = sides.x1_W_in
    bound, scale = c.copy(), np.abs(c)
    for (largest, magnitude, low, high), o in zip(envelope, sides.out1_W_in):
        gap = largest[None, :] - o
        bound += o + np.maximum(low[:, None] * gap, high[:, None] * gap)
        scale += 2.0 * (magnitude[None, :] + np.abs(o))
    may_open = ~(bound + 2.0**-40 * scale <= 0)  # NaN: may open
    chosen = [np.flatnonzero(row) for row in may_open]
    return [None if 2 * len(units) >= c.shape[1] else _as_slice(units) for units in chosen]


def _as_slice(units: np.ndarray):
    """A run of consecutive units as a slice (the constructions' selectors open one block per relation):
    the chunk's columns are then read in place instead of gathered."""
    if len(units) and units[-1] - units[0] + 1 == len(units):
        return slice(int(units[0]), int(units[-1]) + 1)
    return units


def _accumulate_product(left: np.ndarray, right: np.ndarray, into: np.ndarray) -> np.ndarray:
    """into + left @ right, written into ``into`` by BLAS (one pass instead of a product and a sum)."""
    if not into.size:  # every unit shut: BLAS refuses an empty product
        return into
    return blas.dgemm(1.0, right.T, left.T, beta=1.0, c=into.T, overwrite_c=True, trans_a=0, trans_b=0).T


def single_hop_residuals(weights: TransformerWeights, subjects: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """Centers of ``bounded_single_hop_residuals``: [len(subjects) * R, len(columns)], rows q = s * R + r."""
    return bounded_single_hop_residuals(weights, np.asarray(subjects), columns).center


@overflow_is_a_verdict
def verify_single_hop_fast(weights: TransformerWeights, instance, *, memory_budget_bytes: int | None = None, max_listed: int = 10,
                           max_exact: int | None = None, progress=None):
    """Brute force over every single-hop query, through bounded_single_hop_residuals, W_U's non-zero
    rows and column-blocked margins; when every residual row (support columns only) fits the memory
    budget, distinct rows are computed once (``deduplicated_margins``). One-layer models only.
    """
    from georecall.verify.exact import ExactDecider
    from georecall.theory.queries import SingleHopQueries
    from georecall.verify.verdict import DEFAULT_MAX_EXACT, VerdictAccumulator

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

    def __init__(self, weights: TransformerWeights, instance, budget: int, support: np.ndarray | None = None):
        """``support``: W_U's non-zero rows when the caller has them (the certificate's structure): at
        N = 2^24 finding them is a pass over 7.5 GB."""
        N, R = instance.N, instance.R
        self.weights, self.instance = weights, instance
        self.support = unembedding_support(weights) if support is None else support
        self._W_U = None
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

    @property
    def W_U(self) -> np.ndarray:
        """W_U's support rows, made on first use: the certificate needs them only for the queries it leaves."""
        if self._W_U is None:
            self._W_U = rows_as_stored(self.weights.W_U, self.support)
        return self._W_U

    def subject_chunks(self):
        N = self.instance.N
        return (np.arange(first, min(first + self.step, N)) for first in range(0, N, self.step))

    def rows(self, subjects: np.ndarray) -> BoundedRows:
        return bounded_single_hop_residuals(self.weights, subjects, self.support, self.sides)

    def batch(self, rows: BoundedRows, answers: np.ndarray, margins, best_other) -> MarginBatch:
        if self.sides is not None and self.sides.exact:  # Lemma S8: the float64 logits are the exact ones
            zero = np.zeros(len(answers))
            return MarginBatch(margins, best_other, zero, zero, rows.safe)
        return self.norms.margin_batch(margins, best_other, rows.radius_norm, rows.upper_norm, rows.safe, answers, self.weights.d_model)

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


__all__ = ["single_hop_residuals", "bounded_single_hop_residuals", "verify_single_hop_fast", "FastScan", "BoundedRows"]
