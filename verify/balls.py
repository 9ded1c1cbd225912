"""The §3 forward pass in ball arithmetic, with the radius of every conforming float64 evaluation.

``BallForward(weights).run(tokens, rivals, precision)`` evaluates docs/FORMAT.md §3 on the
stored values as Arb balls (python-flint), so every ball contains the exact real value, and
carries beside each stage output the error model's bound E on how far any conforming float64
evaluation can land from it (docs/theorems/soundness.md, Lemma S1 with exact centers). It also
reports whether some conforming evaluation may overflow (a magnitude product at or above
OVERFLOW_LIMIT) and whether every one must (a stage output farther from 0 than the largest
float64 by more than E). Where Lemma S8 proves a single-hop prompt exact, every E is 0.
verify.exact turns a pass into a verdict class; nothing here uses float64 arithmetic for values.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from georecall.verify.error_model import (
    EXP_RELATIVE_ERROR,
    OVERFLOW_LIMIT,
    PATTERN_RADIUS_CAP,
    PRODUCT_UNDERFLOW_EXPONENT,
    SOFTMAX_ETA_LIMIT,
    UNIT_ROUNDOFF,
    attention_output_depth,
    gamma,
    logit_depth,
    magnitude,
    mlp_in_depth,
    mlp_out_depth,
    score_depth,
)
from georecall.theory.weights import TransformerWeights

LARGEST_FLOAT = sys.float_info.max


@dataclass
class BallPass:
    """One evaluation: logits of the answer and of each rival (balls), their radii E (upper
    bounds on |conforming evaluation - exact|), and the overflow findings."""

    target: object
    rivals: list
    target_radius: object
    rival_radii: list
    may_overflow: bool = False
    must_overflow: bool = False
    transcendental: bool = False  # some exp had a non-zero argument: the values are not rational
    rival_tokens: list = field(default_factory=list)
    margins: list = field(default_factory=list)  # target - rival, one per rival


class BallForward:
    """Arb balls for the stored weights (converted once) and the §3 stages with their radii."""

    def __init__(self, weights: TransformerWeights):
        import flint

        self.flint, self.weights = flint, weights
        self._mats: dict = {}
        self.magnitudes = [dict(QK=(magnitude(b.attn.W_Q) * magnitude(b.attn.W_K)).tolist(),
                                VO=(magnitude(b.attn.W_V) * magnitude(b.attn.W_O, "last")).tolist(),
                                W_in=float(magnitude(b.mlp.W_in, "last")), W_out=float(magnitude(b.mlp.W_out, "last")))
                           for b in weights.blocks]

    # ---- ball helpers ----------------------------------------------------------------------
    def mat(self, key, array: np.ndarray):
        """An arb_mat of stored float64 values (exact), cached by ``key``."""
        if key not in self._mats:
            self._mats[key] = self.flint.arb_mat(np.atleast_2d(np.asarray(array, dtype=np.float64)).tolist())
        return self._mats[key]

    def row(self, values) -> object:
        return self.flint.arb_mat([list(values)])

    def zeros(self, n: int):
        return self.row([self.flint.arb(0)] * n)

    @staticmethod
    def entries(m) -> list:
        return m.entries()

    def upper(self, m, radius) -> object:
        """|center| + radius, entrywise, as exact upper bounds."""
        return self.row([(c.abs_upper() + r).upper() for c, r in zip(m.entries(), radius.entries())])

    def lower_abs(self, m) -> object:
        return self.row([c.abs_lower() for c in m.entries()])

    def radius(self, upper, center, depth: int, underflow) -> object:
        """Lemma S1 with exact centers: (U - C) + gamma_m U + the chains' underflow, entrywise upper bounds."""
        g = self.flint.arb(gamma(depth))
        return self.row([((u - c).upper() + g * u.upper() + underflow).upper() for u, c in zip(upper.entries(), center.entries())])

    def total(self, values):
        """An exact upper bound on the sum of the absolute values."""
        total = self.flint.arb(0)
        for e in values:
            total += e.abs_upper()
        return total.upper()

    def mu(self, upper_row):
        """Lemma S1's magnitude of a query row (a first factor): max(1, its sum)."""
        return _largest([self.total(upper_row.entries()), self.flint.arb(1)])

    def underflow(self, G, nodes: int, width: int):
        """One evaluation's underflow at the chains' inner products (Lemma S1), nodes * width * 2^-1075 * G."""
        return self.unit_underflow() * (nodes * width) * G

    def unit_underflow(self):
        """2^-1075 as an exact ball (it is no float64)."""
        return self.flint.arb(2.0**-1000) * self.flint.arb(2.0 ** (PRODUCT_UNDERFLOW_EXPONENT + 1000))

    # ---- the pass ----------------------------------------------------------------------------
    def run(self, tokens: np.ndarray, answer: int, precision: int, exact: bool, select_rivals) -> BallPass:
        """One pass at ``precision`` bits. ``select_rivals(x, Ex)`` names the rival tokens to evaluate
        from the final residual's balls and radii (every other one must already be ruled out)."""
        flint = self.flint
        saved = flint.ctx.prec
        flint.ctx.prec = precision
        try:
            state = _PassState()
            xs, radii = self._embed(tokens, exact, state)
            last = self.weights.n_layers - 1
            for layer, block in enumerate(self.weights.blocks):
                positions = [len(xs) - 1] if layer == last else list(range(len(xs)))
                new_xs, new_radii = [], []
                for i in positions:
                    z, Ez = self._attention(layer, block.attn, xs, radii, i, exact, state)
                    y, Ey = self._mlp(layer, block.mlp, z, Ez, exact, state)
                    new_xs.append(y)
                    new_radii.append(Ey)
                xs, radii = new_xs, new_radii
            return self._logits(xs[-1], radii[-1], answer, select_rivals(xs[-1], radii[-1]), exact, state)
        finally:
            flint.ctx.prec = saved

    def _check_stage(self, values, radius, G, state: "_PassState") -> None:
        """Overflow findings of one stage: G out of range -> some evaluation may overflow; an output
        beyond the largest float by more than its radius -> every evaluation overflows."""
        if G is not None and not G < OVERFLOW_LIMIT:
            state.may_overflow = True
        for value, rho in zip(values.entries(), radius.entries()):
            if value.abs_lower() - rho > LARGEST_FLOAT:
                state.must_overflow = state.may_overflow = True
                return

    def _embed(self, tokens, exact: bool, state):
        w, flint = self.weights, self.flint
        xs, radii = [], []
        for p, t in enumerate(tokens):
            x = self.mat(("W_E", int(t)), w.W_E[t])
            if w.W_pos is None:
                xs.append(x)
                radii.append(self.zeros(w.d_model))
                continue
            x = x + self.mat(("W_pos", p), w.W_pos[p])
            upper = np.abs(w.W_E[t]) + np.abs(w.W_pos[p])  # one rounding of a sum: u |a + b| <= u (|a| + |b|)
            rho = self.zeros(w.d_model) if exact else self.row([flint.arb(float(v)) * UNIT_ROUNDOFF * 2 for v in upper])
            self._check_stage(x, rho, flint.arb(float(np.max(upper) * 2)), state)
            xs.append(x)
            radii.append(rho)
        return xs, radii

    def _attention(self, layer: int, attn, xs, radii, i: int, exact: bool, state):
        flint, w = self.flint, self.weights
        scale = flint.arb(w.meta.attn_scale)
        abs_scale = abs(scale)
        d, T = w.d_model, i + 1
        mags = self.magnitudes[layer]
        ux = [self.upper(x, r) for x, r in zip(xs[:T], radii[:T])]
        axl = [self.lower_abs(x) for x in xs[:T]]
        mu = [self.mu(u) for u in ux]
        z, z_upper, z_center = xs[i], ux[i], axl[i]
        G_total = flint.arb(0)
        values_mu = None
        for h in range(attn.n_heads):
            WQ, WK = self.mat((layer, "W_Q", h), attn.W_Q[h]), self.mat((layer, "W_K", h), attn.W_K[h])
            WV, WO = self.mat((layer, "W_V", h), attn.W_V[h]), self.mat((layer, "W_O", h), attn.W_O[h])
            aWQ, aWK = self.mat((layer, "|W_Q|", h), np.abs(attn.W_Q[h])), self.mat((layer, "|W_K|", h), np.abs(attn.W_K[h]))
            aWV, aWO = self.mat((layer, "|W_V|", h), np.abs(attn.W_V[h])), self.mat((layer, "|W_O|", h), np.abs(attn.W_O[h]))
            q = xs[i] * WQ
            scores = [scale * (q * (xs[j] * WK).transpose())[0, 0] for j in range(T)]
            if exact:
                score_radii = [flint.arb(0)] * T
            else:
                q_up, q_c = ux[i] * aWQ, axl[i] * aWQ
                score_radii = []
                for j in range(T):
                    G = (abs_scale if abs_scale > 1 else flint.arb(1)) * mags["QK"][h] * mu[i] * mu[j]
                    U, C = abs_scale * (q_up * (ux[j] * aWK).transpose())[0, 0], abs_scale * (q_c * (axl[j] * aWK).transpose())[0, 0]
                    rho = self.radius(self.row([U]), self.row([C]), score_depth(d, attn.d_head), self.underflow(G, 4, max(d, attn.d_head)))
                    self._check_stage(self.row([scores[j]]), rho, G, state)
                    score_radii.append(rho[0, 0])
            pattern, pattern_radii = self._softmax(scores, score_radii, exact, state)
            mix = self.zeros(attn.d_head)
            for j in range(T):
                mix = mix + (xs[j] * WV) * pattern[j]
            z = z + mix * WO
            if not exact:
                up = self.zeros(attn.d_head)
                ce = self.zeros(attn.d_head)
                for j in range(T):
                    up = up + (ux[j] * aWV) * (pattern[j].abs_upper() + pattern_radii[j])
                    ce = ce + (axl[j] * aWV) * pattern[j].abs_lower()
                z_upper, z_center = z_upper + up * aWO, z_center + ce * aWO
                share = _largest([self.total([(pattern[j].abs_upper() + pattern_radii[j]).upper() for j in range(T)]), flint.arb(1)])
                if values_mu is None:  # the value matrix [x_0; ...; x_i] is an inner factor: its row and column sums
                    rows = [u.entries() for u in ux]
                    values_mu = _largest(mu + [self.total([row[c] for row in rows]) for c in range(d)])
                G_total = (G_total + share * mags["VO"][h] * values_mu).upper()
        if exact:
            return z, self.zeros(d)
        rho = self.radius(z_upper, z_center, attention_output_depth(d, attn.n_heads, attn.d_head, T),
                          self.underflow(G_total, 3, max(T, d, attn.d_head)))
        self._check_stage(z, rho, mu[i] + G_total, state)
        return z, rho

    def _softmax(self, scores, radii, exact: bool, state):
        flint = self.flint
        mids = [float(s.mid()) for s in scores]
        finite = [m for m in mids if np.isfinite(m)]
        shift = flint.arb(max(finite) if finite else 0.0)  # any constant: the float max keeps exp small
        shifted = [s - shift for s in scores]
        if any(not (s.is_exact() and s.is_zero()) for s in shifted):
            state.transcendental = True
        exps = [s.exp() for s in shifted]
        total = flint.arb(0)
        for e in exps:
            total += e
        pattern = [e / total for e in exps]
        if exact:
            return pattern, [flint.arb(0)] * len(pattern)
        T = len(scores)
        rho = _largest(radii + [flint.arb(0)])
        spread = _largest([(a - b).abs_upper() for a in scores for b in scores])  # >= max_j |S_j - max S|
        kappa = flint.arb(UNIT_ROUNDOFF) * (spread + 2 * rho)
        eta = (2 * rho + 2 * kappa + 4 * flint.arb(EXP_RELATIVE_ERROR) + 2 * flint.arb(gamma(T + 1))).upper()
        floor = flint.arb(2.0**-1070) * T  # exp underflow: < 2^-1074 per term against a sum >= 1
        if not eta <= SOFTMAX_ETA_LIMIT:
            radii = [flint.arb(PATTERN_RADIUS_CAP)] * T
        else:
            grow = (eta.exp() - 1).upper()
            radii = [(p.abs_upper() * grow + floor).upper() for p in pattern]
        # Lemma S3': the weights sum to 1 exactly and within 2 gamma_{T+1} in any evaluation
        total = self.total(radii)
        spare = flint.arb(2 * gamma(T + 1)) + floor
        return pattern, [_smallest([r, (total - r + spare).upper()]) for r in radii]

    def _mlp(self, layer: int, mlp, z, Ez, exact: bool, state):
        d = self.weights.d_model
        W_in, b_in = self.mat((layer, "W_in"), mlp.W_in), self.mat((layer, "b_in"), mlp.b_in[None, :])
        W_out, b_out = self.mat((layer, "W_out"), mlp.W_out), self.mat((layer, "b_out"), mlp.b_out[None, :])
        pre = z * W_in + b_in
        hidden = self.row([v.nonnegative_part() for v in pre.entries()])
        out = z + (hidden * W_out + b_out)
        if exact:
            return out, self.zeros(d)
        aW_in, ab_in = self.mat((layer, "|W_in|"), np.abs(mlp.W_in)), self.mat((layer, "|b_in|"), np.abs(mlp.b_in)[None, :])
        aW_out, ab_out = self.mat((layer, "|W_out|"), np.abs(mlp.W_out)), self.mat((layer, "|b_out|"), np.abs(mlp.b_out)[None, :])
        uz, az = self.upper(z, Ez), self.lower_abs(z)
        G_in = self.mu(uz) * self.magnitudes[layer]["W_in"]
        E_pre = self.radius(uz * aW_in + ab_in, az * aW_in + ab_in, mlp_in_depth(d), self.underflow(G_in, 1, d))
        self._check_stage(pre, E_pre, G_in + float(np.max(np.abs(mlp.b_in), initial=0.0)), state)
        u_hidden = self.upper(hidden, E_pre)  # ReLU is 1-Lipschitz: the hidden radius is the input's
        G_out = self.mu(u_hidden) * self.magnitudes[layer]["W_out"]
        E_out = self.radius(uz + (u_hidden * aW_out + ab_out), az + (self.lower_abs(hidden) * aW_out + ab_out), mlp_out_depth(mlp.d_mlp),
                            self.underflow(G_out, 1, mlp.d_mlp))
        self._check_stage(out, E_out, self.mu(uz) + G_out + float(np.max(np.abs(mlp.b_out), initial=0.0)), state)
        return out, E_out

    def _logits(self, x, Ex, answer: int, rivals: np.ndarray, exact: bool, state) -> BallPass:
        """The answer's logit, each rival's and their differences in balls, and the radii E of every logit."""
        flint, w = self.flint, self.weights
        rivals = np.asarray(rivals, dtype=np.int64)
        columns = np.concatenate([[answer], rivals])
        every = len(columns) == w.meta.d_vocab_out
        W = self.mat("W_U", w.W_U) if every else flint.arb_mat(w.W_U[:, columns].tolist())
        b = self.mat("b_U", w.b_U[None, :]) if every else self.row([flint.arb(float(v)) for v in w.b_U[columns]])
        logits = (x * W + b).entries()
        if every:
            logits = [logits[int(c)] for c in columns]
        target = logits[0]
        # target - rival for every rival at once: one C-level subtraction of two rows
        margins = (flint.arb_mat(1, len(rivals), [target] * len(rivals)) - flint.arb_mat([logits[1:]])).entries() if len(rivals) else []
        if exact:
            zero = flint.arb(0)
            return BallPass(target, logits[1:], zero, [zero] * len(rivals), transcendental=state.transcendental,
                            rival_tokens=[int(a) for a in rivals], margins=margins)
        aW = self.mat("|W_U|", np.abs(w.W_U)) if every else flint.arb_mat(np.abs(w.W_U[:, columns]).tolist())
        ab = self.mat("|b_U|", np.abs(w.b_U)[None, :]) if every else self.row([flint.arb(abs(float(v))) for v in w.b_U[columns]])
        ux, ax = self.upper(x, Ex), self.lower_abs(x)
        U, C = (ux * aW + ab).entries(), (ax * aW + ab).entries()
        if every:
            U, C = [U[int(c)] for c in columns], [C[int(c)] for c in columns]
        # the logit stage's products have no later factor: d * 2^-1075 each
        E = self.radius(self.row(U), self.row(C), logit_depth(w.d_model), self.unit_underflow() * w.d_model)
        for value, rho, u in zip(logits, E.entries(), U):
            if not u < OVERFLOW_LIMIT:
                state.may_overflow = True
            if value.abs_lower() - rho > LARGEST_FLOAT:
                state.must_overflow = state.may_overflow = True
        radii = E.entries()
        return BallPass(target, logits[1:], radii[0], radii[1:], state.may_overflow, state.must_overflow, state.transcendental,
                        [int(a) for a in rivals], margins)

def _smallest(points: list):
    """The smallest of exact points, compared exactly."""
    best = points[0]
    for p in points[1:]:
        if p < best:
            best = p
    return best


def _largest(points: list):
    """The largest of exact points (arb balls of radius 0), compared exactly."""
    best = points[0]
    for p in points[1:]:
        if p > best:
            best = p
    return best


@dataclass
class _PassState:
    may_overflow: bool = False
    must_overflow: bool = False
    transcendental: bool = False
