"""Faster, algebraically identical forward passes; tests hold them to theory.model on the same inputs.

single_hop_residuals: one-layer models on [s, N + r] prompts. The subject side of attention
(keys, and values through W_O) is computed once per subject and the relation side once per
relation, instead of once per query; the softmax over the two positions and the MLP run per
query. Only the order of float additions differs from the reference.

"""

from __future__ import annotations

import numpy as np

from theory.weights import TransformerWeights


def single_hop_residuals(weights: TransformerWeights, subjects: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """Final residual at the last position for every (s, r), s in ``subjects``: [len(subjects) * R, d_model].

    Row order matches the query index q = s * R + r. ``columns`` keeps only those residual
    coordinates of the result (the MLP output is computed for them alone).
    """
    if weights.n_layers != 1:
        raise ValueError("single_hop_residuals handles one-layer models; use theory.model.final_residual")
    N, R = weights.meta.N, weights.meta.R
    block = weights.blocks[0]
    attn, scale = block.attn, weights.meta.attn_scale
    x0 = weights.W_E[subjects]
    x1 = weights.W_E[N : N + R]
    if weights.W_pos is not None:
        x0, x1 = x0 + weights.W_pos[0], x1 + weights.W_pos[1]
    z = np.empty((len(subjects), R, x1.shape[1]))
    z[...] = x1[None, :, :]
    scratch = np.empty_like(z)
    for h in range(attn.n_heads):
        q1 = x1 @ attn.W_Q[h]  # [R, d_head]
        s10 = scale * (x0 @ attn.W_K[h]) @ q1.T  # [S, R]: the last position attends to the subject
        s11 = scale * np.einsum("re,re->r", q1, x1 @ attn.W_K[h])  # [R]: and to itself
        top = np.maximum(s10, s11[None, :])
        e0, e1 = np.exp(s10 - top), np.exp(s11[None, :] - top)
        a0, a1 = e0 / (e0 + e1), e1 / (e0 + e1)
        out0 = (x0 @ attn.W_V[h]) @ attn.W_O[h]  # [S, d_model]
        out1 = (x1 @ attn.W_V[h]) @ attn.W_O[h]  # [R, d_model]
        z += np.multiply(a0[:, :, None], out0[:, None, :], out=scratch)
        z += np.multiply(a1[:, :, None], out1[None, :, :], out=scratch)
    z = z.reshape(len(subjects) * R, -1)
    hidden = np.maximum(z @ block.mlp.W_in + block.mlp.b_in, 0.0)
    if columns is None:
        return z + hidden @ block.mlp.W_out + block.mlp.b_out
    return z[:, columns] + hidden @ block.mlp.W_out[:, columns] + block.mlp.b_out[columns]


FAST_MEMORY_BUDGET_BYTES = 256 * 2**20
LOGIT_BLOCK_BYTES = 16 * 2**20  # one block of logits: small enough for its passes to stay in cache
COLUMN_BLOCK = 2048  # attributes per logits block


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


def verify_single_hop_fast(weights: TransformerWeights, instance, *, memory_budget_bytes: int | None = None, max_listed: int = 10):
    """Brute force over every single-hop query, through single_hop_residuals, W_U's non-zero rows
    and column-blocked margins; when every residual row (support columns only) fits the memory
    budget, distinct rows are computed once (``deduplicated_margins``).

    Same report as theory.verify.verify_single_hop (margins equal up to float summation order);
    multi-layer weights fall back to the reference path.
    """
    import time

    from theory.queries import SingleHopQueries
    from theory.verify import RecallReport, failure_record, verify_single_hop

    budget = memory_budget_bytes or FAST_MEMORY_BUDGET_BYTES
    if weights.n_layers != 1:
        return verify_single_hop(weights, instance, memory_budget_bytes=budget, max_listed=max_listed)
    started = time.perf_counter()
    N, R = instance.N, instance.R
    queries = SingleHopQueries(instance)
    support = np.flatnonzero(np.any(weights.W_U != 0, axis=1))
    W_U = np.ascontiguousarray(weights.W_U[support])
    b_U = weights.b_U if np.any(weights.b_U != 0) else None
    column_block = min(COLUMN_BLOCK, weights.meta.d_vocab_out)
    width = 4 * weights.d_model + 2 * max(b.mlp.d_mlp for b in weights.blocks)
    step = max(1, LOGIT_BLOCK_BYTES // (8 * R * (2 * column_block + width + 8)))
    # residual rows, unique rows, inverse, answers and four top-2 arrays: about 2K + 10 numbers per query
    deduplicate = 8 * N * R * (2 * len(support) + 10) <= budget

    def residuals(first, stop):
        return single_hop_residuals(weights, np.arange(first, stop), columns=support)

    def segments():
        if deduplicate:
            rows = np.concatenate([residuals(f, min(f + step, N)) for f in range(0, N, step)])
            yield 0, deduplicated_margins(rows, W_U, b_U, instance.facts.T.reshape(-1), column_block)
            return
        for first in range(0, N, step):
            stop = min(first + step, N)
            yield first, blocked_margins(residuals(first, stop), W_U, b_U, instance.facts.T[first:stop].reshape(-1), column_block)

    failures, min_margin, argmin, listed = 0, np.inf, 0, []
    for first, (margins, best_other) in segments():
        failed = np.flatnonzero(~(margins > 0))
        failures += len(failed)
        if len(listed) < max_listed and len(failed):
            chunk = queries.take(first * R + failed[: max_listed - len(listed)])
            listed += [failure_record(queries, chunk, i, margins[failed], best_other[failed]) for i in range(len(chunk.indices))]
        low = int(np.argmin(np.where(np.isnan(margins), -np.inf, margins)))
        if not margins[low] >= min_margin:
            min_margin, argmin = float(margins[low]), first * R + low
    return RecallReport(
        kind="single_hop", exact_recall=failures == 0, queries=N * R, total_queries=N * R, failures=failures,
        min_margin=min_margin, exhaustive=True, first_failures=listed, argmin_query={"query": argmin, **queries.describe(argmin)},
        chunk_size=int((N if deduplicate else step) * R), elapsed_s=time.perf_counter() - started,
        details={"path": "fast_brute_force", "support_rows": int(len(support)), "column_block": column_block,
                 "deduplicated": bool(deduplicate)},
    )
