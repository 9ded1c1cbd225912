"""Single hop, block superposition (construction K1; theorem in docs/theorems/single_hop.md, Theorem 1).

Residual layout (d_model = R*d0 + R + d0):
    subject[r]  d0 coords each, r in [R]   e_s puts u_{f_r(s)} in block r
    relation    R coords                  e_r is the indicator of coordinate r
    output      d0 coords                 the MLP writes the selected code here

    e_s = sum_r (block r <- u_{f_r(s)})
    z   = e_s + e_r                                     (subject-copying attention)
    h_{r,i,+-} = ReLU(+-z_{r,i} + B z_{rel r} - B),     B = max|code entry| + 1
    y_out,i = h_{r,i,+} - h_{r,i,-}  summed over r      = u_{f_r*(s), i}
    logit_a = <u_a, y_out> - ||u_a||^2 / 2              (nearest-code decoding)

Every shared array depends on (N, R, codebook) only; the facts enter through e_s alone.
"""

from __future__ import annotations

import numpy as np

from georecall.theory.checks import InputError
from georecall.constructions.base import Construction
from georecall.constructions.codebooks import Codebook
from georecall.constructions.layout import Layout
from georecall.constructions.selector import gated_selector, nearest_code_unembedding, relation_rows, subject_copy_attention
from georecall.theory.instance import Instance
from georecall.theory.spec import spec_from_weights
from georecall.theory.weights import Block, ModelMeta, TransformerWeights

NAME = "block_superposition"


def block_layout(R: int, d0: int) -> Layout:
    """Subspaces "subjects" (R*d0; block r is coordinates r*d0 .. r*d0 + d0 - 1), "relation", "output"."""
    layout = Layout()
    layout.add("subjects", R * d0)
    layout.add("relation", R)
    layout.add("output", d0)
    return layout


def block_subject_embeddings(instance: Instance, codebook: Codebook, out: np.ndarray | None = None) -> np.ndarray:
    """[N, d_model] rows e_s with u_{f_r(s)} in subject block r and zeros elsewhere (into ``out`` if given)."""
    R, d0 = instance.R, codebook.d0
    layout = block_layout(R, d0)
    rows = np.empty((instance.N, layout.d_model)) if out is None else out
    rows[:, R * d0 :] = 0.0
    facts_T = instance.facts.T
    step = 1 << 14  # subjects at a time: codes[facts.T[chunk]] is their [chunk, R, d0] blocks, still in cache when copied
    for first in range(0, instance.N, step):
        chunk = codebook.codes[facts_T[first : first + step]]
        rows[first : first + step, : R * d0] = chunk.reshape(len(chunk), R * d0)
    return rows


def build_block_superposition(instance: Instance, codebook: Codebook) -> Construction:
    """Exact single-hop recall with margin (1/2) min_{a != b} ||u_a - u_b||^2 (Theorem 1)."""
    N, R, d0 = instance.N, instance.R, codebook.d0
    if codebook.N != N:
        raise InputError(f"codebook has {codebook.N} codes but the instance has N = {N}")
    layout = block_layout(R, d0)
    D = layout.d_model
    subject, relation, output = layout["subjects"], layout["relation"], layout["output"]
    gate = codebook.max_abs_entry + 1.0

    identity = np.eye(d0)
    readouts = [np.zeros((R * d0, d0)) for _ in range(R)]
    for r in range(R):
        readouts[r][r * d0 : (r + 1) * d0] = identity
    mlp = gated_selector(D, readouts, subject, relation, output, gate)
    W_U, b_U = nearest_code_unembedding(D, codebook.codes, output)

    W_E = np.empty((N + R, D))  # filled in place: at N = 2^20 a stacked copy costs a second and 1.5 GB
    block_subject_embeddings(instance, codebook, out=W_E[:N])
    W_E[N:] = relation_rows(N, R, D, relation)
    meta = ModelMeta(
        N=N,
        R=R,
        n_layers=1,
        attn_scale=1.0,
        query_kinds=("single_hop",),
        extra={
            "construction": NAME,
            "codebook": codebook.name,
            "codebook_params": codebook.params,
            "gate_constant": gate,
            "layout": layout.to_json_dict(),
        },
    )
    weights = TransformerWeights(W_E, (Block(subject_copy_attention(D, subject), mlp),), W_U, b_U, meta)

    deterministic = codebook.name != "rademacher"
    spec = spec_from_weights(
        weights,
        name=f"{NAME}/{codebook.name}",
        subject_embedding_dim=R * d0,
        bits_per_coordinate=codebook.bits_per_coordinate,
        # 2^p-level codes: min squared distance is exactly 4, so the margin is 2 (Theorem 1).
        # Rademacher codes: margin >= 2 on the event that the codes are distinct (Theorem 2).
        guaranteed_margin=2.0,
        failure_probability=0.0 if deterministic else float(codebook.params["delta"]),
        fact_independent_shared=True,
        extra={"d0": d0, "gate_constant": gate, "codebook_params": codebook.params},
    )
    return Construction(weights, spec, instance, lambda inst: block_subject_embeddings(inst, codebook))
