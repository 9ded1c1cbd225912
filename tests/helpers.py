"""Test-only helpers: a random model, and the plain (unchunked, loop-by-definition) margin check."""

import numpy as np

from georecall.theory.model import forward
from georecall.theory.queries import SingleHopQueries
from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights


def random_weights(N, R, d_model=8, layers=2, heads=2, d_head=3, d_mlp=5, n_ctx=4, seed=0, special=()):
    rng = np.random.default_rng(seed)
    meta = ModelMeta(N=N, R=R, n_layers=layers, attn_scale=0.7, special_tokens={s: N + R + i for i, s in enumerate(special)})
    blocks = []
    for _ in range(layers):
        attn = AttentionWeights(*(rng.normal(size=(heads, d_model, d_head)) for _ in range(3)), rng.normal(size=(heads, d_head, d_model)))
        mlp = MLPWeights(rng.normal(size=(d_model, d_mlp)), rng.normal(size=d_mlp), rng.normal(size=(d_mlp, d_model)), rng.normal(size=d_model))
        blocks.append(Block(attn, mlp))
    return TransformerWeights(
        rng.normal(size=(meta.d_vocab_in, d_model)), tuple(blocks), rng.normal(size=(d_model, N)), rng.normal(size=N), meta,
        W_pos=rng.normal(size=(n_ctx, d_model)),
    )


def plain_single_hop_margins(weights, instance):
    """Every query's margin by the definition, from one unchunked forward pass."""
    queries = SingleHopQueries(instance)
    chunk = queries.take(np.arange(queries.total))
    logits = forward(weights, chunk.tokens)
    margins = []
    for row, answer in zip(logits, chunk.answers):
        others = [row[a] for a in range(len(row)) if a != answer]
        margins.append(row[answer] - max(others))
    return np.array(margins)


def swapped_hop_heads(weights):
    """A chain construction whose hop heads 1 and 2 write into each other's slot (hops 1 and 2 swapped)."""
    from dataclasses import replace

    attn = weights.blocks[0].attn
    W_O = attn.W_O.copy()
    W_O[[1, 2]] = W_O[[2, 1]]
    return replace(weights, blocks=(Block(AttentionWeights(attn.W_Q, attn.W_K, attn.W_V, W_O), weights.blocks[0].mlp),))


def swapped_hop_flips(instance) -> int:
    """Two-hop queries whose answer changes when the two hops are swapped: where swapped_hop_heads must fail."""
    N, R = instance.N, instance.R
    return sum(int(instance.chain_answer([s], (r1, r2))[0] != instance.chain_answer([s], (r2, r1))[0])
               for s in range(N) for r1 in range(R) for r2 in range(R))

