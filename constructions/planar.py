"""Single hop with no output slot and a two-coordinate relation code (construction K1';
docs/theorems/single_hop.md, Theorem 1').

Residual layout (d_model = R*d0 + 2):
    subject[r]  d0 coords each, r in [R]   e_s puts u_{f_r(s)} in block r (as in K1)
    relation    2 coords                  relation r is an integer point v_r on the circle |v|^2 = n

    z   = e_s + v_{r*}                                           (subject-copying attention)
    select  h_{r,i,+-} = ReLU(+-z_{r,i} + B <v_r, z_rel> - B n)   fires only for r = r*
    cancel  g_{i,+-}   = ReLU(+-sum_r z_{r,i})                   always on
    block 0 gets  sum_r (h_{r,i,+} - h_{r,i,-}) - (g_{i,+} - g_{i,-})  =  u_{t,i} - sum_r u_{f_r(s),i}
    logit_a = <u_a, sum_r block_r> - ||u_a||^2 / 2 = <u_a, u_t> - ||u_a||^2 / 2

Distinct points of one circle satisfy <v_r, v_r> = n > <v_r, v_k> for k != r, and with integer
points the gap is at least 1, so B (n - <v_r, v_k>) >= B shuts every other relation's units exactly
while the asked relation's gate term is exactly 0. The MLP has 2 (R + 1) d0 units.
"""

from __future__ import annotations

import math

import numpy as np

from georecall.constructions.base import Construction
from georecall.constructions.block_superposition import block_subject_embeddings
from georecall.constructions.codebooks import Codebook
from georecall.constructions.layout import Layout
from georecall.constructions.selector import subject_copy_attention
from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.theory.spec import spec_from_weights
from georecall.theory.weights import Block, MLPWeights, ModelMeta, TransformerWeights

NAME = "block_superposition_planar"
# n = 1, 5, 5*13, ...: a product of m distinct primes 1 mod 4 has 4 * 2^m integer points on its circle
PRIMES_1_MOD_4 = (5, 13, 17, 29, 37, 41, 53, 61, 73, 89, 97)
GATE_TIMES_N_MAX = 2**40  # keeps every gate value an integer far below 2^53


def planar_layout(R: int, d0: int) -> Layout:
    layout = Layout()
    layout.add("subjects", R * d0)
    layout.add("relation", 2)
    return layout


def circle_points(n: int) -> np.ndarray:
    """Every integer point (x, y) with x^2 + y^2 = n, sorted by angle."""
    x = np.arange(-math.isqrt(n), math.isqrt(n) + 1, dtype=np.int64)
    rest = n - x * x
    y = np.array([math.isqrt(int(v)) for v in rest], dtype=np.int64)
    hit = y * y == rest
    points = np.concatenate([np.stack([x[hit], y[hit]], 1), np.stack([x[hit], -y[hit]], 1)])
    points = np.unique(points, axis=0)
    return points[np.argsort(np.arctan2(points[:, 1], points[:, 0]), kind="stable")]


def planar_relation_codes(R: int) -> tuple[np.ndarray, int]:
    """([R, 2] distinct integer points of one circle, its squared radius n), n as small as the list allows."""
    n = 1
    for prime in (1,) + PRIMES_1_MOD_4:
        n *= prime
        points = circle_points(n)
        if len(points) >= R:
            chosen = points[np.linspace(0, len(points), R, endpoint=False).astype(int)]  # spread around the circle
            return chosen.astype(np.float64), n
    raise InputError(f"R must be at most {4 * 2 ** len(PRIMES_1_MOD_4):,} for planar relation codes, got {R}")


def build_block_planar(instance: Instance, codebook: Codebook) -> Construction:
    """Exact single-hop recall, margin (1/2) min ||u_a - u_b||^2, at d_model = R d0 + 2 (Theorem 1')."""
    N, R, d0 = instance.N, instance.R, codebook.d0
    if codebook.N != N:
        raise InputError(f"codebook has {codebook.N} codes but the instance has N = {N}")
    layout = planar_layout(R, d0)
    D, subjects, relation = layout.d_model, layout["subjects"], layout["relation"]
    codes, n = planar_relation_codes(R)
    gate = codebook.max_abs_entry + 1.0
    if gate * n > GATE_TIMES_N_MAX:
        raise InputError(f"R = {R} with codes up to {codebook.max_abs_entry:g} needs gate values {gate * n:.3g} > 2^40; lower R or the precision")

    d_mlp = 2 * (R + 1) * d0
    W_in, W_out, b_in = np.zeros((D, d_mlp)), np.zeros((d_mlp, D)), np.zeros(d_mlp)
    write = subjects.start  # block 0 receives the MLP's output; W_U reads the sum of the blocks
    for r in range(R):
        for i in range(d0):
            for k, sign in enumerate((1.0, -1.0)):
                unit = (r * d0 + i) * 2 + k
                W_in[subjects.start + r * d0 + i, unit] = sign
                W_in[relation.slice, unit] = gate * codes[r]
                b_in[unit] = -gate * n
                W_out[unit, write + i] = sign
    for i in range(d0):
        for k, sign in enumerate((1.0, -1.0)):
            unit = 2 * R * d0 + 2 * i + k
            W_in[subjects.start + i : subjects.stop : d0, unit] = sign  # coordinate i of every block
            W_out[unit, write + i] = -sign
    mlp = MLPWeights(W_in=W_in, b_in=b_in, W_out=W_out, b_out=np.zeros(D))

    W_U = np.zeros((D, N))
    W_U[subjects.slice] = np.tile(codebook.codes.T, (R, 1))
    b_U = -0.5 * np.einsum("ij,ij->i", codebook.codes, codebook.codes)
    W_E = np.zeros((N + R, D))
    W_E[:N, subjects.slice] = block_subject_embeddings(instance, codebook)[:, : R * d0]
    W_E[N:, relation.slice] = codes
    meta = ModelMeta(
        N=N, R=R, n_layers=1, attn_scale=1.0, query_kinds=("single_hop",),
        extra={"construction": NAME, "codebook": codebook.name, "codebook_params": codebook.params, "gate_constant": gate,
               "relation_circle": n, "layout": layout.to_json_dict()},
    )
    weights = TransformerWeights(W_E, (Block(subject_copy_attention(D, subjects), mlp),), W_U, b_U, meta)
    spec = spec_from_weights(
        weights, name=f"{NAME}/{codebook.name}", subject_embedding_dim=R * d0, bits_per_coordinate=codebook.bits_per_coordinate,
        guaranteed_margin=2.0, failure_probability=0.0 if codebook.name != "rademacher" else float(codebook.params["delta"]),
        fact_independent_shared=True, extra={"d0": d0, "gate_constant": gate, "relation_circle": n},
    )

    def retarget(new: Instance) -> np.ndarray:
        rows = np.zeros((new.N, D))
        rows[:, subjects.slice] = block_subject_embeddings(new, codebook)[:, : R * d0]
        return rows

    return Construction(weights, spec, instance, retarget)
