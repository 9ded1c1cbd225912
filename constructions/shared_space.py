"""Single hop, shared-space superposition (construction K2; docs/theorems/single_hop.md, Theorem 3).

Residual layout (d_model = d + R + d0): "shared" (d), "relation" (R), "output" (d0).

    M_r in R^{d x d0}, entries i.i.d. N(0, 1/d), drawn from ``seed`` (fact-independent)
    e_s = sum_r M_r u_{f_r(s)}                     (codes u_a in {-1, +1}^{d0})
    h_{r,i,+-} = ReLU(+-<M_r[:, i], z> + B z_{rel r} - B)
    y_out = M_{r*}^T e_s = u_t + crosstalk
    B = 1 + max_{r,i} sum_{r',j} |<M_r[:, i], M_{r'}[:, j]>|   (>= any |<M_r[:, i], e_s>|)

Theorem 3: with h_min the least Hamming distance between two codes,
t = ln(4 N (N-1) R / delta) and eps(d) = 2 sqrt(t/d) + 2t/d, if eps(d) < sqrt(h_min / (R d0))
then with probability >= 1 - delta over M every query is answered with margin
>= 2 h_min - 2 sqrt(h_min R d0) eps(d) > 0.
"""

from __future__ import annotations

import mpmath
import numpy as np

from georecall.constructions.base import Construction
from georecall.constructions.codebooks import Codebook
from georecall.constructions.layout import Layout
from georecall.constructions.selector import gated_selector, nearest_code_unembedding, relation_rows, subject_copy_attention
from georecall.theory.checks import InputError, require_int, require_probability
from georecall.theory.instance import Instance
from georecall.theory.search import bisect_boundary
from georecall.theory.spec import spec_from_weights
from georecall.theory.weights import Block, ModelMeta, TransformerWeights

NAME = "shared_space"
DIGITS = 50  # every mpmath computation here runs under mpmath.workdps(DIGITS)


def union_bound_t(N: int, R: int, delta: float, uniform: bool = False) -> mpmath.mpf:
    """t = ln(4 N (N-1) R / delta): 4 chi-square tail events per (subject, relation, competitor),
    for one instance fixed independently of the maps (Theorem 3). ``uniform``: every instance at
    once (Theorem 3'), a union over every answer tuple in [N]^R instead of the N subjects:
    t = ln(4 N^R (N-1) R / delta), so d grows to O(R^2 log N)."""
    with mpmath.workdps(DIGITS):
        subjects = mpmath.mpf(N) ** R if uniform else mpmath.mpf(N)
        return mpmath.log(4 * subjects * (N - 1) * R / mpmath.mpf(delta))


def chi_square_deviation(d: int, t) -> mpmath.mpf:
    """eps(d, t) = 2 sqrt(t/d) + 2 t/d: P(|chi2_d / d - 1| >= eps) <= 2 e^{-t} (Laurent-Massart)."""
    with mpmath.workdps(DIGITS):
        t = mpmath.mpf(t)
        return 2 * mpmath.sqrt(t / d) + 2 * t / d


def shared_space_margin_bound(N: int, R: int, d0: int, h_min: int, d: int, delta: float) -> float:
    """Theorem 3's margin 2 h_min - 2 sqrt(h_min R d0) eps(d); <= 0 means no guarantee at this d."""
    with mpmath.workdps(DIGITS):
        eps = chi_square_deviation(d, union_bound_t(N, R, delta))
        return float(2 * h_min - 2 * mpmath.sqrt(h_min * R * d0) * eps)


def shared_space_sufficient_d(N: int, R: int, d0: int, h_min: int, delta: float, uniform: bool = False) -> int:
    """Least d with eps(d) < sqrt(h_min / (R d0)) (Theorem 3's hypothesis; ``uniform``: Theorem 3')."""
    N = require_int("N", N, minimum=2)
    R = require_int("R", R, minimum=1)
    d0 = require_int("d0", d0, minimum=1)
    h_min = require_int("h_min", h_min, minimum=1, maximum=d0)
    delta = require_probability("delta", delta)
    with mpmath.workdps(DIGITS):
        t = union_bound_t(N, R, delta, uniform)
        q = mpmath.sqrt(mpmath.mpf(h_min) / (R * d0))
        # eps = 2s + 2s^2 with s = sqrt(t/d) is increasing in s, so solve 2s^2 + 2s = q for s.
        s_star = (-1 + mpmath.sqrt(1 + 2 * q)) / 2
        d = int(mpmath.floor(t / s_star**2)) + 1
        while d > 1 and chi_square_deviation(d - 1, t) < q:
            d -= 1
        while chi_square_deviation(d, t) >= q:
            d += 1
        return d


def shared_space_layout(d: int, R: int, d0: int) -> Layout:
    layout = Layout()
    layout.add("shared", d)
    layout.add("relation", R)
    layout.add("output", d0)
    return layout


def random_maps(R: int, d: int, d0: int, seed: int) -> np.ndarray:
    """[R, d, d0] with i.i.d. N(0, 1/d) entries: E[M_r^T M_r] = I."""
    return np.random.default_rng(seed).standard_normal((R, d, d0)) / np.sqrt(d)


def gate_constant(maps: np.ndarray, max_abs_entry: float) -> float:
    """1 + max_abs_entry * max_{r,i} sum_{r',j} |<M_r[:, i], M_{r'}[:, j]>|: closes every off gate."""
    R, d, d0 = maps.shape
    stacked = maps.transpose(1, 0, 2).reshape(d, R * d0)
    return 1.0 + max_abs_entry * float(np.abs(stacked.T @ stacked).sum(axis=1).max())


def shared_subject_embeddings(instance: Instance, codebook: Codebook, maps: np.ndarray) -> np.ndarray:
    """[N, d_model] rows with sum_r M_r u_{f_r(s)} in the shared subspace."""
    R, d, d0 = maps.shape
    layout = shared_space_layout(d, R, d0)
    rows = np.zeros((instance.N, layout.d_model))
    rows[:, :d] = np.einsum("rkj,rsj->sk", maps, codebook.codes[instance.facts], optimize=True)
    return rows


def code_min_hamming(codebook: Codebook) -> int:
    """Least Hamming distance between two +-1 codes (closed form 1 for binary codes)."""
    if codebook.name == "binary":
        return 1
    return int(round(codebook.min_squared_distance() / 4.0))


def build_shared_space(instance: Instance, codebook: Codebook, d: int, seed: int = 0, delta: float = 0.01) -> Construction:
    """Shared-space superposition in a d-dimensional subject space; ``delta`` sets the guarantee."""
    N, R, d0 = instance.N, instance.R, codebook.d0
    d = require_int("d", d, minimum=1)
    delta = require_probability("delta", delta)
    if codebook.N != N:
        raise InputError(f"codebook has {codebook.N} codes but the instance has N = {N}")
    if codebook.name not in ("binary", "rademacher"):
        raise InputError(f"shared_space needs a +-1 codebook (binary or rademacher), got {codebook.name!r}")
    maps = random_maps(R, d, d0, seed)
    layout = shared_space_layout(d, R, d0)
    D = layout.d_model
    shared, relation, output = layout["shared"], layout["relation"], layout["output"]
    gate = gate_constant(maps, codebook.max_abs_entry)

    mlp = gated_selector(D, list(maps), shared, relation, output, gate)
    W_U, b_U = nearest_code_unembedding(D, codebook.codes, output)
    W_E = np.vstack([shared_subject_embeddings(instance, codebook, maps), relation_rows(N, R, D, relation)])
    h_min = code_min_hamming(codebook)
    sufficient_d = shared_space_sufficient_d(N, R, d0, h_min, delta)
    margin = shared_space_margin_bound(N, R, d0, h_min, d, delta)
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
            "maps_seed": seed,
            "gate_constant": gate,
            "layout": layout.to_json_dict(),
        },
    )
    weights = TransformerWeights(W_E, (Block(subject_copy_attention(D, shared), mlp),), W_U, b_U, meta)
    guaranteed = d >= sufficient_d
    spec = spec_from_weights(
        weights,
        name=f"{NAME}/{codebook.name}",
        subject_embedding_dim=d,
        # A shared coordinate is a function of the R-tuple of attributes: at most N^R values.
        bits_per_coordinate=float(min(64.0, R * np.log2(N))),
        guaranteed_margin=margin if guaranteed else 0.0,
        failure_probability=delta if guaranteed else 1.0,
        fact_independent_shared=True,
        extra={"d": d, "d0": d0, "h_min": h_min, "proven_sufficient_d": sufficient_d, "delta": delta, "maps_seed": seed},
    )
    return Construction(weights, spec, instance, lambda inst: shared_subject_embeddings(inst, codebook, maps))


def empirical_threshold_d(
    instance: Instance,
    codebook: Codebook,
    seeds: tuple[int, ...] = (0, 1, 2),
    d_low: int = 1,
    d_high: int | None = None,
) -> dict:
    """Least d at which the maps from every seed in ``seeds`` give exact recall, by bisection.

    Bisection assumes "all seeds exact" is monotone in d; the result records the d just
    below that was seen failing, so the claim "d - 1 fails" is a measurement, not an assumption.
    """
    d_high = d_high or shared_space_sufficient_d(instance.N, instance.R, codebook.d0, code_min_hamming(codebook), 0.01)

    def all_exact(d: int) -> bool:
        return all(build_shared_space(instance, codebook, d, seed).verify().exact_recall for seed in seeds)

    if not all_exact(d_high):
        raise InputError(f"d_high = {d_high} is not exact for every seed; raise d_high")
    high, low = bisect_boundary(all_exact, d_low - 1, d_high)
    return {"threshold_d": high, "failing_d_below": low if low >= d_low else None, "seeds": list(seeds)}


def shared_space_dimensions(N: int, R: int, codebook: Codebook, delta: float) -> dict:
    """Theorem 3's sizes without building: d, d_model = d + R + d0, d_mlp = 2 R d0."""
    d = shared_space_sufficient_d(N, R, codebook.d0, code_min_hamming(codebook), delta)
    return {"d": d, "d_model": d + R + codebook.d0, "d_mlp": 2 * R * codebook.d0, "d0": codebook.d0}
