"""Multi-hop constructions with one code block per chain (constructions K3 and K5, with partial CoT).

docs/theorems/multi_hop.md, Theorems 4 and 5. One builder serves three prompt formats:

- no CoT, chains of length exactly k ("exact") or 1..k ("up_to"): prompt [s, r_1, ..., r_k];
- CoT with K max hops and h hops per emitted step (h = 1 is full CoT, h > 1 partial CoT):
  prompt [s, r_1, ..., r_k, PAD x (K - k), SEP, e_1, ..., e_{t-1}]; relation r_j always sits at
  position j, whatever k, so routing never depends on where the separator is.

Residual layout: pos (n_ctx one-hot) | entity (one d0 block per chain c, holding u_{f_c(x)}) |
relation (R) | slot[1..h] (R each) | output (d0).
Attention (hard routing, constructions.routing): an entity head brings the current entity's
embedding to the last position; hop head j copies the relation at the position of hop j of this
step into slot j (an unused hop routes to a token with no relation: its slot stays empty).
MLP: for chain c of length l, coordinate i, sign +-:
    ReLU(+-z_{c,i} + B (sum_{j<=l} z_{slot j, c_j} - sum_{j>l} sum_r z_{slot j, r}) - l B)
opens exactly when slots 1..l hold c and slots l+1..h are empty.
"""

from __future__ import annotations

import math

import numpy as np

from georecall.constructions.base import Construction
from georecall.constructions.codebooks import Codebook
from georecall.constructions.layout import Layout
from georecall.constructions.routing import SCORE_GAP, Route, attention_leak_bound, routing_attention
from georecall.constructions.selector import nearest_code_unembedding, relation_rows
from georecall.theory.checks import InputError, require_int
from georecall.theory.instance import Instance
from georecall.theory.queries import chain_tuples
from georecall.theory.spec import spec_from_weights
from georecall.theory.weights import Block, MLPWeights, ModelMeta, TransformerWeights


READOUTS = ("sum", "slot")


def chain_layout(n_ctx: int, n_chains: int, R: int, slots: int, d0: int, readout: str = "sum") -> Layout:
    """``readout`` "sum": W_U reads the sum of the entity blocks, which the MLP makes the answer's
    code (no output slot; Theorem 4's remark); "slot": a separate d0-coordinate output block."""
    if readout not in READOUTS:
        raise InputError(f"readout must be one of {list(READOUTS)}, got {readout!r}")
    layout = Layout()
    layout.add("pos", n_ctx)
    layout.add("entity", n_chains * d0)
    layout.add("relation", R)
    for j in range(slots):
        layout.add(f"slot[{j + 1}]", R)
    if readout == "slot":
        layout.add("output", d0)
    return layout


def chain_dimensions(R: int, d0: int, hops: int, cot: bool, cot_steps: int | None = None, readout: str = "sum") -> dict:
    """d_model and d_mlp of the chain constructions without building them (used by the tradeoff)."""
    if not cot:
        chains, slots, n_ctx = R**hops, hops, hops + 1
    else:
        h = math.ceil(hops / (cot_steps or hops))
        steps = math.ceil(hops / h)
        chains, slots, n_ctx = sum(R**j for j in range(1, h + 1)), h, hops + 1 + steps
    layout = chain_layout(n_ctx, chains, R, slots, d0, readout)
    d_mlp = 2 * chains * d0 + (2 * d0 if readout == "sum" else 0)
    return {"d_model": layout.d_model, "d_mlp": d_mlp, "subject_embedding_dim": chains * d0, "n_ctx": n_ctx}


BUILD_MEMORY_LIMIT_BYTES = 8 * 2**30  # a third of this machine: refuse before allocating, never thrash


def refuse_out_of_reach(N: int, R: int, dims: dict, option: str) -> None:
    """InputError naming ``option`` when the dense arrays of a chain construction would not fit."""
    D, d_mlp = dims["d_model"], dims["d_mlp"]
    estimate = 8 * (D * (N + R + 2 + dims["n_ctx"]) + 2 * D * d_mlp + D * N)
    if estimate > BUILD_MEMORY_LIMIT_BYTES:
        raise InputError(f"{option}: d_model = {D:,} and d_mlp = {d_mlp:,} would need about {estimate / 2**30:,.3g} GiB "
                         f"(limit {BUILD_MEMORY_LIMIT_BYTES / 2**30:.0f} GiB); lower {option.split('=')[0]} or R")


def chain_subject_embeddings(instance: Instance, codebook: Codebook, chains: list, layout: Layout) -> np.ndarray:
    """[N, d_model]: entity x holds u_{f_c(x)} in the block of chain c."""
    rows = np.zeros((instance.N, layout.d_model))
    entity, d0 = layout["entity"], codebook.d0
    everyone = np.arange(instance.N)
    for b, chain in enumerate(chains):
        rows[:, entity.start + b * d0 : entity.start + (b + 1) * d0] = codebook.codes[instance.chain_answer(everyone, chain)]
    return rows


def chain_selector(layout: Layout, chains: list, slots: int, R: int, d0: int, gate: float) -> MLPWeights:
    """Select units write the asked chain's block to the output slot, or (no slot: the "sum"
    readout) to entity block 0, where 2 d0 cancel units also subtract the sum of every block."""
    D, entity = layout.d_model, layout["entity"]
    in_place = "output" not in layout
    output = range(entity.start, entity.start + d0) if in_place else layout["output"]
    d_mlp = 2 * len(chains) * d0 + (2 * d0 if in_place else 0)
    W_in, W_out, b_in = np.zeros((D, d_mlp)), np.zeros((d_mlp, D)), np.zeros(d_mlp)
    for b, chain in enumerate(chains):
        for i in range(d0):
            for k, sign in enumerate((1.0, -1.0)):
                unit = (b * d0 + i) * 2 + k
                W_in[entity.start + b * d0 + i, unit] = sign
                for j in range(slots):
                    slot = layout[f"slot[{j + 1}]"]
                    if j < len(chain):
                        W_in[slot[chain[j]], unit] = gate
                    else:
                        W_in[slot.slice, unit] = -gate
                b_in[unit] = -len(chain) * gate
                W_out[unit, output[i]] = sign
    if in_place:
        for i in range(d0):
            for k, sign in enumerate((1.0, -1.0)):
                unit = 2 * len(chains) * d0 + 2 * i + k
                W_in[entity.start + i : entity.stop : d0, unit] = sign  # coordinate i of every chain block
                W_out[unit, output[i]] = -sign
    return MLPWeights(W_in=W_in, b_in=b_in, W_out=W_out, b_out=np.zeros(D))


def _build(instance, codebook, chains, slots, n_ctx, entity_route, hop_routes, meta_fields, name, cot, hops, special, score_gap=SCORE_GAP,
           readout="sum"):
    N, R, d0 = instance.N, instance.R, codebook.d0
    if codebook.N != N:
        raise InputError(f"codebook has {codebook.N} codes but the instance has N = {N}")
    layout = chain_layout(n_ctx, len(chains), R, slots, d0, readout)
    D, pos = layout.d_model, layout["pos"]
    gate = codebook.max_abs_entry + 1.0
    routes = [Route(entity_route, layout["entity"], layout["entity"])]
    routes += [Route(hop_routes[j], layout["relation"], layout[f"slot[{j + 1}]"]) for j in range(slots)]
    attention = routing_attention(D, pos, routes, score_gap)
    mlp = chain_selector(layout, chains, slots, R, d0, gate)
    if readout == "slot":
        W_U, b_U = nearest_code_unembedding(D, codebook.codes, layout["output"])
    else:  # W_U reads the sum of the chain blocks
        W_U, b_U = np.zeros((D, N)), -0.5 * np.einsum("ij,ij->i", codebook.codes, codebook.codes)
        W_U[layout["entity"].slice] = np.tile(codebook.codes.T, (len(chains), 1))

    special_rows = np.zeros((len(special), D))  # SEP and PAD carry nothing but their position
    W_E = np.vstack([chain_subject_embeddings(instance, codebook, chains, layout), relation_rows(N, R, D, layout["relation"]), special_rows])
    W_pos = np.eye(n_ctx, D)
    meta = ModelMeta(
        N=N, R=R, n_layers=1, attn_scale=1.0, special_tokens=special,
        query_kinds=("cot",) if cot else ("multi_hop",),
        extra={"construction": name, "codebook": codebook.name, "codebook_params": codebook.params, "gate_constant": gate,
               "score_gap": score_gap, "readout": readout, "layout": layout.to_json_dict(), **meta_fields},
    )
    weights = TransformerWeights(W_E, (Block(attention, mlp),), W_U, b_U, meta, W_pos=W_pos)
    leak = attention_leak_bound(n_ctx, codebook.max_abs_entry, score_gap)
    # Theorem 4: if eps = (1 + B h R) leak < 1, margin >= 2 - 4 sqrt(d0) eps; else it promises nothing (margin 0)
    epsilon = (1.0 + gate * slots * R) * leak
    eta = min(2.0, 4.0 * math.sqrt(d0) * epsilon) if epsilon < 1 else 2.0  # a margin of 0 promises nothing
    spec = spec_from_weights(
        weights, name=f"{name}/{codebook.name}", subject_embedding_dim=len(chains) * d0,
        bits_per_coordinate=codebook.bits_per_coordinate, guaranteed_margin=2.0 - eta,
        failure_probability=0.0 if codebook.name != "rademacher" else float(codebook.params["delta"]),
        fact_independent_shared=True, hops=hops, cot=cot,
        extra={"d0": d0, "margin_slack": eta, "n_chain_blocks": len(chains), **meta_fields},
    )
    return Construction(weights, spec, instance, lambda inst: chain_subject_embeddings(inst, codebook, chains, layout))


def build_multi_hop_chains(instance: Instance, codebook: Codebook, hops: int, chains: str = "exact", score_gap: float = SCORE_GAP,
                           readout: str = "sum") -> Construction:
    """No CoT (construction K3): every chain of length ``hops`` (or 1..hops) has its own code block."""
    hops = require_int("hops", hops, minimum=1)
    if chains not in ("exact", "up_to"):
        raise InputError(f"chains must be 'exact' or 'up_to', got {chains!r}")
    R = instance.R
    refuse_out_of_reach(instance.N, R, chain_dimensions(R, codebook.d0, hops, False, readout=readout), f"--hops={hops} with R={R}")
    chain_set = chain_tuples(R, hops, chains)
    lengths = [hops] if chains == "exact" else range(1, hops + 1)
    # the last position is l for an l-hop prompt; hop j > l routes to the subject (no relation there)
    entity_route = {length: 0 for length in lengths}
    hop_routes = [{length: (j if j <= length else 0) for length in lengths} for j in range(1, hops + 1)]
    return _build(instance, codebook, chain_set, hops, hops + 1, entity_route, hop_routes,
                  {"hops": hops, "chains": chains}, "multi_hop_chains", False, hops, {}, score_gap, readout)


def build_chain_of_thought(instance: Instance, codebook: Codebook, max_hops: int, hops_per_step: int = 1,
                           score_gap: float = SCORE_GAP, readout: str = "sum") -> Construction:
    """CoT (construction K5) for every depth k <= max_hops; hops_per_step > 1 is partial CoT.

    Step t of a k-hop prompt applies relations (t-1)h+1 .. min(th, k) to the current entity.
    """
    K = require_int("max_hops", max_hops, minimum=1)
    h = require_int("hops_per_step", hops_per_step, minimum=1, maximum=K)
    N, R = instance.N, instance.R
    refuse_out_of_reach(N, R, chain_dimensions(R, codebook.d0, K, True, math.ceil(K / h), readout), f"--hops={K} (hops per step {h}) with R={R}")
    steps = math.ceil(K / h)
    sep_position = K + 1
    # step t's last position is K + t: the separator at t = 1, the token emitted at step t - 1 after
    entity_route = {K + t: (0 if t == 1 else sep_position) for t in range(1, steps + 1)}
    hop_routes = [
        {K + t: ((t - 1) * h + j if (t - 1) * h + j <= K else sep_position) for t in range(1, steps + 1)}
        for j in range(1, h + 1)
    ]
    special = {"SEP": N + R, "PAD": N + R + 1}
    name = "chain_of_thought" if h == 1 else "partial_chain_of_thought"
    return _build(instance, codebook, chain_tuples(R, h, "up_to"), h, K + 1 + steps, entity_route, hop_routes,
                  {"max_hops": K, "hops_per_step": h, "max_steps": steps}, name, True, K, special, score_gap, readout)
