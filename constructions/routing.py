"""Hard positional attention: head h at query position i attends to position route_h(i).

Positions are one-hot coordinates of a "pos" subspace (W_pos). W_Q sends pos_i to head
coordinate route_h(i); W_K sends pos_j to beta times head coordinate j. So the score is
beta * [j == route_h(i)], and the softmax puts weight 1 / (1 + m e^{-beta}) on the routed
position and at most e^{-beta} on each of the m others (Lemma 4.0 in docs/theorems/multi_hop.md).
Query positions missing from a route see all-zero scores; constructions never read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError
from georecall.constructions.layout import Subspace
from georecall.theory.weights import AttentionWeights

SCORE_GAP = 64.0  # e^-64 ~ 1.6e-28: leaked weight sits far below float64 resolution of O(1) values


@dataclass(frozen=True)
class Route:
    """One head: query position -> key position, and the value copy src subspace -> dst subspace."""

    positions: dict
    src: Subspace
    dst: Subspace


def routing_attention(d_model: int, pos: Subspace, routes: list[Route], gap: float = SCORE_GAP) -> AttentionWeights:
    d_head = max([pos.size] + [route.src.size for route in routes])
    H = len(routes)
    W_Q, W_K = np.zeros((H, d_model, d_head)), np.zeros((H, d_model, d_head))
    W_V, W_O = np.zeros((H, d_model, d_head)), np.zeros((H, d_head, d_model))
    for h, route in enumerate(routes):
        if route.src.size != route.dst.size:
            raise InputError("a route copies between subspaces of equal size")
        for query, key in route.positions.items():
            W_Q[h, pos[query], key] = 1.0
        W_K[h, pos.slice, : pos.size] = gap * np.eye(pos.size)
        W_V[h, route.src.slice, : route.src.size] = np.eye(route.src.size)
        W_O[h, : route.dst.size, route.dst.slice] = np.eye(route.dst.size)
    return AttentionWeights(W_Q=W_Q, W_K=W_K, W_V=W_V, W_O=W_O)


def attention_leak_bound(n_ctx: int, value_max: float, gap: float = SCORE_GAP) -> float:
    """Lemma 4.0: |routed output - routed value| <= 2 (n_ctx - 1) e^{-gap} value_max per coordinate."""
    return 2.0 * (n_ctx - 1) * float(np.exp(-gap)) * value_max
