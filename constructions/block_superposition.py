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
from georecall.constructions.base import Construction, StreamedConstruction
from georecall.constructions.codebooks import Codebook, MultilevelDigits, multilevel_codes_digit, multilevel_d0, multilevel_description, multilevel_levels
from georecall.constructions.layout import Layout
from georecall.constructions.selector import gated_selector, nearest_code_unembedding, relation_rows, subject_copy_attention
from georecall.theory.instance import Instance
from georecall.theory.arrays import RowBlocks, narrowest_float
from georecall.theory.spec import spec_from_sizes, spec_from_weights
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
    gate = codebook.max_abs_entry + 1.0
    layout, attention, mlp, relations = _shared_parts(R, d0, gate)
    D = layout.d_model
    W_U, b_U = nearest_code_unembedding(D, codebook.codes, layout["output"])

    W_E = np.empty((N + R, D))  # filled in place: at N = 2^20 a stacked copy costs a second and 1.5 GB
    block_subject_embeddings(instance, codebook, out=W_E[:N])
    W_E[N:] = relations
    meta = _meta(N, R, codebook.name, codebook.params, gate, layout)
    weights = TransformerWeights(W_E, (Block(attention, mlp),), W_U, b_U, meta)
    deterministic = codebook.name != "rademacher"
    spec = spec_from_weights(weights, **_spec_fields(codebook.name, d0, codebook.bits_per_coordinate, codebook.params, R, gate,
                                                     0.0 if deterministic else float(codebook.params["delta"])))
    return Construction(weights, spec, instance, lambda inst: block_subject_embeddings(inst, codebook))


STREAM_ROWS = 1 << 14  # subjects per block of W_E written by the streamed builder: a few MB, in cache while copied


def stream_block_superposition(instance: Instance, precision: int = 1) -> StreamedConstruction:
    """build_block_superposition with the binary (p = 1) or 2^p-level codebook, as arrays written a block
    at a time (RowBlocks): the same file bytes, without a float64 W_E or W_U (at N = 2^24, R = 8 they
    would be 30 GB each), and without the codes: they are made from the facts a block at a time. Holds
    the facts and b_U."""
    N, R = instance.N, instance.R
    d0 = multilevel_d0(N, precision)
    book = multilevel_description(precision)  # the codebook's name and largest entry; its codes are made below, a block at a time
    gate = book["max_abs_entry"] + 1.0
    layout, attention, mlp, relations = _shared_parts(R, d0, gate)
    D, output = layout.d_model, layout["output"]
    dtype = narrowest_float(np.append(multilevel_levels(N, precision), (0.0, 1.0))).dtype  # every entry W_E and W_U hold
    digits = MultilevelDigits(N, precision, dtype)
    b_U = np.concatenate([-0.5 * digits.squared_norms(np.arange(first, min(first + STREAM_ROWS, N))) for first in range(0, N, STREAM_ROWS)])
    facts_T = instance.facts.T

    def embedding_rows():
        block = np.zeros((min(STREAM_ROWS, N), D), dtype=dtype)  # one buffer: the writer takes each block before the next; the rest stays 0
        for first in range(0, N, STREAM_ROWS):
            chunk = np.ascontiguousarray(facts_T[first : first + STREAM_ROWS])  # the digits of 8 strided rows: 2x slower in place
            rows = block[: len(chunk)]
            digits.codes(chunk, rows[:, : R * d0].reshape(len(chunk), R, d0))
            yield rows
        yield relations.astype(dtype)

    def unembedding_rows():
        zero = np.zeros((1, N), dtype=dtype)
        for row in range(D):
            if output.start <= row < output.stop:  # code coordinate i of every attribute: digit i's level
                i = row - output.start
                yield multilevel_codes_digit(N, precision, i, dtype)[None]
            else:
                yield zero

    meta = _meta(N, R, book["name"], book["params"], gate, layout)
    arrays = {"W_E": RowBlocks((N + R, D), dtype, embedding_rows)}
    arrays.update({f"blocks.0.attn.{name}": getattr(attention, name) for name in ("W_Q", "W_K", "W_V", "W_O")})
    arrays.update({f"blocks.0.mlp.{name}": getattr(mlp, name) for name in ("W_in", "b_in", "W_out", "b_out")})
    arrays.update({"W_U": RowBlocks((D, N), dtype, unembedding_rows), "b_U": b_U})
    small = [relations] + [array for name, array in arrays.items() if name.startswith("blocks.")]
    # Every code entry is an odd level, never 0: W_U holds N * d0 non-zeros and b_U = -||u_a||^2 / 2 < 0 holds N.
    counts = {"subject_params": N * D, "shared_params": sum(a.size for a in small) + D * N + N,
              "shared_params_nonzero": sum(int(np.count_nonzero(a)) for a in small) + N * d0 + N}
    spec = spec_from_sizes(meta, D, [(attention.n_heads, attention.d_head, mlp.d_mlp)], **counts,
                          **_spec_fields(book["name"], d0, book["bits_per_coordinate"], book["params"], R, gate, 0.0))
    return StreamedConstruction(arrays, meta, spec, instance)


def _shared_parts(R: int, d0: int, gate: float):
    """(layout, attention, MLP, the R relation rows of W_E): every array that does not grow with N."""
    layout = block_layout(R, d0)
    D = layout.d_model
    subject, relation, output = layout["subjects"], layout["relation"], layout["output"]
    identity = np.eye(d0)
    readouts = [np.zeros((R * d0, d0)) for _ in range(R)]
    for r in range(R):
        readouts[r][r * d0 : (r + 1) * d0] = identity
    mlp = gated_selector(D, readouts, subject, relation, output, gate)
    return layout, subject_copy_attention(D, subject), mlp, relation_rows(0, R, D, relation)


def _meta(N: int, R: int, codebook: str, params: dict, gate: float, layout: Layout) -> ModelMeta:
    return ModelMeta(N=N, R=R, n_layers=1, attn_scale=1.0, query_kinds=("single_hop",),
                     extra={"construction": NAME, "codebook": codebook, "codebook_params": params, "gate_constant": gate,
                            "layout": layout.to_json_dict()})


def _spec_fields(codebook: str, d0: int, bits_per_coordinate: float, params: dict, R: int, gate: float, failure_probability: float) -> dict:
    return dict(
        name=f"{NAME}/{codebook}",
        subject_embedding_dim=R * d0,
        bits_per_coordinate=bits_per_coordinate,
        # 2^p-level codes: min squared distance is exactly 4, so the margin is 2 (Theorem 1).
        # Rademacher codes: margin >= 2 on the event that the codes are distinct (Theorem 2).
        guaranteed_margin=2.0,
        failure_probability=failure_probability,
        fact_independent_shared=True,
        extra={"d0": d0, "gate_constant": gate, "codebook_params": params},
    )
