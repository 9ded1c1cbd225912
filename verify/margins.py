"""Margins over a large output vocabulary, a block of columns at a time: the argmax rule of docs/FORMAT.md §3 without a full row of logits.

Ties keep the lowest token index, as ``reference.answer_margins`` does on a whole row.
"""

from __future__ import annotations

import numpy as np

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
