"""The §3 forward pass in exact rationals (fmpq), for prompts whose every exp argument is 0.

Uniform attention (all scores of a row equal) makes every value a rational function of the
stored dyadic numbers, so the logits are exact rationals: this decides ties that ball
arithmetic can only bracket (docs/theorems/soundness.md, Theorem S6).
"""

from __future__ import annotations

import numpy as np

from georecall.theory.weights import TransformerWeights


class NotRational(Exception):
    """Some row's scores differ: its softmax needs exp of a non-zero number."""


def rational_logits(weights: TransformerWeights, tokens: np.ndarray) -> list:
    """Exact logits (fmpq) of one prompt; NotRational when an attention row is not uniform."""
    import flint

    def q(value):
        return flint.fmpq(*float(value).as_integer_ratio())

    def mat(array):
        return flint.fmpq_mat([[q(v) for v in row] for row in np.atleast_2d(array).tolist()])

    xs = [mat(weights.W_E[t]) if weights.W_pos is None else mat(weights.W_E[t]) + mat(weights.W_pos[i]) for i, t in enumerate(tokens)]
    scale = q(weights.meta.attn_scale)
    last = weights.n_layers - 1
    for layer, block in enumerate(weights.blocks):
        a, m = block.attn, block.mlp
        heads = [tuple(mat(getattr(a, name)[h]) for name in ("W_Q", "W_K", "W_V", "W_O")) for h in range(a.n_heads)]
        positions = [len(xs) - 1] if layer == last else range(len(xs))
        mixed = []
        for i in positions:
            out = xs[i]
            for WQ, WK, WV, WO in heads:
                q_i = xs[i] * WQ
                scores = [scale * (q_i * (xs[j] * WK).transpose())[0, 0] for j in range(i + 1)]
                if any(s != scores[0] for s in scores):
                    raise NotRational
                share = flint.fmpq(1, i + 1)
                mix = (xs[0] * WV) * share
                for j in range(1, i + 1):
                    mix = mix + (xs[j] * WV) * share
                out = out + mix * WO
            mixed.append(out)
        W_in, b_in, W_out, b_out = mat(m.W_in), mat(m.b_in), mat(m.W_out), mat(m.b_out)
        xs = []
        for z in mixed:
            pre = z * W_in + b_in
            hidden = flint.fmpq_mat([[v if v > 0 else flint.fmpq(0) for v in pre.entries()]])
            xs.append(z + (hidden * W_out + b_out))
    logits = xs[-1] * mat(weights.W_U) + mat(weights.b_U)
    return logits.entries()
