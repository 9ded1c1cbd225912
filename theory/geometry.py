"""Distances between codes, shared by codebooks (constructions) and the certificate (theory).

Computed from coordinate differences, never from a Gram matrix: ||u||^2 + ||v||^2 - 2 u.v
cancels catastrophically when the codes are large and close (2^28-sized codes two apart).
"""

from __future__ import annotations

import numpy as np

DIFFERENCE_BLOCK_ELEMENTS = 2**24  # floats in one block of pairwise differences


def min_squared_distance(codes: np.ndarray, chunk: int | None = None) -> float:
    """min_{a != b} ||u_a - u_b||^2 over the rows of ``codes`` as float64 computes it (O(N^2 d)).

    Each pair's value is fl(sum_i fl(u_ai - u_bi)^2): within a factor 1 +- gamma_{d+3} of the
    exact one (docs/theorems/certificate.md), which ``verify.certify`` turns into a lower bound.
    """
    N, d = codes.shape
    if N < 2:
        return np.inf
    chunk = chunk or max(1, DIFFERENCE_BLOCK_ELEMENTS // max(1, N * d))
    best = np.inf
    for start in range(0, N, chunk):
        block = codes[start : start + chunk]
        diff = block[:, None, :] - codes[None, :, :]
        dist = np.einsum("abi,abi->ab", diff, diff)
        rows = np.arange(len(block))
        dist[rows, start + rows] = np.inf
        best = min(best, float(dist.min()))
    return best
