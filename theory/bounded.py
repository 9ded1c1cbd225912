"""The forward pass with a rigorous radius on every value (docs/theorems/soundness.md, Lemma S2).

``BoundedForward(weights)(tokens)`` computes the same centers as ``theory.model.final_residual``
(the same operations in the same order) and, beside them, a componentwise radius such that the
exact real residual and every conforming float64 evaluation's residual lie within
center +- radius. ``margins`` turns that into per-query margins with the radii of the answer's
logit and of the largest rival logit. The same code runs on torch tensors through ``ops``
(experiments.torch_verify), so every backend uses one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.rounding import (
    NUMPY,
    attention_output_depth,
    gamma,
    logit_radius,
    mlp_in_depth,
    mlp_out_depth,
    norm_up,
    score_depth,
    softmax_radius,
    stage_radius,
)
from georecall.theory.weights import TransformerWeights


@dataclass
class MarginBatch:
    """What every verification path hands the verdict engine for a batch of queries.

    margins: float margin logit[answer] - max other logit; best_other: that rival's token;
    radius_target / radius_rival: radii (Lemma S4) of the answer's logit and an upper bound on
    the radius of every rival logit; finite: False where any value of the query's computation
    was NaN or infinite.
    """

    margins: np.ndarray
    best_other: np.ndarray
    radius_target: np.ndarray
    radius_rival: np.ndarray
    finite: np.ndarray


def check_context(weights: TransformerWeights, seq_len: int) -> None:
    """Every path refuses a prompt longer than W_pos, as the reference does (docs/FORMAT.md §3)."""
    if weights.W_pos is not None and seq_len > weights.W_pos.shape[0]:
        raise InputError(f"W_pos has n_ctx = {weights.W_pos.shape[0]} rows but the queries need {seq_len} positions")


def unembedding_support(weights: TransformerWeights) -> np.ndarray:
    """Rows of W_U that are not all zero: the only residual coordinates any logit reads."""
    return np.flatnonzero(np.any(weights.W_U != 0, axis=1))


class UnembeddingNorms:
    """Column norms of W_U and |b_U|, upper-rounded, for Lemma S4's O(1)-per-logit radii."""

    def __init__(self, W_U: np.ndarray, b_U: np.ndarray, rows: np.ndarray | None = None):
        used = W_U if rows is None else W_U[rows]
        self.column = np.sqrt(np.einsum("ij,ij->j", used, used)) * (1.0 + gamma(used.shape[0] + 2))  # norm_up of each column
        self.bias = np.abs(b_U)
        self.column_max = float(self.column.max()) if self.column.size else 0.0
        self.bias_max = float(self.bias.max()) if self.bias.size else 0.0

    def radii(self, residual_radius_norm, residual_upper_norm, answers, d_model: int, any_evaluation: bool = False):
        target = logit_radius(residual_radius_norm, residual_upper_norm, self.column[answers], self.bias[answers], d_model, any_evaluation)
        rival = logit_radius(residual_radius_norm, residual_upper_norm, self.column_max, self.bias_max, d_model, any_evaluation)
        return target, rival


class BoundedForward:
    """Centers and radii of the final residual (and the margins) for any weights."""

    def __init__(self, weights: TransformerWeights, ops=NUMPY, convert=None):
        self.weights, self.ops = weights, ops
        convert = convert or (lambda a: a)
        self.W_E = convert(weights.W_E)
        self.W_pos = None if weights.W_pos is None else convert(weights.W_pos)
        self.blocks = []
        for block in weights.blocks:
            a, m = block.attn, block.mlp
            arrays = {name: convert(getattr(a, name)) for name in ("W_Q", "W_K", "W_V", "W_O")}
            arrays.update({name: convert(getattr(m, name)) for name in ("W_in", "b_in", "W_out", "b_out")})
            arrays.update({f"abs_{k}": convert(np.abs(v)) for k, v in
                           {"W_Q": a.W_Q, "W_K": a.W_K, "W_V": a.W_V, "W_O": a.W_O, "W_in": m.W_in, "b_in": m.b_in,
                            "W_out": m.W_out, "b_out": m.b_out}.items()})
            arrays.update(n_heads=a.n_heads, d_head=a.d_head, d_mlp=m.d_mlp)
            self.blocks.append(arrays)
        self.W_U, self.b_U = convert(weights.W_U), convert(weights.b_U)
        self.norms = UnembeddingNorms(weights.W_U, weights.b_U)

    def embed(self, tokens):
        check_context(self.weights, tokens.shape[1])
        x = self.W_E[tokens]
        if self.W_pos is None:
            return x, x * 0.0  # stored values are exact
        T = tokens.shape[1]
        upper = self.ops.abs(x) + self.ops.abs(self.W_pos[:T])
        x = x + self.W_pos[:T]
        return x, stage_radius(upper, upper, 2, self.ops)

    def attention(self, b: dict, x, rx, last_only: bool):
        ops, scale, d = self.ops, self.weights.meta.attn_scale, self.weights.d_model
        T = x.shape[1]
        xq, rq = (x[:, -1:, :], rx[:, -1:, :]) if last_only else (x, rx)
        ax, ux = ops.abs(x), ops.abs(x) + rx
        axq, uxq = ops.abs(xq), ops.abs(xq) + rq
        q = ops.einsum("btd,hde->bhte", xq, b["W_Q"])
        k = ops.einsum("btd,hde->bhte", x, b["W_K"])
        v = ops.einsum("btd,hde->bhte", x, b["W_V"])
        scores = scale * ops.einsum("bhqe,bhke->bhqk", q, k)
        scores_upper = abs(scale) * ops.einsum("bhqe,bhke->bhqk", ops.einsum("btd,hde->bhte", uxq, b["abs_W_Q"]),
                                               ops.einsum("btd,hde->bhte", ux, b["abs_W_K"]))
        scores_center = abs(scale) * ops.einsum("bhqe,bhke->bhqk", ops.einsum("btd,hde->bhte", axq, b["abs_W_Q"]),
                                                ops.einsum("btd,hde->bhte", ax, b["abs_W_K"]))
        scores_radius = stage_radius(scores_upper, scores_center, score_depth(d, b["d_head"]), ops)
        query_positions = np.arange(T - xq.shape[1], T)
        allowed = np.arange(T)[None, :] <= query_positions[:, None]
        finite = ops.all_finite(scores, (1, 2, 3))
        scores = ops.where(allowed, scores, -np.inf)
        scores = scores - ops.amax(scores, -1)[..., None]
        pattern = ops.exp(scores)
        pattern = pattern / ops.sum(pattern, -1)[..., None]
        pattern_radius = softmax_radius(pattern, scores, scores_radius, allowed, ops)
        mixed = ops.einsum("bhqk,bhke->bhqe", pattern, v)
        out = ops.einsum("bhqe,hed->bqd", mixed, b["W_O"])
        v_upper = ops.einsum("btd,hde->bhte", ux, b["abs_W_V"])
        v_center = ops.einsum("btd,hde->bhte", ax, b["abs_W_V"])
        out_upper = uxq + ops.einsum("bhqe,hed->bqd", ops.einsum("bhqk,bhke->bhqe", pattern + pattern_radius, v_upper), b["abs_W_O"])
        out_center = axq + ops.einsum("bhqe,hed->bqd", ops.einsum("bhqk,bhke->bhqe", pattern, v_center), b["abs_W_O"])
        depth = attention_output_depth(d, b["n_heads"], b["d_head"], T)
        return xq + out, stage_radius(out_upper, out_center, depth, ops), finite

    def final_residual(self, tokens):
        """(center, radius, finite) of the last position's residual: [batch, d_model] twice, [batch]."""
        x, rx = self.embed(tokens)
        finite = None
        last = len(self.blocks) - 1
        for layer, b in enumerate(self.blocks):
            x, rx, ok_attn = self.attention(b, x, rx, last_only=(layer == last))
            x, rx, ok_mlp = bounded_mlp(self.ops, b, x, rx, self.weights.d_model)
            ok = ok_attn & ok_mlp
            finite = ok if finite is None else finite & ok
        x, rx = x[:, -1, :], rx[:, -1, :]
        ok = self.ops.all_finite(x, (1,))
        return x, rx, ok if finite is None else finite & ok

    def margins(self, tokens, answers) -> MarginBatch:
        x, rx, finite = self.final_residual(tokens)
        logits = x @ self.W_U
        logits += self.b_U
        return self.margin_batch(logits, x, rx, finite, answers)

    def margin_batch(self, logits, x, rx, finite, answers) -> MarginBatch:
        ops = self.ops
        finite = finite & ops.all_finite(logits, (1,))
        margins, best_other = answer_margins(logits, answers, ops)
        target_radius, rival_radius = self.norms.radii(to_numpy(norm_up(rx, ops)), to_numpy(norm_up(ops.abs(x) + rx, ops)),
                                                       to_numpy(answers), self.weights.d_model)
        return MarginBatch(to_numpy(margins), to_numpy(best_other), target_radius, rival_radius, to_numpy(finite))


def bounded_mlp(ops, b: dict, x, rx, d_model: int):
    """x + ReLU(x W_in + b_in) W_out + b_out with its radius (Lemma S2: two multilinear stages, ReLU 1-Lipschitz)."""
    ax, ux = ops.abs(x), ops.abs(x) + rx
    pre = x @ b["W_in"] + b["b_in"]
    pre_radius = stage_radius(ux @ b["abs_W_in"] + b["abs_b_in"], ax @ b["abs_W_in"] + b["abs_b_in"], mlp_in_depth(d_model), ops)
    finite = ops.all_finite(pre, tuple(range(1, pre.ndim)))
    hidden = ops.relu(pre)
    out = x + (hidden @ b["W_out"] + b["b_out"])
    upper = ux + ((ops.abs(hidden) + pre_radius) @ b["abs_W_out"] + b["abs_b_out"])
    center = ax + (ops.abs(hidden) @ b["abs_W_out"] + b["abs_b_out"])
    return out, stage_radius(upper, center, mlp_out_depth(b["d_mlp"]), ops), finite


def answer_margins(logits, answers, ops=NUMPY):
    """Per row: logit of the answer minus the best other logit, and that best other token (lowest index on ties).

    Overwrites each row's answer entry of ``logits`` with -inf: the verifier owns the array,
    and a copy would double its largest allocation.
    """
    rows = ops.arange(len(answers))
    target = logits[rows, answers]
    logits[rows, answers] = -np.inf
    best_other = logits.argmax(1)
    return target - logits[rows, best_other], best_other


def to_numpy(values):
    if isinstance(values, np.ndarray):
        return values
    if hasattr(values, "detach"):
        return values.detach().cpu().numpy()
    return np.asarray(values)


__all__ = ["BoundedForward", "MarginBatch", "UnembeddingNorms", "answer_margins", "bounded_mlp", "check_context"]
