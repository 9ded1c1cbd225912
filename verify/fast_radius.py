"""The fast single-hop path's radii (docs/theorems/soundness.md, Lemma S7): norm bounds per row, O(1) per hidden unit.

``fast.bounded_single_hop_residuals`` computes the centers; these functions bound, in norm, how far
the exact residual and every conforming evaluation's can be from them, and say whether any
conforming evaluation could overflow on the way (Lemma S1's envelope on every column).
"""

from __future__ import annotations

import numpy as np

from georecall.theory.weights import TransformerWeights
from georecall.verify.error_model import (
    INFLATE,
    TINY,
    attention_output_depth,
    chain_underflow,
    gamma,
    head_magnitudes,
    in_range,
    magnitude,
    mlp_in_depth,
    mlp_out_depth,
    norm_up,
    row_magnitude,
    score_depth,
    softmax_radius,
    stage_radius,
)
from georecall.verify.reference import UnembeddingNorms


def _with_position(x: np.ndarray, position: np.ndarray):
    upper = np.abs(x) + np.abs(position)
    return x + position, stage_radius(upper, upper, 2)


def _value_twin(magnitudes: np.ndarray, attn, h: int) -> np.ndarray:
    """(|m| |W_V[h]|) |W_O[h]|, upper-rounded: the magnitude twin of (x W_V) W_O."""
    return (magnitudes @ np.abs(attn.W_V[h])) @ np.abs(attn.W_O[h]) * (1 + gamma(attn.W_V.shape[1] + attn.d_head + 2))


def attach_radius_terms(self, weights: TransformerWeights, x1: np.ndarray) -> None:
    """Set on ``self`` (a SingleHopSides) the magnitude twins, norms and Lemma S1 magnitudes its radii need (Lemma S7)."""
    d = weights.d_model
    attn, mlp = weights.blocks[0].attn, weights.blocks[0].mlp
    H = attn.n_heads
    upper1 = np.abs(x1) + self.r1
    self.q1_up = [upper1 @ np.abs(attn.W_Q[h]) for h in range(H)]
    self.q1_c = [np.abs(x1) @ np.abs(attn.W_Q[h]) for h in range(H)]
    self.k1_up = [upper1 @ np.abs(attn.W_K[h]) for h in range(H)]
    self.k1_c = [np.abs(x1) @ np.abs(attn.W_K[h]) for h in range(H)]
    self.out1_up = [norm_up(_value_twin(upper1, attn, h)) for h in range(H)]
    self.out1_pert = [norm_up(_value_twin(self.r1, attn, h)) for h in range(H)]
    self.x1_up_norm = norm_up(upper1)
    self.r1_norm = norm_up(self.r1)
    self.key_query_up = [np.abs(attn.W_K[h]) @ self.q1_up[h].T * (1 + gamma(d + attn.d_head + 2)) for h in range(H)]
    self.key_query_c = [np.abs(attn.W_K[h]) @ self.q1_c[h].T for h in range(H)]
    # ||(|x| |W_V|)|W_O| || <= ||x|| || |W_V||W_O| ||_F (Cauchy-Schwarz row by row)
    self.value_twin_norm = [float(norm_up((_value_twin(np.eye(d), attn, h)).reshape(1, -1))[0]) for h in range(H)]
    self.mlp_terms = MLPRadiusTerms(weights, self.columns, seq_len=2)
    # Lemma S1's factor magnitudes: relation rows, the score chain, the value chain into W_in or the residual
    self.mu1 = row_magnitude(upper1)
    self.max1 = np.max(upper1, axis=1)
    self.mu_QK, self.mu_VO, self.mu_VO_in = head_magnitudes(attn, mlp)


def pattern_radius(sides, x0, r0, h: int, s10, s11, top, a0, a1):
    """(radius of a0, radius of a1, safe) for head h: Lemma S1 on the score chain, Lemma S3."""
    weights = sides.weights
    attn, scale, d = weights.blocks[0].attn, weights.meta.attn_scale, weights.d_model
    upper0 = np.abs(x0) if r0 is None else np.abs(x0) + r0
    depth = score_depth(d, attn.d_head)
    mu0 = row_magnitude(upper0)
    G10 = max(1.0, abs(scale)) * sides.mu_QK[h] * np.outer(mu0, sides.mu1)
    G11 = max(1.0, abs(scale)) * sides.mu_QK[h] * sides.mu1 * sides.mu1
    width = max(d, attn.d_head)
    center10 = abs(scale) * (np.abs(x0) @ sides.key_query_c[h])
    upper10 = abs(scale) * (upper0 @ sides.key_query_up[h])
    r10 = stage_radius(upper10, center10, depth, chain_underflow(G10, 4, width))
    r11 = stage_radius(abs(scale) * np.einsum("re,re->r", sides.q1_up[h], sides.k1_up[h]),
                       abs(scale) * np.einsum("re,re->r", sides.q1_c[h], sides.k1_c[h]), depth, chain_underflow(G11, 4, width))
    scores = np.stack([s10 - top, np.broadcast_to(s11[None, :] - top, s10.shape)], axis=-1)
    radii = np.stack([r10, np.broadcast_to(r11[None, :], r10.shape)], axis=-1)
    pattern_radius = softmax_radius(np.stack([a0, a1], axis=-1), scores, radii, np.array([[True, True]]))
    return pattern_radius[..., 0], pattern_radius[..., 1], in_range(G10) & in_range(G11)[None, :]


def residual_radius(sides, x0, r0, weights0, weights1, pattern_radii, hidden_norm, out_norm):
    """(radius norm, upper norm, in range) of every residual row on the support columns (Lemma S7)."""
    weights = sides.weights
    attn = weights.blocks[0].attn
    S, R = x0.shape[0], weights.meta.R
    upper0 = np.abs(x0) if r0 is None else np.abs(x0) + r0
    x0_norm = norm_up(upper0)
    r0_norm = np.zeros(S) if r0 is None else norm_up(r0)
    mu_values = row_magnitude(upper0)[:, None] + sides.mu1[None, :]  # the value matrix [x_0; x_1] as an inner factor
    # ||U - C|| and ||U|| of the attention stage (Lemma S7), accumulated per head; G of its chains
    pert = np.broadcast_to(sides.r1_norm[None, :], (S, R)).copy()
    upper = np.broadcast_to(sides.x1_up_norm[None, :], (S, R)).copy()
    in_bounds = np.ones((S, R), dtype=bool)
    G_pre = sides.mu1[None, :] * sides.mlp_terms.mu_in + np.zeros((S, 1))
    G_z = np.zeros((S, R))
    for h, (a0, a1, (ra0, ra1, ok)) in enumerate(zip(weights0, weights1, pattern_radii)):
        in_bounds &= ok
        out0_up = x0_norm * sides.value_twin_norm[h]
        out0_pert = r0_norm * sides.value_twin_norm[h]
        pert += ra0 * out0_up[:, None] + ra1 * sides.out1_up[h][None, :] + a0 * out0_pert[:, None] + a1 * sides.out1_pert[h][None, :]
        upper += (a0 + ra0) * out0_up[:, None] + (a1 + ra1) * sides.out1_up[h][None, :]
        share = np.maximum(a0 + ra0 + a1 + ra1, 1.0) * mu_values
        G_pre += share * sides.mu_VO_in[h]
        G_z += share * sides.mu_VO[h]
    flat = (v.reshape(-1) for v in (pert, upper, G_pre, G_z, in_bounds, hidden_norm))
    return mlp_stage_radius(sides.mlp_terms, *flat, out_norm, summed_terms=6 * attn.n_heads)


class MLPRadiusTerms:
    """What Lemma S7's MLP rule needs of the weights, for one prompt length: the composite stage's
    depths, W_in's column norms folded through |W_out| on ``columns``, and the envelope magnitudes."""

    def __init__(self, weights: TransformerWeights, columns: np.ndarray, seq_len: int):
        attn, mlp, d = weights.blocks[0].attn, weights.blocks[0].mlp, weights.d_model
        self.d_model, self.d_mlp, self.width = d, mlp.d_mlp, max(2, d, attn.d_head, seq_len)
        # Lemma S7: the attention stage and the MLP input form one multilinear stage (depth of both)
        self.attn_depth = attention_output_depth(d, attn.n_heads, attn.d_head, seq_len)
        self.pre_depth = self.attn_depth + mlp_in_depth(d)
        W_in_norms = UnembeddingNorms(mlp.W_in, mlp.b_in)
        W_out_cols = mlp.W_out[:, columns]
        abs_W_out_cols = np.abs(W_out_cols)
        # rho_pre[q, c] = alpha_q n_c + beta_c + underflow_q, so rho_pre |W_out| costs three vectors
        self.n_abs_W_out = W_in_norms.column @ abs_W_out_cols * (1 + gamma(mlp.d_mlp + 2))
        beta = 8.0 * gamma(self.pre_depth) * W_in_norms.bias + TINY
        self.beta_abs_W_out = beta @ abs_W_out_cols * (1 + gamma(mlp.d_mlp + 2))
        self.beta_norm = float(norm_up(beta[None, :])[0])
        self.ones_abs_W_out = abs_W_out_cols.sum(axis=0) * (1 + gamma(mlp.d_mlp + 2))
        self.W_in_column_norm = float(norm_up(W_in_norms.column[None, :])[0])
        self.W_out_frobenius = float(norm_up(W_out_cols.reshape(1, -1))[0])
        self.b_out_norm = float(norm_up(mlp.b_out[columns][None, :])[0])
        self.columns = len(columns)
        self.mu_in = float(magnitude(mlp.W_in, "last"))
        self.mu_out = float(magnitude(mlp.W_out, "last"))  # every column: the envelope covers W_U's zero rows too
        self.b_in_max = float(np.max(np.abs(mlp.b_in), initial=0.0))
        self.b_out_max = float(np.max(np.abs(mlp.b_out), initial=0.0))


def mlp_stage_radius(terms: MLPRadiusTerms, pert, upper, G_pre, G_z, in_bounds, hidden_norm, out_norm, summed_terms: int):
    """(radius norm, upper norm, in range) of residual rows on ``terms``' columns (Lemma S7), from the
    attention stage's norms per row: ``pert`` >= ||U - C||, ``upper`` >= ||U|| (each a float sum of
    ``summed_terms`` non-negative products), G_pre and G_z its Lemma S1 magnitude products."""
    accumulated = 1.0 + 2.0 * gamma(summed_terms + 4)  # the roundings of the caller's sums
    pert, upper = pert * accumulated, upper * accumulated
    d, d_mlp = terms.d_model, terms.d_mlp
    underflow_z = chain_underflow(G_z, 3, terms.width) + TINY
    underflow_pre = chain_underflow(G_pre, 4, terms.width)
    in_bounds = in_bounds & in_range(G_pre + terms.b_in_max)
    z_radius = (pert * INFLATE + 8.0 * gamma(terms.attn_depth) * upper + underflow_z * np.sqrt(d)) * INFLATE
    z_upper = (upper * (1.0 + gamma(terms.attn_depth)) + z_radius) * INFLATE  # |z_hat| <= C (1 + gamma_m) <= U (1 + gamma_m)
    alpha = (pert * INFLATE + 8.0 * gamma(terms.pre_depth) * upper) * INFLATE  # rho_pre = alpha n_c + beta_c + underflow
    pre_term = norm_up(alpha[:, None] * terms.n_abs_W_out[None, :] + terms.beta_abs_W_out[None, :]
                       + underflow_pre[:, None] * terms.ones_abs_W_out[None, :])
    # the output chain h W_out: ||h + rho_pre||_1 <= sqrt(d_mlp) (||h|| + ||rho_pre||)
    pre_norm = (alpha * terms.W_in_column_norm + terms.beta_norm + underflow_pre * np.sqrt(d_mlp)) * INFLATE
    G_out = np.maximum((hidden_norm + pre_norm) * np.sqrt(d_mlp) * INFLATE, 1.0) * terms.mu_out
    in_bounds &= in_range(z_upper + G_out + terms.b_out_max)
    out_upper = (z_upper + hidden_norm * terms.W_out_frobenius + pre_term + terms.b_out_norm) * INFLATE
    underflow_out = (chain_underflow(G_out, 1, d_mlp) + TINY) * np.sqrt(terms.columns)
    radius = ((z_radius + pre_term) * INFLATE + 8.0 * gamma(mlp_out_depth(d_mlp)) * out_upper + underflow_out) * INFLATE
    return radius, (out_norm + radius) * INFLATE, in_bounds
