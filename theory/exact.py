"""Re-deciding a query exactly: ball arithmetic (Arb, through python-flint) on the stored weights.

The weights file defines a function in exact real arithmetic (docs/FORMAT.md §6). A query whose
float64 margin lies inside its error bound is not guessed: ``ExactDecider.decide`` evaluates its
margins against every rival that float64 could not rule out, as Arb balls at rising precision
(128, 512, 2048 bits). A ball wholly above 0 proves the margin positive; wholly below, negative;
an exact zero is a tie (not correct). If a ball still straddles 0 and no exp in the computation
had a non-zero argument (every attention row was uniform), the computation is rational and is
redone exactly in fmpq, which decides ties. Otherwise the query stays unproven.
docs/theorems/soundness.md, Theorem S6.
"""

from __future__ import annotations

import numpy as np

from georecall.theory.bounded import BoundedForward
from georecall.theory.rounding import INFLATE, logit_radius, norm_up
from georecall.theory.verdict import FAILURE, FRAGILE, ROBUST, UNPROVEN
from georecall.theory.weights import TransformerWeights

PRECISIONS = (128, 512, 2048)


class _Transcendental(Exception):
    """The exact computation needs exp of a non-zero number: it is not rational."""


class _Ring:
    """Scalars and matrices of one number system (Arb balls or exact rationals)."""

    def __init__(self, kind: str):
        import flint

        self.flint, self.kind = flint, kind
        if kind == "arb":
            self.scalar = flint.arb
            self.matrix_type = flint.arb_mat
        else:
            self.scalar = lambda v: flint.fmpq(*float(v).as_integer_ratio())
            self.matrix_type = flint.fmpq_mat
        self.cache: dict = {}

    def matrix(self, key, array: np.ndarray):
        if key not in self.cache:
            array = np.atleast_2d(array)
            rows = array.tolist() if self.kind == "arb" else [[self.scalar(v) for v in row] for row in array.tolist()]
            self.cache[key] = self.matrix_type(rows)
        return self.cache[key]

    def row(self, values: np.ndarray):
        return self.matrix_type([[self.scalar(v) for v in np.asarray(values, dtype=np.float64).tolist()]])

    def exp(self, value):
        if self.kind == "arb":
            return value.exp()
        if value != 0:
            raise _Transcendental
        return self.flint.fmpq(1)

    def relu(self, value):
        if self.kind == "arb":
            return value.nonnegative_part()
        return value if value > 0 else self.flint.fmpq(0)

    def sign(self, value) -> int | None:
        """+1, -1, 0 (exactly zero), or None (undecided)."""
        if value > 0:
            return 1
        if value < 0:
            return -1
        if self.kind == "fmpq" or (value.is_exact() and value.is_zero()):
            return 0
        return None


class ExactDecider:
    """Decides queries the float64 bound left open; returns a verdict class (theory.verdict)."""

    def __init__(self, weights: TransformerWeights, precisions=PRECISIONS):
        self.weights, self.precisions = weights, precisions
        self._bounded = None  # built on the first decision: most verifications never need one
        self.rings = {"arb": _Ring("arb"), "fmpq": _Ring("fmpq")}

    @property
    def bounded(self) -> BoundedForward:
        if self._bounded is None:
            self._bounded = BoundedForward(self.weights)
        return self._bounded

    def decide(self, tokens: np.ndarray, answer: int) -> int:
        return int(self.decide_many(np.asarray(tokens)[None, :], np.array([answer]))[0])

    def decide_many(self, tokens: np.ndarray, answers: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Classes for several queries: the per-rival float64 test (Lemma S4 with each column's own
        norm) on the bounded reference, vectorised; ball arithmetic only for what it leaves open."""
        tokens = np.asarray(tokens, dtype=np.int64)
        answers = np.asarray(answers, dtype=np.int64)
        result = np.empty(len(answers), dtype=np.int8)
        for begin in range(0, len(answers), batch):
            rows = slice(begin, begin + batch)
            result[rows] = self._decide_batch(tokens[rows], answers[rows])
        return result

    def _decide_batch(self, tokens: np.ndarray, answers: np.ndarray) -> np.ndarray:
        x, rx, finite = self.bounded.final_residual(tokens)
        logits = x @ self.weights.W_U + self.weights.b_U
        finite = finite & np.all(np.isfinite(logits), axis=1)
        norms = self.bounded.norms
        radius = logit_radius(norm_up(rx)[:, None], norm_up(np.abs(x) + rx)[:, None], norms.column[None, :], norms.bias[None, :],
                              self.weights.d_model)
        rows = np.arange(len(answers))
        gap = logits[rows, answers][:, None] - logits
        bound = (radius[rows, answers][:, None] + radius) * INFLATE
        gap[rows, answers] = np.inf
        classes = np.full(len(answers), -1, dtype=np.int8)
        classes[np.all(gap > bound, axis=1)] = ROBUST
        classes[np.any(gap < -bound, axis=1)] = FAILURE
        classes[~finite] = FAILURE
        for i in np.flatnonzero(classes < 0):
            classes[i] = self._decide_exactly(tokens[i], int(answers[i]), np.flatnonzero(~(gap[i] > bound[i])))
        return classes

    def _decide_exactly(self, tokens: np.ndarray, answer: int, rivals: np.ndarray) -> int:
        for prec in self.precisions:
            signs = self._signs("arb", prec, tokens, answer, rivals)
            if any(s is not None and s <= 0 for s in signs):
                return FAILURE
            if all(s == 1 for s in signs):
                return FRAGILE
        try:
            signs = self._signs("fmpq", 0, tokens, answer, rivals)
        except _Transcendental:
            return UNPROVEN
        return FRAGILE if all(s == 1 for s in signs) else FAILURE

    def _signs(self, kind: str, prec: int, tokens: np.ndarray, answer: int, rivals: np.ndarray) -> list:
        ring = self.rings[kind]
        ctx = ring.flint.ctx
        saved = ctx.prec
        if prec:
            ctx.prec = prec
        try:
            x = self._final_residual(ring, tokens)
            W_U, b_U = self.weights.W_U, self.weights.b_U
            target = ring.matrix(("W_U", answer), W_U[:, answer][:, None])
            signs = []
            for a in rivals:
                column = ring.matrix(("W_U", int(a)), W_U[:, a][:, None])
                margin = (x * (target - column))[0, 0] + (ring.scalar(b_U[answer]) - ring.scalar(b_U[a]))
                signs.append(ring.sign(margin))
                if signs[-1] is not None and signs[-1] <= 0:
                    break
            return signs
        finally:
            ctx.prec = saved

    def _final_residual(self, ring: _Ring, tokens: np.ndarray):
        w = self.weights
        xs = [ring.row(w.W_E[t] + 0.0) if w.W_pos is None else ring.row(w.W_E[t]) + ring.row(w.W_pos[i]) for i, t in enumerate(tokens)]
        scale = ring.scalar(w.meta.attn_scale)
        last = w.n_layers - 1
        for layer, block in enumerate(w.blocks):
            a, m = block.attn, block.mlp
            heads = [tuple(ring.matrix((layer, name, h), getattr(a, name)[h]) for name in ("W_Q", "W_K", "W_V", "W_O"))
                     for h in range(a.n_heads)]
            keys = [[x * WK for x in xs] for (_, WK, _, _) in heads]
            values = [[x * WV for x in xs] for (_, _, WV, _) in heads]
            positions = [len(xs) - 1] if layer == last else range(len(xs))
            mixed_rows = []
            for i in positions:
                out = xs[i]
                for h, (WQ, _, _, WO) in enumerate(heads):
                    q = xs[i] * WQ
                    scores = [scale * (q * keys[h][j].transpose())[0, 0] for j in range(i + 1)]
                    weights = self._softmax(ring, scores)
                    mix = values[h][0] * weights[0]
                    for j in range(1, i + 1):
                        mix = mix + values[h][j] * weights[j]
                    out = out + mix * WO
                mixed_rows.append(out)
            W_in, b_in = ring.matrix((layer, "W_in"), m.W_in), ring.matrix((layer, "b_in"), m.b_in[None, :])
            W_out, b_out = ring.matrix((layer, "W_out"), m.W_out), ring.matrix((layer, "b_out"), m.b_out[None, :])
            xs = []
            for z in mixed_rows:
                pre = z * W_in + b_in
                hidden = ring.matrix_type([[ring.relu(pre[0, c]) for c in range(pre.ncols())]])
                xs.append(z + (hidden * W_out + b_out))
        return xs[-1]

    def _softmax(self, ring: _Ring, scores: list) -> list:
        if ring.kind == "arb":
            # Shifting by a constant does not change the softmax; the float max keeps exp small.
            mids = [float(s.mid()) for s in scores]
            finite = [m for m in mids if np.isfinite(m)]
            shift = ring.scalar(max(finite) if finite else 0.0)
        else:
            shift = max(scores)
        exps = [ring.exp(s - shift) for s in scores]
        total = exps[0]
        for e in exps[1:]:
            total = total + e
        return [e / total for e in exps]
