"""One conforming float64 evaluation of docs/FORMAT.md §3, chosen at random (for tests and fuzzing).

docs/theorems/soundness.md lets an evaluation compute each stage in any association of its
chains of products, sum in any order and use FMA. ``conforming_logits(weights, tokens, rng)``
draws one such evaluation: every chain split at random points, every dot product summed in a
random order with random FMA (correctly rounded, through exact rationals), every scalar factor
(attn_scale, an attention weight) multiplied in at a random place. A query a path calls robust
must come out right in every draw; a draw that meets a NaN or an infinity has no prediction
(None). Scalar Python arithmetic: meant for files with a handful of coordinates.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from georecall.theory.weights import TransformerWeights


class Overflow(Exception):
    """A value of this evaluation was NaN or infinite: it has no prediction."""


def _check(value: float) -> float:
    if not math.isfinite(value):
        raise Overflow
    return value


def _fma(a: float, b: float, c: float) -> float:
    """fl(a b + c), rounded once (Fraction -> float rounds to nearest, ties to even)."""
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    try:
        return _check(float(exact))
    except OverflowError:
        raise Overflow from None


class _Draw:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def dot(self, left: list, right: list) -> float:
        """sum_i left_i right_i in a random order, each product rounded or fused into the sum."""
        order = self.rng.permutation(len(left))
        total = None
        for i in order:
            a, b = float(left[i]), float(right[i])
            if total is None:
                total = _check(a * b)
            elif self.rng.random() < 0.5:
                total = _fma(a, b, total)
            else:
                total = _check(total + _check(a * b))
        return 0.0 if total is None else total

    def add(self, values: list) -> float:
        total = 0.0
        for i in self.rng.permutation(len(values)):
            total = _check(total + float(values[i]))
        return total

    def chain(self, factors: list) -> np.ndarray:
        """The product of 2-D factors (a scalar is a 1x1 factor placed anywhere) in a random association."""
        if len(factors) == 1:
            return factors[0]
        split = int(self.rng.integers(1, len(factors)))
        left, right = self.chain(factors[:split]), self.chain(factors[split:])
        return self.matmul(left, right)

    def matmul(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        if left.shape == (1, 1) and right.shape[0] != 1:
            return np.vectorize(lambda v: _check(float(left[0, 0]) * v))(right) if right.size else right
        if right.shape == (1, 1) and left.shape[1] != 1:
            return np.vectorize(lambda v: _check(v * float(right[0, 0])))(left) if left.size else left
        out = np.empty((left.shape[0], right.shape[1]))
        for i in range(left.shape[0]):
            for j in range(right.shape[1]):
                out[i, j] = self.dot(list(left[i]), list(right[:, j]))
        return out

    def scaled_chain(self, scalar: float, factors: list) -> np.ndarray:
        """A chain with a scalar factor inserted at a random place (it commutes with the rest)."""
        where = int(self.rng.integers(0, len(factors) + 1))
        return self.chain(factors[:where] + [np.array([[scalar]])] + factors[where:])


def conforming_logits(weights: TransformerWeights, tokens, rng: np.random.Generator) -> np.ndarray | None:
    """The logits of one random conforming evaluation of one prompt, or None if it overflows."""
    draw = _Draw(rng)
    try:
        return _evaluate(weights, np.asarray(tokens), draw)
    except Overflow:
        return None


def conforming_prediction(weights: TransformerWeights, tokens, rng: np.random.Generator) -> int | None:
    """The token one random conforming evaluation predicts (a strict argmax), or None."""
    logits = conforming_logits(weights, tokens, rng)
    if logits is None:
        return None
    best = int(np.argmax(logits))
    return best if np.sum(logits == logits[best]) == 1 else None


def _evaluate(weights: TransformerWeights, tokens: np.ndarray, draw: _Draw) -> np.ndarray:
    rows = []
    for i, t in enumerate(tokens):
        x = weights.W_E[t].copy()
        if weights.W_pos is not None:
            x = np.array([draw.add([a, b]) for a, b in zip(x, weights.W_pos[i])])
        rows.append(x)
    scale = weights.meta.attn_scale
    last = weights.n_layers - 1
    for layer, block in enumerate(weights.blocks):
        a, m = block.attn, block.mlp
        positions = [len(rows) - 1] if layer == last else list(range(len(rows)))
        new_rows = []
        for i in positions:
            terms = [rows[i][None, :]]
            for h in range(a.n_heads):
                scores = [float(draw.scaled_chain(scale, [rows[i][None, :], a.W_Q[h], a.W_K[h].T, rows[j][:, None]])[0, 0])
                          for j in range(i + 1)]
                top = max(scores)
                shifted = [_check(s - top) for s in scores]
                exps = [_check(float(np.exp(s))) for s in shifted]
                total = draw.add(exps)
                pattern = [_check(e / total) for e in exps]
                for j in range(i + 1):
                    terms.append(draw.scaled_chain(pattern[j], [rows[j][None, :], a.W_V[h], a.W_O[h]]))
            z = np.array([draw.add([t[0, c] for t in terms]) for c in range(weights.d_model)])
            pre = draw.chain([z[None, :], m.W_in])[0]
            pre = np.array([draw.add([p, b]) for p, b in zip(pre, m.b_in)])
            hidden = np.maximum(pre, 0.0)
            out = draw.chain([hidden[None, :], m.W_out])[0]
            new_rows.append(np.array([draw.add([zc, oc, bc]) for zc, oc, bc in zip(z, out, m.b_out)]))
        rows = new_rows
    logits = draw.chain([rows[-1][None, :], weights.W_U])[0]
    return np.array([draw.add([logit, bias]) for logit, bias in zip(logits, weights.b_U)])
