"""Pieces shared by the single-hop constructions: subject-copying attention and the gated selector.

Both constructions use the prompt [s, r] and the same two pieces:

- Attention (one head, W_Q = W_K = 0): scores are all 0, so the last position averages
  positions 0 and 1 with weight 1/2 each. W_V doubles the subject subspace and W_O writes it
  back, so the last residual becomes z = e_r + (1/2)(2 e_s + 2 e_r|subj) = e_s + e_r (relation
  rows are zero on the subject subspace).
- MLP: for relation r, readout vector m_{r,i} (a column of the read-out map) and sign +-1, one unit
      h = ReLU(+-<m_{r,i}, z> + B z_{rel r} - B),
  and W_out sends +h to output coordinate i and -h to it with the opposite sign. If r is the
  asked relation (z_{rel r} = 1) the pair's difference is <m_{r,i}, z>; otherwise
  z_{rel r} = 0 and both units are off as long as |<m_{r,i}, z>| <= B.
"""

from __future__ import annotations

import numpy as np

from georecall.constructions.layout import Subspace
from georecall.theory.weights import AttentionWeights, MLPWeights


def subject_copy_attention(d_model: int, subject: Subspace) -> AttentionWeights:
    """One head with zero scores whose value path writes 2 * (subject part) at weight 1/2."""
    W_Q = np.zeros((1, d_model, subject.size))
    W_V = np.zeros((1, d_model, subject.size))
    W_V[0, subject.slice, :] = 2.0 * np.eye(subject.size)
    W_O = np.zeros((1, subject.size, d_model))
    W_O[0, :, subject.slice] = np.eye(subject.size)
    return AttentionWeights(W_Q=W_Q, W_K=W_Q.copy(), W_V=W_V, W_O=W_O)


def gated_selector(
    d_model: int,
    readouts: list[np.ndarray],
    read_from: Subspace,
    relation: Subspace,
    output: Subspace,
    gate: float,
) -> MLPWeights:
    """Width 2 * R * d0. ``readouts[r]`` is [read_from.size, d0]: unit (r, i, +-) reads column i.

    Unit index: (r * d0 + i) * 2 + (0 for +, 1 for -).
    """
    R, d0 = len(readouts), output.size
    d_mlp = 2 * R * d0
    W_in = np.zeros((d_model, d_mlp))
    W_out = np.zeros((d_mlp, d_model))
    for r, readout in enumerate(readouts):
        for i in range(d0):
            for k, sign in enumerate((1.0, -1.0)):
                unit = (r * d0 + i) * 2 + k
                W_in[read_from.slice, unit] = sign * readout[:, i]
                W_in[relation[r], unit] = gate
                W_out[unit, output[i]] = sign
    b_in = np.full(d_mlp, -float(gate))
    return MLPWeights(W_in=W_in, b_in=b_in, W_out=W_out, b_out=np.zeros(d_model))


def nearest_code_unembedding(d_model: int, codes: np.ndarray, output: Subspace) -> tuple[np.ndarray, np.ndarray]:
    """W_U = codes on the output block, b_U = -||u_a||^2 / 2: argmax = nearest code to the output."""
    W_U = np.zeros((d_model, codes.shape[0]))
    W_U[output.slice, :] = codes.T
    return W_U, -0.5 * np.einsum("ij,ij->i", codes, codes)


def relation_rows(N: int, R: int, d_model: int, relation: Subspace) -> np.ndarray:
    """W_E rows N..N+R-1: relation r is the indicator of coordinate relation[r]."""
    rows = np.zeros((R, d_model))
    rows[np.arange(R), relation.start + np.arange(R)] = 1.0
    return rows
