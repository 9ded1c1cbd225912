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


FAST_MEMORY_BUDGET_BYTES = 16 * 2**20
COLUMN_BLOCK = 2048  # attributes per logits block: keeps each block's passes in cache


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


def verify_single_hop_fast(weights: TransformerWeights, instance, *, memory_budget_bytes: int | None = None, max_listed: int = 10):
    """Brute force over every single-hop query, through single_hop_residuals, W_U's non-zero rows
    and column-blocked margins.

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
    per_subject = 8 * R * (2 * column_block + 4 * weights.d_model + 2 * max(b.mlp.d_mlp for b in weights.blocks) + 8)
    step = max(1, budget // per_subject)
    failures, min_margin, argmin, listed = 0, np.inf, 0, []
    for first in range(0, N, step):
        subjects = np.arange(first, min(first + step, N))
        answers = instance.facts.T[subjects].reshape(-1)
        margins, best_other = blocked_margins(single_hop_residuals(weights, subjects, columns=support), W_U, b_U, answers, column_block)
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
        chunk_size=int(step * R), elapsed_s=time.perf_counter() - started,
        details={"path": "fast_brute_force", "support_rows": int(len(support)), "column_block": column_block},
    )
