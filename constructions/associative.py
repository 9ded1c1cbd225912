"""k hops without CoT, associative route (construction K4; docs/theorems/multi_hop.md, Theorem 6).

k layers and a small residual stream, but the facts live in the MLPs:

    pos (k+1) | entity (R blocks of d0: the superposition e_x of the current entity) |
    relation (R) | slot[1..k] (R each) | output (d0)

Layer 1 attention routes the subject into "current" and relation r_j into slot j (hard
routing). For hop l < k, layer l's MLP replaces e_x by e_{f_{r_l}(x)}:
    lookup unit (a, r):  ReLU(<u_a, current block r> - (d0 - 1) + B (z_{slot l, r} - 1)),  B = d0 + 1
fires (value 1) exactly when block r holds u_a and r_l = r; it writes e_a, the full embedding of
a, into "current" (the fact table: N R units, fact-dependent), while always-on pairs
ReLU(+-z_{cur,i}) erase the old content. Layers 2..k have zero attention. Layer k's MLP is the
single-hop gated selector on slot k, writing u_{f_{r_k}(x)} into "output".
Binary (+-1) codes only: <u_a, u_b> <= d0 - 2 for a != b is what makes lookups exact.
"""

from __future__ import annotations

import math

import numpy as np

from georecall.constructions.base import Construction
from georecall.constructions.block_superposition import block_subject_embeddings
from georecall.constructions.codebooks import Codebook
from georecall.constructions.layout import Layout
from georecall.constructions.routing import SCORE_GAP, Route, attention_leak_bound, routing_attention
from georecall.constructions.chains import chain_layout
from georecall.constructions.selector import gated_selector, nearest_code_unembedding, relation_rows
from georecall.theory.checks import InputError, require_int
from georecall.theory.instance import Instance
from georecall.theory.spec import spec_from_weights
from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights

NAME = "associative_multi_hop"


def associative_layout(hops: int, R: int, d0: int) -> Layout:
    """Theorem 4's layout with the R one-relation chains as the entity ("current") subspace."""
    return chain_layout(hops + 1, R, R, hops, d0, readout="slot")


def lookup_mlp(layout: Layout, instance: Instance, codebook: Codebook, hop: int) -> MLPWeights:
    """Erase "current", then write e_{f_{r_hop}(x)}: 2 R d0 erase units and N R lookup units."""
    N, R, d0, D = instance.N, instance.R, codebook.d0, layout.d_model
    current, slot = layout["entity"], layout[f"slot[{hop}]"]
    gate = d0 + 1.0
    embeddings = block_subject_embeddings(instance, codebook)[:, : R * d0]  # e_a on the current block
    n_erase, n_lookup = 2 * R * d0, N * R
    W_in, W_out = np.zeros((D, n_erase + n_lookup)), np.zeros((n_erase + n_lookup, D))
    b_in = np.zeros(n_erase + n_lookup)
    for i in range(R * d0):
        for k, sign in enumerate((1.0, -1.0)):
            W_in[current[i], 2 * i + k] = sign
            W_out[2 * i + k, current[i]] = -sign
    for r in range(R):
        units = n_erase + r * N + np.arange(N)
        W_in[current.start + r * d0 : current.start + (r + 1) * d0, units] = codebook.codes.T
        W_in[slot[r], units] = gate
        b_in[units] = -(d0 - 1) - gate
        W_out[units, current.slice] = embeddings
    return MLPWeights(W_in=W_in, b_in=b_in, W_out=W_out, b_out=np.zeros(D))


def build_associative_multi_hop(instance: Instance, codebook: Codebook, hops: int, score_gap: float = SCORE_GAP) -> Construction:
    """Exact k-hop recall (chains of length exactly k) with d_model = (k+1) + R d0 + R + kR + d0."""
    hops = require_int("hops", hops, minimum=1)
    if codebook.name not in ("binary", "rademacher"):
        raise InputError(f"the associative route needs a +-1 codebook (binary or rademacher), got {codebook.name!r}")
    N, R, d0 = instance.N, instance.R, codebook.d0
    layout = associative_layout(hops, R, d0)
    D, pos, last = layout.d_model, layout["pos"], hops
    routes = [Route({last: 0}, layout["entity"], layout["entity"])]
    routes += [Route({last: j}, layout["relation"], layout[f"slot[{j}]"]) for j in range(1, hops + 1)]
    blocks = []
    for layer in range(1, hops + 1):
        attention = routing_attention(D, pos, routes, score_gap) if layer == 1 else _silent_attention(D)
        if layer < hops:
            mlp = lookup_mlp(layout, instance, codebook, layer)
        else:
            current = layout["entity"]
            readouts = [np.eye(R * d0, d0, -r * d0) for r in range(R)]
            mlp = gated_selector(D, readouts, current, layout[f"slot[{hops}]"], layout["output"], codebook.max_abs_entry + 1.0)
        blocks.append(Block(attention, mlp))
    W_U, b_U = nearest_code_unembedding(D, codebook.codes, layout["output"])
    subject_rows = np.zeros((N, D))
    subject_rows[:, layout["entity"].slice] = block_subject_embeddings(instance, codebook)[:, : R * d0]
    meta = ModelMeta(
        N=N, R=R, n_layers=hops, attn_scale=1.0, query_kinds=("multi_hop",),
        extra={"construction": NAME, "codebook": codebook.name, "codebook_params": codebook.params, "hops": hops,
               "chains": "exact", "score_gap": score_gap, "layout": layout.to_json_dict()},
    )
    weights = TransformerWeights(np.vstack([subject_rows, relation_rows(N, R, D, layout["relation"])]), tuple(blocks), W_U, b_U, meta, W_pos=np.eye(hops + 1, D))
    leak = attention_leak_bound(hops + 1, 1.0, score_gap)
    # Theorem 6: each lookup layer multiplies the routing error by at most 2 d0 + 1; the theorem needs
    # (2 d0 + 1)^(k-1) leak < 1 (every lookup decides right) and eps = (1 + 2R)(2 d0 + 1)^(k-1) leak < 1
    propagated = (2 * d0 + 1) ** (hops - 1) * leak
    epsilon = (1.0 + 2.0 * R) * propagated
    spec = spec_from_weights(
        weights, name=f"{NAME}/{codebook.name}", subject_embedding_dim=R * d0, bits_per_coordinate=1.0,
        guaranteed_margin=max(0.0, 2.0 - 4.0 * math.sqrt(d0) * epsilon) if propagated < 1 and epsilon < 1 else 0.0,  # 0: nothing proven
        failure_probability=0.0 if codebook.name == "binary" else float(codebook.params["delta"]),
        fact_independent_shared=False, hops=hops, cot=False,
        extra={"d0": d0, "chains": "exact", "lookup_units_per_layer": N * R},
    )
    return Construction(weights, spec, instance, _no_retarget)


def _silent_attention(D: int) -> AttentionWeights:
    zeros = np.zeros((1, D, 1))
    return AttentionWeights(W_Q=zeros, W_K=zeros.copy(), W_V=zeros.copy(), W_O=np.zeros((1, 1, D)))


def _no_retarget(instance: Instance):
    raise InputError("the associative route stores the facts in its MLPs: it cannot be re-targeted by subject embeddings alone")
