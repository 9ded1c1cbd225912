"""The forward pass with a rigorous radius on every value (docs/theorems/soundness.md, Lemma S2).

``BoundedForward(weights)(tokens)`` computes the centers of ``theory.model.final_residual`` (the
same products; every head's projection as one matrix product, which sums in another order) and,
beside them, a componentwise radius such that the
exact real residual and every conforming float64 evaluation's residual lie within
center +- radius, and a ``safe`` flag: this evaluation was finite and no conforming evaluation
can overflow (every stage's magnitude product is in range, Lemma S1). ``margins`` turns that into
per-query margins with the radii of the answer's logit and of the largest rival logit. Where
Lemma S8 proves every stage exact (single-hop prompts of an integer construction) the radii are
0. The same code runs on torch tensors through ``ops`` (verify.torch_path), so every
backend uses one set of rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError
from georecall.verify.error_model import (
    NUMPY,
    attention_output_depth,
    chain_underflow,
    head_magnitudes,
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
from georecall.theory.arrays import nonzero_rows, read_columns
from georecall.theory.weights import TransformerWeights


@dataclass
class MarginBatch:
    """What every verification path hands the verdict engine for a batch of queries.

    margins: float margin logit[answer] - max other logit; best_other: that rival's token;
    radius_target / radius_rival: radii (Lemma S4) of the answer's logit and an upper bound on
    the radius of every rival logit; safe: False where a value of this evaluation was NaN or
    infinite, or where some conforming evaluation could overflow (the exact oracle decides those).
    """

    margins: np.ndarray
    best_other: np.ndarray
    radius_target: np.ndarray
    radius_rival: np.ndarray
    safe: np.ndarray


def check_context(weights: TransformerWeights, seq_len: int) -> None:
    """Every path refuses a prompt longer than W_pos, as the reference does (docs/FORMAT.md §3)."""
    if weights.W_pos is not None and seq_len > weights.W_pos.shape[0]:
        raise InputError(f"W_pos has n_ctx = {weights.W_pos.shape[0]} rows but the queries need {seq_len} positions")


def unembedding_support(weights: TransformerWeights) -> np.ndarray:
    """Rows of W_U that are not all zero: the only residual coordinates any logit reads (read from
    the array as stored: a zero is a zero in every dtype)."""
    return nonzero_rows(weights.W_U)


def is_single_hop(weights: TransformerWeights, tokens) -> bool:
    """Every prompt is [subject, relation]: the prompts Lemma S8's analysis covers."""
    tokens = to_numpy(tokens)
    N, R = weights.meta.N, weights.meta.R
    return tokens.ndim == 2 and tokens.shape[1] == 2 and bool(np.all(tokens[:, 0] < N) and np.all((tokens[:, 1] >= N) & (tokens[:, 1] < N + R)))


class ExactSingleHop:
    """Lemma S8 for a weights object, decided on first use (it reads every subject row once)."""

    def __init__(self, weights: TransformerWeights):
        self.weights, self._value = weights, None

    def __bool__(self) -> bool:
        if self._value is None:
            from georecall.verify.exactness import single_hop_is_exact

            self._value = single_hop_is_exact(self.weights)
        return self._value


class UnembeddingNorms:
    """Column norms of W_U and |b_U|, upper-rounded (Lemma S5), for Lemma S4's O(1)-per-logit radii."""

    COLUMN_BLOCK = 1 << 16  # columns read at a time: no copy of a W_U with a column per subject is made

    def __init__(self, W_U: np.ndarray, b_U: np.ndarray, rows: np.ndarray | None = None):
        rows = np.arange(W_U.shape[0]) if rows is None else np.asarray(rows)
        norms = [norm_up(np.ascontiguousarray(read_columns(W_U, rows, c0, c0 + self.COLUMN_BLOCK).T))
                 for c0 in range(0, W_U.shape[1], self.COLUMN_BLOCK)]
        self.column = np.concatenate(norms) if norms else np.zeros(0)
        self.bias = np.abs(b_U)
        self.column_max = float(self.column.max()) if self.column.size else 0.0
        self.bias_max = float(self.bias.max()) if self.bias.size else 0.0

    def radii(self, residual_radius_norm, residual_upper_norm, answers, d_model: int, any_evaluation: bool = False):
        from georecall.verify.error_model import logit_radius

        target = logit_radius(residual_radius_norm, residual_upper_norm, self.column[answers], self.bias[answers], d_model, any_evaluation)
        rival = logit_radius(residual_radius_norm, residual_upper_norm, self.column_max, self.bias_max, d_model, any_evaluation)
        return target, rival

    def margin_batch(self, margins, best_other, radius_norm, upper_norm, safe, answers, d_model: int) -> MarginBatch:
        """Theorem S5's inputs from a residual's norm bounds: Lemma S4's radii, and safe only where no logit can overflow."""
        target, rival = self.radii(radius_norm, upper_norm, answers, d_model)
        return MarginBatch(margins, best_other, target, rival, safe & self.logits_in_range(upper_norm))

    def logits_in_range(self, residual_upper_norm) -> np.ndarray:
        """No intermediate of any logit overflows: |partial sums| <= ||x|| ||w_a|| + |b_a| (Cauchy-Schwarz)."""
        return in_range(residual_upper_norm * self.column_max + self.bias_max)


class BoundedForward:
    """Centers and radii of the final residual (and the margins) for any weights."""

    def __init__(self, weights: TransformerWeights, ops=NUMPY, convert=None):
        with np.errstate(over="ignore"):  # an infinite magnitude product is a finding (out of range), not a warning
            self._convert(weights, ops, convert or (lambda a: a))

    def _convert(self, weights: TransformerWeights, ops, convert) -> None:
        self.weights, self.ops = weights, ops
        self.W_E = convert(weights.W_E)
        self.W_pos = None if weights.W_pos is None else convert(weights.W_pos)
        self.blocks = []
        for block in weights.blocks:
            a, m = block.attn, block.mlp
            arrays = {name: convert(getattr(m, name)) for name in ("W_in", "b_in", "W_out", "b_out")}
            arrays.update({f"abs_{name}": convert(np.abs(getattr(m, name))) for name in ("W_in", "b_in", "W_out", "b_out")})
            # Lemma S1's factor magnitudes, per head where the factor is per head
            mu_QK, mu_VO, _ = head_magnitudes(a, m)
            arrays.update(mu_QK=convert(mu_QK), mu_VO=convert(mu_VO),
                          mu_in=float(magnitude(m.W_in, "last")), mu_out=float(magnitude(m.W_out, "last")),
                          b_in_max=float(np.max(np.abs(m.b_in), initial=0.0)), b_out_max=float(np.max(np.abs(m.b_out), initial=0.0)))
            arrays.update(n_heads=a.n_heads, d_head=a.d_head, d_mlp=m.d_mlp)
            # the heads side by side, so that each projection of every head is one matrix product
            for name in ("W_Q", "W_K", "W_V"):
                for prefix, values in (("", getattr(a, name)), ("abs_", np.abs(getattr(a, name)))):
                    arrays[f"{prefix}{name}_heads"] = convert(np.ascontiguousarray(values.transpose(1, 0, 2).reshape(a.W_Q.shape[1], -1)))
            arrays.update(W_O_heads=convert(a.W_O.reshape(-1, a.W_O.shape[2])), abs_W_O_heads=convert(np.abs(a.W_O).reshape(-1, a.W_O.shape[2])))
            self.blocks.append(arrays)
        self.W_U, self.b_U = convert(weights.W_U), convert(weights.b_U)
        self.norms = UnembeddingNorms(weights.W_U, weights.b_U)
        self.exact = ExactSingleHop(weights)

    def embed(self, tokens):
        check_context(self.weights, tokens.shape[1])
        x = self.W_E[tokens]
        if self.W_pos is None:
            return x, x * 0.0, self.ops.all_finite(x, (1, 2))  # stored values are exact
        T = tokens.shape[1]
        upper = self.ops.abs(x) + self.ops.abs(self.W_pos[:T])
        x = x + self.W_pos[:T]
        return x, stage_radius(upper, upper, 2, ops=self.ops), in_range(self.ops.amax(self.ops.amax(upper, -1), -1), self.ops)

    def attention(self, b: dict, x, rx, last_only: bool):
        ops, scale, d = self.ops, self.weights.meta.attn_scale, self.weights.d_model
        T = x.shape[1]
        xq, rq = (x[:, -1:, :], rx[:, -1:, :]) if last_only else (x, rx)
        ax, ux = ops.abs(x), ops.abs(x) + rx
        axq, uxq = ops.abs(xq), ops.abs(xq) + rq
        H = b["n_heads"]
        q, k, v = (_per_head(ops, rows, b[f"{name}_heads"], H) for rows, name in ((xq, "W_Q"), (x, "W_K"), (x, "W_V")))
        scores = scale * (q @ k.mT)
        scores_upper = abs(scale) * (_per_head(ops, uxq, b["abs_W_Q_heads"], H) @ _per_head(ops, ux, b["abs_W_K_heads"], H).mT)
        scores_center = abs(scale) * (_per_head(ops, axq, b["abs_W_Q_heads"], H) @ _per_head(ops, ax, b["abs_W_K_heads"], H).mT)
        # Lemma S1 on the chain scale x_i W_Q W_K^T x_j^T: five factors, four product nodes
        mu_x, mu_xq = row_magnitude(ux, ops), row_magnitude(uxq, ops)  # [b, T], [b, Tq]
        G_scores = max(1.0, abs(scale)) * b["mu_QK"][None, :, None, None] * mu_xq[:, None, :, None] * mu_x[:, None, None, :]
        underflow = chain_underflow(G_scores, 4, max(d, b["d_head"]))
        scores_radius = stage_radius(scores_upper, scores_center, score_depth(d, b["d_head"]), underflow, ops)
        query_positions = np.arange(T - xq.shape[1], T)
        allowed = np.arange(T)[None, :] <= query_positions[:, None]
        # masked keys are never computed by a conforming evaluation: only allowed scores count
        safe = ops.all_finite(ops.where(allowed, scores, 0.0), (1, 2, 3)) & _all(in_range(ops.where(allowed, G_scores, 1.0), ops), ops)
        scores = ops.where(allowed, scores, -np.inf)
        scores = scores - ops.amax(scores, -1)[..., None]
        pattern = ops.exp(scores)
        pattern = pattern / ops.sum(pattern, -1)[..., None]
        pattern_radius = softmax_radius(pattern, scores, scores_radius, allowed, ops)
        out = _heads_out(ops, pattern @ v, b["W_O_heads"])
        v_upper = _per_head(ops, ux, b["abs_W_V_heads"], H)
        v_center = _per_head(ops, ax, b["abs_W_V_heads"], H)
        out_upper = uxq + _heads_out(ops, (pattern + pattern_radius) @ v_upper, b["abs_W_O_heads"])
        out_center = axq + _heads_out(ops, pattern @ v_center, b["abs_W_O_heads"])
        # the chain A_i X W_V W_O per head: A first (its row sum), X inner, W_O last
        mu_values = ops.maximum(ops.amax(mu_x, -1), ops.amax(ops.sum(ux, 1), -1) * (1.0 + 2.0**-40))  # [b]
        G_heads = ops.maximum(ops.sum(pattern + pattern_radius, -1), 1.0) * b["mu_VO"][None, :, None] * mu_values[:, None, None]  # [b, h, q]
        G_out = ops.sum(G_heads, 1)  # [b, q]
        underflow = chain_underflow(G_out, 3, max(T, d, b["d_head"]))[..., None]
        depth = attention_output_depth(d, b["n_heads"], b["d_head"], T)
        safe = safe & _all(in_range(mu_xq + G_out, ops), ops)
        return xq + out, stage_radius(out_upper, out_center, depth, underflow, ops), safe

    def final_residual(self, tokens):
        """(center, radius, safe) of the last position's residual: [batch, d_model] twice, [batch]."""
        x, rx, safe = self.embed(tokens)
        last = len(self.blocks) - 1
        for layer, b in enumerate(self.blocks):
            x, rx, ok_attn = self.attention(b, x, rx, last_only=(layer == last))
            x, rx, ok_mlp = bounded_mlp(self.ops, b, x, rx, self.weights.d_model)
            safe = safe & ok_attn & ok_mlp
        x, rx = x[:, -1, :], rx[:, -1, :]
        return x, rx, safe & self.ops.all_finite(x, (1,))

    def margins(self, tokens, answers) -> MarginBatch:
        x, rx, safe = self.final_residual(tokens)
        logits = x @ self.W_U
        logits += self.b_U
        return self.margin_batch(logits, x, rx, safe, answers, exact=is_single_hop(self.weights, tokens) and bool(self.exact))

    def margin_batch(self, logits, x, rx, safe, answers, exact: bool = False) -> MarginBatch:
        ops = self.ops
        safe = to_numpy(safe & ops.all_finite(logits, (1,)))
        margins, best_other = answer_margins(logits, answers, ops)
        margins, best_other = to_numpy(margins), to_numpy(best_other)
        if exact:  # Lemma S8: every conforming evaluation computes these logits exactly
            zero = np.zeros(len(margins))
            return MarginBatch(margins, best_other, zero, zero, np.ones(len(margins), dtype=bool))
        upper = to_numpy(norm_up(ops.abs(x) + rx, ops))
        return self.norms.margin_batch(margins, best_other, to_numpy(norm_up(rx, ops)), upper, safe, to_numpy(answers), self.weights.d_model)


def _per_head(ops, rows, heads, n_heads: int):
    """rows [b, t, d] times every head's [d, e] (side by side in ``heads`` [d, H e]): [b, H, t, e], one product."""
    b, t, d = rows.shape
    product = rows.reshape(b * t, d) @ heads
    return ops.permute(product.reshape(b, t, n_heads, -1), (0, 2, 1, 3))


def _heads_out(ops, mixed, heads):
    """sum over heads of mixed[:, h] [b, q, e] times W_O[h] (stacked in ``heads`` [H e, d]): [b, q, d], one product."""
    b, n_heads, q, e = mixed.shape
    return (ops.permute(mixed, (0, 2, 1, 3)).reshape(b * q, n_heads * e) @ heads).reshape(b, q, -1)


def _all(mask, ops):
    """Per batch row: every entry of ``mask`` ([b, ...]) holds."""
    if mask.ndim == 1:
        return mask
    return ops.all_finite(ops.where(mask, 0.0, np.inf), tuple(range(1, mask.ndim)))


def bounded_mlp(ops, b: dict, x, rx, d_model: int):
    """x + ReLU(x W_in + b_in) W_out + b_out with its radius (Lemma S2: two multilinear stages, ReLU 1-Lipschitz)."""
    ax, ux = ops.abs(x), ops.abs(x) + rx
    pre = x @ b["W_in"] + b["b_in"]
    G_in = row_magnitude(ux, ops) * b["mu_in"]
    pre_radius = stage_radius(ux @ b["abs_W_in"] + b["abs_b_in"], ax @ b["abs_W_in"] + b["abs_b_in"], mlp_in_depth(d_model),
                              chain_underflow(G_in, 1, d_model)[..., None], ops)
    safe = ops.all_finite(pre, tuple(range(1, pre.ndim)))
    hidden = ops.relu(pre)
    out = x + (hidden @ b["W_out"] + b["b_out"])
    upper_hidden = ops.abs(hidden) + pre_radius
    G_out = row_magnitude(upper_hidden, ops) * b["mu_out"]
    upper = ux + (upper_hidden @ b["abs_W_out"] + b["abs_b_out"])
    center = ax + (ops.abs(hidden) @ b["abs_W_out"] + b["abs_b_out"])
    radius = stage_radius(upper, center, mlp_out_depth(b["d_mlp"]), chain_underflow(G_out, 1, b["d_mlp"])[..., None], ops)
    in_bounds = in_range(G_in + b["b_in_max"], ops) & in_range(row_magnitude(ux, ops) + G_out + b["b_out_max"], ops)
    return out, radius, safe & _all(in_bounds, ops)


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


__all__ = ["BoundedForward", "MarginBatch", "UnembeddingNorms", "answer_margins", "bounded_mlp", "check_context", "is_single_hop"]
