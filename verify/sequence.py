"""The fast path for one-layer models on prompts of any length: multi-hop chains and chain-of-thought steps.

docs/theorems/soundness.md, Lemma S9. A one-layer model's last position reads every position
through quantities that depend on that position's (position, token) pair alone: the embedding
row, each head's key, and each head's value through W_O, with the norms of their magnitude twins.
``PairTable`` computes them once per distinct pair of a chunk, and every query reads them:
positions that hold few distinct tokens (relations, separators) through small score tables and one
one-hot product, the others by gathering rows. The radius of each query is a norm (Lemma S9):
Cauchy-Schwarz on each score's twins from the pairs' norms, Lemmas S3 and S3' on the pattern, and
Lemma S7's rule for the attention stage and the MLP (verify.fast_radius.mlp_stage_radius).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.weights import TransformerWeights
from georecall.verify.error_model import (
    INFLATE,
    TINY,
    chain_underflow,
    gamma,
    in_range,
    head_magnitudes,
    norm_up,
    row_magnitude,
    score_depth,
    softmax_radius,
    stage_radius,
)
from georecall.verify.fast import BoundedRows, sparse_if_mostly_zero
from georecall.verify.fast_radius import MLPRadiusTerms, _value_twin, _with_position, mlp_stage_radius
from georecall.verify.reference import check_context

FEW_TOKENS = 64  # a position with at most this many distinct tokens in a chunk is read through one-hot products
def _twin_norm(rows: np.ndarray, abs_matrix: np.ndarray) -> np.ndarray:
    """An upper bound on ||rows |M| || per row in exact arithmetic: the float product's norm,
    grown by the product's relative rounding, plus its underflow (inside TINY)."""
    return norm_up(rows @ abs_matrix) * (1.0 + 2.0 * gamma(rows.shape[-1] + 2)) + TINY


@dataclass
class PairTable:
    """One position of a chunk: its distinct tokens' quantities, and each query's row among them."""

    row: np.ndarray  # [B]: the query's row in this table
    x: np.ndarray  # [n, d]: the embedding (plus W_pos) as computed
    r: np.ndarray | None  # [n, d]: its radius (None without W_pos: stored values are exact)
    k: np.ndarray  # [n, H, d_head]: each head's key
    value_out: np.ndarray  # [n, H, d]: x W_V[h] W_O[h]
    key_upper: np.ndarray  # [n, H]: ||(|x| + r)|W_K[h]| ||, an upper bound in exact arithmetic
    key_pert: np.ndarray  # [n, H]: ||r |W_K[h]| ||
    value_upper: np.ndarray  # [n, H]: ||((|x| + r)|W_V[h]|)|W_O[h]| ||
    value_pert: np.ndarray  # [n, H]: ||(r |W_V[h]|)|W_O[h]| ||
    mu: np.ndarray  # [n]: Lemma S1's magnitude of the row |x| + r
    safe: np.ndarray  # [n]: the row and its twins are finite

    @property
    def upper(self) -> np.ndarray:
        return np.abs(self.x) if self.r is None else np.abs(self.x) + self.r


class SequenceForward:
    """Bounded final residual (Lemma S9) of one-layer models on any prompts, on ``columns`` (W_U's support)."""

    def __init__(self, weights: TransformerWeights, columns: np.ndarray):
        if weights.n_layers != 1:
            raise InputError("the fast sequence path handles one-layer models; use the reference")
        self.weights, self.columns = weights, np.asarray(columns)
        attn, mlp = weights.blocks[0].attn, weights.blocks[0].mlp
        self.H, self.scale = attn.n_heads, weights.meta.attn_scale
        self.abs_W_Q, self.abs_W_K = np.abs(attn.W_Q), np.abs(attn.W_K)
        self.mu_QK, self.mu_VO, self.mu_VO_in = head_magnitudes(attn, mlp)
        self.W_in = sparse_if_mostly_zero(mlp.W_in)
        self.W_out_cols = sparse_if_mostly_zero(np.ascontiguousarray(mlp.W_out[:, self.columns]))
        self.b_out_cols = mlp.b_out[self.columns]
        self._terms: dict[int, MLPRadiusTerms] = {}

    def mlp_terms(self, seq_len: int) -> MLPRadiusTerms:
        if seq_len not in self._terms:
            self._terms[seq_len] = MLPRadiusTerms(self.weights, self.columns, seq_len)
        return self._terms[seq_len]

    def table(self, tokens: np.ndarray, position: int) -> PairTable:
        """Quantities of the distinct tokens of ``tokens`` (one column of a chunk) at ``position``."""
        weights = self.weights
        attn, H = weights.blocks[0].attn, self.H
        distinct, row = np.unique(tokens, return_inverse=True)
        x, r = weights.W_E[distinct], None
        if weights.W_pos is not None:
            x, r = _with_position(x, weights.W_pos[position])
        upper = np.abs(x) if r is None else np.abs(x) + r
        k = np.stack([x @ attn.W_K[h] for h in range(H)], axis=1)
        value_out = np.stack([(x @ attn.W_V[h]) @ attn.W_O[h] for h in range(H)], axis=1)
        key_upper = np.stack([_twin_norm(upper, self.abs_W_K[h]) for h in range(H)], axis=1)
        value_upper = np.stack([norm_up(_value_twin(upper, attn, h)) + TINY for h in range(H)], axis=1)
        if r is None:
            key_pert = value_pert = np.zeros_like(key_upper)
        else:
            key_pert = np.stack([_twin_norm(r, self.abs_W_K[h]) for h in range(H)], axis=1)
            value_pert = np.stack([norm_up(_value_twin(r, attn, h)) + TINY for h in range(H)], axis=1)
        safe = np.isfinite(x).all(axis=1) & np.isfinite(key_upper).all(axis=1) & np.isfinite(value_upper).all(axis=1)
        return PairTable(row.reshape(-1), x, r, k, value_out, key_upper, key_pert, value_upper, value_pert, row_magnitude(upper), safe)

    def final_residual(self, tokens: np.ndarray) -> BoundedRows:
        """The last position's residual on ``columns`` for every prompt of ``tokens`` [B, T], with norm radii."""
        tokens = np.asarray(tokens)
        B, T = tokens.shape
        check_context(self.weights, T)
        attn, H, d = self.weights.blocks[0].attn, self.H, self.weights.d_model
        tables = [self.table(tokens[:, j], j) for j in range(T)]
        last = tables[-1]
        q = np.stack([last.x @ attn.W_Q[h] for h in range(H)], axis=1)  # [n_last, H, d_head]
        query_upper = np.stack([_twin_norm(last.upper, self.abs_W_Q[h]) for h in range(H)], axis=1)[last.row]
        query_pert = (np.zeros_like(query_upper) if last.r is None else
                      np.stack([_twin_norm(last.r, self.abs_W_Q[h]) for h in range(H)], axis=1)[last.row])
        scores, radii = np.empty((B, H, T)), np.empty((B, H, T))
        safe = last.safe[last.row] & np.isfinite(query_upper).all(axis=1)
        gathered_q = None
        depth, width = score_depth(d, attn.d_head), max(d, attn.d_head)
        for j, table in enumerate(tables):
            if j == T - 1:  # the last position attends to itself: one score per distinct token
                s = np.einsum("nhe,nhe->nh", q, table.k)[last.row]
            elif len(table.x) * len(last.x) <= B:  # few pairs: a score table, then a gather
                s = np.einsum("ahe,bhe->hab", q, table.k)[:, last.row, table.row].T
            else:
                gathered_q = q[last.row] if gathered_q is None else gathered_q
                s = np.einsum("bhe,bhe->bh", gathered_q, table.k[table.row])
            scores[:, :, j] = self.scale * s
            kU, kP = table.key_upper[table.row], table.key_pert[table.row]
            # Lemma S9: U <= |scale| ||qU|| ||kU|| and U - C <= |scale| (||qU|| ||kP|| + ||qP|| ||kU||)
            upper = abs(self.scale) * query_upper * kU * INFLATE
            spread = abs(self.scale) * (query_upper * kP + query_pert * kU) * INFLATE
            G = max(1.0, abs(self.scale)) * self.mu_QK[None, :] * (last.mu[last.row] * table.mu[table.row])[:, None]
            radii[:, :, j] = stage_radius(upper + spread, upper, depth, chain_underflow(G, 4, width))
            safe &= in_range(G).all(axis=1) & table.safe[table.row]
        safe &= np.isfinite(scores).all(axis=(1, 2))
        shifted = scores - scores.max(axis=-1, keepdims=True)
        pattern = np.exp(shifted)
        pattern /= pattern.sum(axis=-1, keepdims=True)
        pattern_radius = softmax_radius(pattern, shifted, radii, np.ones((1, 1, T), dtype=bool))
        return self._residual(tables, pattern, pattern_radius, safe)

    def _residual(self, tables: list[PairTable], pattern, pattern_radius, safe) -> BoundedRows:
        """Attention output, MLP and Lemma S7's radius (verify.fast_radius.mlp_stage_radius)."""
        mlp = self.weights.blocks[0].mlp
        B, H, T = pattern.shape
        last = tables[-1]
        z = last.x[last.row].copy()
        reach = pattern + pattern_radius
        pert = np.zeros(B) if last.r is None else norm_up(last.r)[last.row]
        upper = norm_up(last.upper)[last.row]
        mu_values = np.zeros(B)
        few, stacked = [], []
        for j, table in enumerate(tables):
            rows = table.row
            pert += np.einsum("bh,bh->b", pattern_radius[:, :, j], table.value_upper[rows])
            pert += np.einsum("bh,bh->b", pattern[:, :, j], table.value_pert[rows])
            upper += np.einsum("bh,bh->b", reach[:, :, j], table.value_upper[rows])
            mu_values += table.mu[rows]
            if j < T - 1 and len(table.x) <= FEW_TOKENS:
                few.append(j)
                stacked.extend(table.value_out[:, h, :] for h in range(H))
            else:
                z += np.einsum("bh,bhd->bd", pattern[:, :, j], table.value_out[rows])
        if few:  # every few-token position and head in one product: one-hot weights times their value rows
            onehot = np.zeros((B, sum(len(tables[j].x) * H for j in few)))
            offset = 0
            for j in few:
                n = len(tables[j].x)
                for h in range(H):
                    onehot[np.arange(B), offset + h * n + tables[j].row] = pattern[:, h, j]
                offset += n * H
            z += onehot @ np.vstack(stacked)
        share = np.maximum(reach.sum(axis=-1), 1.0) * mu_values[:, None]  # [B, H]: Lemma S1's A X as a prefix
        terms = self.mlp_terms(T)
        G_pre = last.mu[last.row] * terms.mu_in + share @ self.mu_VO_in
        G_z = share @ self.mu_VO
        pre = np.asarray(z @ self.W_in) + mlp.b_in
        hidden = np.maximum(pre, 0.0, out=pre)
        hidden_norm = norm_up(hidden)
        out = z[:, self.columns] + (np.asarray(hidden @ self.W_out_cols) + self.b_out_cols)
        out_norm = norm_up(out)
        safe = safe & np.isfinite(hidden_norm) & np.isfinite(out_norm) & np.isfinite(z).all(axis=1)
        radius, upper_norm, in_bounds = mlp_stage_radius(terms, pert, upper, G_pre, G_z, safe, hidden_norm, out_norm,
                                                         summed_terms=2 * H * T + 1)
        return BoundedRows(out, radius, upper_norm, safe & in_bounds)
