"""The numpy float64 reference forward pass: the single source of truth (docs/FORMAT.md §3).

For a token sequence t_0..t_{T-1} (every sequence in a batch has the same length T):

    x_i     = W_E[t_i] + W_pos[i]                         (W_pos omitted when absent)
    for each layer l:
        q, k, v = x W_Q[h], x W_K[h], x W_V[h]            per head h
        A_h     = softmax_j( attn_scale * q_i . k_j ),    causal: j <= i
        x       = x + sum_h (A_h v_h) W_O[h]
        x       = x + ReLU(x W_in + b_in) W_out + b_out
    logits  = x_{T-1} W_U + b_U

Only the last position's logits are returned. In the last layer nothing after the attention
mixes positions, so only the last position is computed there: an exact shortcut, not an
approximation.
"""

from __future__ import annotations

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.weights import AttentionWeights, MLPWeights, TransformerWeights


def embed(weights: TransformerWeights, tokens: np.ndarray) -> np.ndarray:
    """Residual stream before the first block: [batch, T, d_model]."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise InputError(f"tokens must be a 2-D [batch, seq_len] array, got shape {tokens.shape}")
    vocab = weights.W_E.shape[0]
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab):
        raise InputError(f"tokens must lie in [0, {vocab}), got values in [{tokens.min()}, {tokens.max()}]")
    x = weights.W_E[tokens]
    if weights.W_pos is not None:
        T = tokens.shape[1]
        if T > weights.W_pos.shape[0]:
            raise InputError(f"sequence length {T} exceeds n_ctx = {weights.W_pos.shape[0]} of W_pos")
        x = x + weights.W_pos[:T]
    return x


def attention(attn: AttentionWeights, x: np.ndarray, scale: float, last_only: bool) -> np.ndarray:
    """Causal multi-head attention output, [batch, T', d_model] with T' = 1 if last_only else T."""
    T = x.shape[1]
    x_query = x[:, -1:, :] if last_only else x
    q = np.einsum("btd,hde->bhte", x_query, attn.W_Q, optimize=True)
    k = np.einsum("btd,hde->bhte", x, attn.W_K, optimize=True)
    v = np.einsum("btd,hde->bhte", x, attn.W_V, optimize=True)
    scores = scale * np.einsum("bhqe,bhke->bhqk", q, k, optimize=True)
    query_positions = np.arange(T - x_query.shape[1], T)
    allowed = np.arange(T)[None, :] <= query_positions[:, None]
    scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    pattern = np.exp(scores)
    pattern /= pattern.sum(axis=-1, keepdims=True)
    mixed = np.einsum("bhqk,bhke->bhqe", pattern, v, optimize=True)
    return np.einsum("bhqe,hed->bqd", mixed, attn.W_O, optimize=True)


def mlp(weights: MLPWeights, x: np.ndarray) -> np.ndarray:
    """ReLU(x W_in + b_in) W_out + b_out."""
    hidden = np.maximum(x @ weights.W_in + weights.b_in, 0.0)
    return hidden @ weights.W_out + weights.b_out


def final_residual(weights: TransformerWeights, tokens: np.ndarray) -> np.ndarray:
    """The residual stream at the last position after every block: [batch, d_model]."""
    x = embed(weights, tokens)
    last = weights.n_layers - 1
    for layer, block in enumerate(weights.blocks):
        attn_out = attention(block.attn, x, weights.meta.attn_scale, last_only=(layer == last))
        x = (x[:, -1:, :] if layer == last else x) + attn_out
        x = x + mlp(block.mlp, x)
    return x[:, -1, :]


def forward(weights: TransformerWeights, tokens: np.ndarray) -> np.ndarray:
    """Logits at the last position, [batch, d_vocab_out], in float64."""
    logits = final_residual(weights, tokens) @ weights.W_U
    logits += weights.b_U  # in place: the logits are the largest array of a verifier chunk
    return logits
