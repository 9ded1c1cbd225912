"""A user's own construction, written from docs/FORMAT.md alone: a one-hot lookup table.

Subject s is embedded as R one-hot blocks, block r marking f_r(s) (d_model = R N + R + N).
Attention averages the two positions and doubles the result, so the last position holds the
subject's blocks and twice the relation's indicator. MLP unit (r, a) fires only when block r
marks a and the relation is r; it writes attribute a into an output block that W_U reads.
Every margin is exactly 1. It is correct and deliberately wasteful: N R hidden units and a
d_model linear in N, where the paper's geometry needs O(R log N).

``broken=True`` plants a bug (unit (r, a) listens to relation r + 1): recall fails for R > 1.
"""

import numpy as np

from georecall.theory.instance import Instance
from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights


def lookup_table(instance: Instance, broken: bool = False) -> TransformerWeights:
    N, R = instance.N, instance.R
    d = R * N + R + N
    relation, output = R * N, R * N + R  # offsets of the relation indicators and the output block
    W_E = np.zeros((N + R, d))
    for r in range(R):
        W_E[np.arange(N), r * N + instance.facts[r]] = 1.0
        W_E[N + r, relation + r] = 1.0
    eye = np.eye(d)[None]
    attn = AttentionWeights(W_Q=np.zeros((1, d, d)), W_K=np.zeros((1, d, d)), W_V=eye.copy(), W_O=2 * eye)
    units = R * N
    W_in, W_out = np.zeros((d, units)), np.zeros((units, d))
    for r in range(R):
        listens_to = (r + 1) % R if broken else r
        for a in range(N):
            u = r * N + a
            W_in[r * N + a, u] = 1.0
            W_in[relation + listens_to, u] = 0.5  # the relation coordinate holds 2 at the last position
            W_out[u, output + a] = 2.0  # ReLU(1 + 1 - 1.5) = 0.5 when both match, else 0
    mlp = MLPWeights(W_in, np.full(units, -1.5), W_out, np.zeros(d))
    W_U = np.zeros((d, N))
    W_U[output + np.arange(N), np.arange(N)] = 1.0
    meta = ModelMeta(N=N, R=R, n_layers=1, attn_scale=1.0, extra={"construction": "lookup_table" + ("_broken" if broken else "")})
    return TransformerWeights(W_E, (Block(attn, mlp),), W_U, np.zeros(N), meta)
