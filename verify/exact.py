"""The exact oracle: a query's class decided on the stored weights (docs/theorems/soundness.md, Theorem S6).

``ExactDecider.oracle(tokens, answer)`` runs the §3 forward pass in ball arithmetic with the
radius of every conforming float64 evaluation (verify.balls) at 128, 512, 2048 and 8192 bits:

    every conforming evaluation overflows (a stage output beyond the largest float)  -> failure
    some rival's exact margin is <= 0 (a ball wholly <= 0, or exactly 0)             -> failure
    every exact margin > 0:   no evaluation may overflow and every margin exceeds
                              the radii E of both logits                             -> robust
                              otherwise                                              -> fragile
    a margin ball still straddles 0 at 8192 bits: rational re-evaluation (fmpq) when no
    exp had a non-zero argument, else                                                -> unproven

``decide_many`` first tries the bounded reference's per-rival float64 test (Lemma S4 with each
column's own norm) on safe queries, which settles most of them at a fraction of the cost;
``path="exact"`` in verify.run skips it, so that every verdict comes from the oracle.
"""

from __future__ import annotations

import numpy as np

from georecall.verify.balls import BallForward
from georecall.verify.reference import BoundedForward, is_single_hop
from georecall.verify.error_model import INFLATE, TINY, gamma, logit_depth, logit_radius, norm_up
from georecall.verify.verdict import FAILURE, FRAGILE, ROBUST, UNPROVEN
from georecall.theory.weights import TransformerWeights

PRECISIONS = (128, 512, 2048, 8192)
ALL_RIVALS_LIMIT = 2**22  # N d below it: every rival's logit in balls; above it, float64 screening first


def _sign(ball) -> int | None:
    """+1, -1, 0 (exactly zero), or None (the ball straddles 0)."""
    if ball > 0:
        return 1
    if ball < 0:
        return -1
    if ball.is_exact() and ball.is_zero():
        return 0
    return None


class ExactDecider:
    """Decides queries the float64 bound left open; returns a verdict class (verify.verdict)."""

    def __init__(self, weights: TransformerWeights, precisions=PRECISIONS):
        self.weights, self.precisions = weights, precisions
        self._bounded = None  # built on first use: most verifications never need one
        self._balls = None

    @property
    def bounded(self) -> BoundedForward:
        if self._bounded is None:
            self._bounded = BoundedForward(self.weights)
        return self._bounded

    @property
    def balls(self) -> BallForward:
        if self._balls is None:
            self._balls = BallForward(self.weights)
        return self._balls

    def decide(self, tokens: np.ndarray, answer: int) -> int:
        return int(self.decide_many(np.asarray(tokens)[None, :], np.array([answer]))[0])

    def decide_many(self, tokens: np.ndarray, answers: np.ndarray, batch: int = 1024, prefilter: bool = True) -> np.ndarray:
        """Classes for several queries: the per-rival float64 test where it settles them, the oracle for the rest."""
        tokens = np.asarray(tokens, dtype=np.int64)
        answers = np.asarray(answers, dtype=np.int64)
        result = np.full(len(answers), -1, dtype=np.int8)
        for begin in range(0, len(answers), batch):
            rows = slice(begin, begin + batch)
            if prefilter:
                classes, open_rivals = self._float_test(tokens[rows], answers[rows])
            else:
                classes, open_rivals = result[rows], [None] * len(result[rows])
            for i in np.flatnonzero(classes < 0):
                classes[i] = self.oracle(tokens[begin + i], int(answers[begin + i]), open_rivals[i])
            result[rows] = classes
        return result

    def _float_test(self, tokens: np.ndarray, answers: np.ndarray):
        """(classes, open rivals): ROBUST where every rival is ruled out by its own logit radius,
        FAILURE where one provably wins, -1 elsewhere; safe queries only (Theorem S5 per rival).
        A rival ruled out here is beaten by the answer in exact arithmetic and in every conforming
        evaluation, so the oracle needs only the open ones (all of them for an unsafe query)."""
        bounded = self.bounded
        x, rx, safe = bounded.final_residual(tokens)
        logits = x @ self.weights.W_U + self.weights.b_U
        upper = norm_up(np.abs(x) + rx)
        safe = safe & np.all(np.isfinite(logits), axis=1) & bounded.norms.logits_in_range(upper)
        norms = bounded.norms
        if is_single_hop(self.weights, tokens) and bool(bounded.exact):
            radius = np.zeros_like(logits)  # Lemma S8
        else:
            radius = logit_radius(norm_up(rx)[:, None], upper[:, None], norms.column[None, :], norms.bias[None, :], self.weights.d_model)
        rows = np.arange(len(answers))
        gap = logits[rows, answers][:, None] - logits
        bound = (radius[rows, answers][:, None] + radius) * INFLATE
        rival = np.ones_like(gap, dtype=bool)
        rival[rows, answers] = False
        classes = np.full(len(answers), -1, dtype=np.int8)
        closed = (gap > bound) | ~rival
        classes[np.all(closed, axis=1)] = ROBUST
        classes[np.any((gap < -bound) & rival, axis=1)] = FAILURE
        classes[~safe] = -1
        open_rivals = [np.flatnonzero(~closed[i]) if safe[i] else None for i in range(len(answers))]
        return classes, open_rivals

    # ---- the oracle -----------------------------------------------------------------------
    def oracle(self, tokens: np.ndarray, answer: int, rivals: np.ndarray | None = None) -> int:
        """The class of one query, from ball arithmetic on the stored weights (Theorem S6).
        ``rivals``: the only rivals not already ruled out (default: every one)."""
        return self.oracle_with_pass(tokens, answer, rivals)[0]

    def oracle_with_pass(self, tokens: np.ndarray, answer: int, rivals: np.ndarray | None = None):
        """(class, the last ball pass) of one query."""
        tokens = np.asarray(tokens, dtype=np.int64)
        exact = is_single_hop(self.weights, tokens[None, :]) and bool(self.bounded.exact)
        select = self._rival_selector(answer, exact) if rivals is None else (lambda x, Ex: rivals)
        ball = None
        for precision in self.precisions:
            ball = self.balls.run(tokens, answer, precision, exact, select)
            verdict = self._classify(ball, final=precision == self.precisions[-1])
            if verdict is not None:
                return verdict, ball
        if not ball.transcendental:
            return self._rational(tokens, answer, ball, rivals), ball
        return UNPROVEN, ball

    def _classify(self, ball, final: bool):
        if ball.must_overflow:
            return FAILURE
        undecided = False
        for m in ball.margins:
            if m > 0:
                continue
            sign = _sign(m)
            if sign is not None:  # <= 0: a rival at least as large, in exact arithmetic
                return FAILURE
            undecided = True
        if undecided:
            return None
        return self._robustness(ball, final)

    @staticmethod
    def _robustness(ball, final: bool):
        """A correct query: robust when no evaluation may overflow and each margin beats both radii."""
        if ball.may_overflow:
            return FRAGILE
        if all(r.is_zero() for r in ball.rival_radii) and ball.target_radius.is_zero():
            return ROBUST  # Lemma S8: every evaluation computes the exact logits
        slack = [m - ball.target_radius - r for m, r in zip(ball.margins, ball.rival_radii)]
        if all(s > 0 for s in slack):
            return ROBUST
        if final or any(s <= 0 for s in slack):
            return FRAGILE
        return None

    def _rival_selector(self, answer: int, exact: bool):
        """Every rival when N d is small; else the rivals a float64 screen with rigorous radii
        cannot rule out (correct and robust against them) from the ball residual."""
        w = self.weights
        others = np.delete(np.arange(w.meta.d_vocab_out), answer)
        if w.meta.d_vocab_out * w.d_model <= ALL_RIVALS_LIMIT:
            return lambda x, Ex: others
        norms = self.bounded.norms

        def select(x, Ex) -> np.ndarray:
            center = np.array([float(v.mid()) for v in x.entries()])
            distance = np.array([float((v - c).abs_upper()) for v, c in zip(x.entries(), center)]) * INFLATE + TINY
            spread = np.array([float(r) for r in Ex.entries()]) * INFLATE
            if not (np.all(np.isfinite(center)) and np.all(np.isfinite(distance)) and np.all(np.isfinite(spread))):
                return others
            logits = center @ w.W_U + w.b_U
            r, e = norm_up(distance[None, :])[0], norm_up(spread[None, :])[0]
            g = norm_up((np.abs(center) + distance + spread)[None, :])[0]
            # |exact logit - float logit| (Lemma S4 about the center) and |evaluation - exact| (norm form)
            rho = logit_radius(r, g, norms.column, norms.bias, w.d_model)
            reach = 0.0 if exact else e * norms.column * INFLATE + 8.0 * gamma(logit_depth(w.d_model)) * (g * norms.column + norms.bias) + TINY
            slack = (logits[answer] - logits) - (rho[answer] + rho + reach[answer] + reach) * INFLATE if not exact else \
                (logits[answer] - logits) - (rho[answer] + rho) * INFLATE
            open_ = others[~(slack[others] > 0)]
            return open_

        return select

    def _rational(self, tokens: np.ndarray, answer: int, ball, rivals: np.ndarray | None) -> int:
        """Exact rational margins when every exp argument was 0 (uniform attention): decides ties."""
        from georecall.verify.rationals import NotRational, rational_logits

        rivals = np.delete(np.arange(self.weights.meta.d_vocab_out), answer) if rivals is None else rivals
        try:
            logits = rational_logits(self.weights, tokens)
        except NotRational:
            return UNPROVEN
        margins = [logits[answer] - logits[a] for a in rivals]
        if any(m <= 0 for m in margins):
            return FAILURE
        if ball.may_overflow:
            return FRAGILE
        import flint

        radii = dict(zip(ball.rival_tokens, ball.rival_radii))
        saved = flint.ctx.prec
        flint.ctx.prec = self.precisions[-1]
        try:
            for a, m in zip(rivals, margins):
                r = radii.get(int(a))
                if r is None or not flint.arb(m) - ball.target_radius - r > 0:
                    return FRAGILE
        finally:
            flint.ctx.prec = saved
        return ROBUST


class OracleForward:
    """The exact path: every query's class from the oracle alone (no float64 test), with the
    margins and radii of its ball pass for the report (verify.run, ``path="exact"``)."""

    path = "exact"

    def __init__(self, weights: TransformerWeights):
        self.decider = ExactDecider(weights)

    def classes(self, tokens: np.ndarray, answers: np.ndarray):
        """(MarginBatch, classes) of a batch of queries."""
        from georecall.verify.reference import MarginBatch

        n = len(answers)
        margins, bounds, best, safe = np.empty(n), np.empty(n), np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
        classes = np.empty(n, dtype=np.int8)
        for i in range(n):
            classes[i], ball = self.decider.oracle_with_pass(tokens[i], int(answers[i]))
            gaps = [float(m.mid()) for m in ball.margins]
            k = int(np.argmin(gaps)) if gaps else 0
            margins[i] = gaps[k] if gaps else np.inf
            best[i] = ball.rival_tokens[k] if gaps else 0
            bounds[i] = float((ball.target_radius + (ball.rival_radii[k] if gaps else 0)).upper().mid())
            safe[i] = not ball.may_overflow
        return MarginBatch(margins, best, bounds, np.zeros(n), safe), classes
