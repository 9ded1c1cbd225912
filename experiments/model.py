"""The reference architecture in PyTorch, and exact conversions to and from the weights container.

The forward pass is the one in docs/FORMAT.md §3 and ``theory.model``: token (+ positional)
embeddings, per layer causal softmax attention and a ReLU MLP, each with a residual connection,
then ``logits = x_{T-1} W_U + b_U``. Parameter names are the container's array names with dots
replaced by underscores, so a conversion is a rename and a dtype cast, nothing more.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights


def power_of_two_scale(d_head: int) -> float:
    """2^-round(log2(d_head) / 2): the usual 1/sqrt(d_head), rounded to a power of two (halves round down in size)."""
    return 2.0 ** -math.floor(math.log2(d_head) / 2 + 0.5)


def _param(array) -> nn.Parameter:
    return nn.Parameter(torch.as_tensor(array).clone())


class TorchTransformer(nn.Module):
    """One or more attention+MLP blocks. ``forward(tokens[B, T]) -> logits[B, N]`` at the last position."""

    def __init__(self, weights: TransformerWeights, dtype=torch.float32, device="cpu", tie_unembed: bool = False):
        super().__init__()
        self.meta = weights.meta
        self.tie_unembed = tie_unembed  # W_U is read from the subject rows of W_E; the W_U parameter is unused
        arrays = weights.named_arrays()
        self.names = list(arrays)
        for name, array in arrays.items():
            self.register_parameter(_attr(name), _param(np.asarray(array)))
        self.to(dtype=dtype, device=device)

    def param(self, name: str) -> nn.Parameter:
        """The parameter stored under the container name ``name`` (e.g. ``blocks.0.mlp.W_in``)."""
        return getattr(self, _attr(name))

    @property
    def n_layers(self) -> int:
        return self.meta.n_layers

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.param("W_E")[tokens]
        if "W_pos" in self.names:
            x = x + self.param("W_pos")[: tokens.shape[1]]
        return x

    def attention(self, layer: int, x: torch.Tensor, last_only: bool) -> torch.Tensor:
        p = f"blocks.{layer}.attn."
        W_Q, W_K, W_V, W_O = (self.param(p + n) for n in ("W_Q", "W_K", "W_V", "W_O"))
        T = x.shape[1]
        x_query = x[:, -1:, :] if last_only else x
        q = torch.einsum("btd,hde->bhte", x_query, W_Q)
        k = torch.einsum("btd,hde->bhte", x, W_K)
        v = torch.einsum("btd,hde->bhte", x, W_V)
        scores = self.meta.attn_scale * torch.einsum("bhqe,bhke->bhqk", q, k)
        query_positions = torch.arange(T - x_query.shape[1], T, device=x.device)
        allowed = torch.arange(T, device=x.device)[None, :] <= query_positions[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
        pattern = torch.softmax(scores, dim=-1)
        mixed = torch.einsum("bhqk,bhke->bhqe", pattern, v)
        return torch.einsum("bhqe,hed->bqd", mixed, W_O)

    def mlp_hidden(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        """Post-ReLU MLP activations of ``layer``: what the gating analysis reads."""
        p = f"blocks.{layer}.mlp."
        return torch.relu(x @ self.param(p + "W_in") + self.param(p + "b_in"))

    def final_residual(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.final_residual_from(self.embed(tokens))

    def final_residual_from(self, x: torch.Tensor) -> torch.Tensor:
        """The last position's residual after every block, from embedded prompts x[B, T, d]."""
        last = self.n_layers - 1
        for layer in range(self.n_layers):
            attn_out = self.attention(layer, x, last_only=(layer == last))
            x = (x[:, -1:, :] if layer == last else x) + attn_out
            p = f"blocks.{layer}.mlp."
            x = x + self.mlp_hidden(layer, x) @ self.param(p + "W_out") + self.param(p + "b_out")
        return x[:, -1, :]

    def unembed(self) -> torch.Tensor:
        """W_U [d, N]: its own parameter, or the subject rows of W_E transposed when tied."""
        return self.param("W_E")[: self.meta.N].T if self.tie_unembed else self.param("W_U")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.final_residual(tokens) @ self.unembed() + self.param("b_U")

    def to_weights(self, meta: ModelMeta | None = None) -> TransformerWeights:
        """The container holding these parameters in float64 (exactly, for a float64 model)."""
        arrays = {name: self.param(name).detach().cpu().to(torch.float64).numpy() for name in self.names}
        weights = TransformerWeights.from_named_arrays(arrays, meta or self.meta)
        return tie_unembedding(weights) if self.tie_unembed else weights


def tie_unembedding(weights: TransformerWeights) -> TransformerWeights:
    """The same model with W_U = W_E[:N]^T (tied attributes: an answer's code is its entity's embedding)."""
    return replace(weights, W_U=np.ascontiguousarray(weights.W_E[: weights.meta.N].T))


def _attr(name: str) -> str:
    return name.replace(".", "_")


def init_weights(
    N: int,
    R: int,
    d_model: int,
    d_mlp: int,
    rng: np.random.Generator,
    *,
    n_heads: int = 1,
    d_head: int | None = None,
    embed_init_scale: float = 1.0,
    positional: bool = True,
    extra: dict | None = None,
) -> TransformerWeights:
    """A freshly initialised one-layer model over prompts [s, r].

    Subject and relation embeddings are N(0, embed_init_scale^2 / d_model) per entry, so a row
    has norm about ``embed_init_scale``: the scale decides whether superposition forms (issue 7).
    Every other matrix is N(0, 1/fan_in) per entry; biases start at zero. ``attn_scale`` is the
    power of two nearest 1/sqrt(d_head) (in log scale), stored in meta as the format requires: a
    power of two has an exact reciprocal, so the model exports to TransformerLens exactly.
    """
    d_head = d_model if d_head is None else d_head

    def normal(shape, fan_in):
        return rng.standard_normal(shape) / math.sqrt(fan_in)

    W_E = rng.standard_normal((N + R, d_model)) * (embed_init_scale / math.sqrt(d_model))
    attn = AttentionWeights(
        normal((n_heads, d_model, d_head), d_model),
        normal((n_heads, d_model, d_head), d_model),
        normal((n_heads, d_model, d_head), d_model),
        normal((n_heads, d_head, d_model), d_head * n_heads),
    )
    mlp = MLPWeights(normal((d_model, d_mlp), d_model), np.zeros(d_mlp), normal((d_mlp, d_model), d_mlp), np.zeros(d_model))
    meta = ModelMeta(
        N=N, R=R, n_layers=1, attn_scale=power_of_two_scale(d_head), query_kinds=("single_hop",), extra=dict(extra or {})
    )
    W_pos = normal((2, d_model), d_model) if positional else None
    return TransformerWeights(W_E, (Block(attn, mlp),), normal((d_model, N), d_model), np.zeros(N), meta, W_pos)
