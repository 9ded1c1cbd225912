"""Distances between codes, shared by codebooks (constructions) and the certificate (theory)."""

from __future__ import annotations

import numpy as np


def min_squared_distance(codes: np.ndarray, chunk: int = 1024) -> float:
    """min_{a != b} ||u_a - u_b||^2 over the rows of ``codes``, by chunked Gram matrices (O(N^2 d))."""
    norms = np.einsum("ij,ij->i", codes, codes)
    best = np.inf
    for start in range(0, codes.shape[0], chunk):
        block = codes[start : start + chunk]
        dist = norms[start : start + chunk, None] + norms[None, :] - 2.0 * block @ codes.T
        rows = np.arange(len(block))
        dist[rows, start + rows] = np.inf
        best = min(best, float(dist.min()))
    return best
