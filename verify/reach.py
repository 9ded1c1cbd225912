"""What a brute-force check would cost, refused before it starts: the certificate answers a single-hop
query without its N logits, but a path that computes them all scales with N^2."""

from __future__ import annotations

from georecall.theory.checks import InputError
from georecall.theory.weights import TransformerWeights
from georecall.verify.reference import unembedding_support

BRUTE_FORCE_WORK_LIMIT = 2 * 10**13  # logit multiply-adds of a single-hop brute force on the CPU: about 20 minutes on the fast path
BRUTE_FORCE_PER_SECOND = 1.6 * 10**10  # measured on 2 cores: the fast path at N = 2^16, R = 8 (the reference is slower)


def refuse_brute_force_out_of_reach(weights: TransformerWeights, path: str) -> None:
    """InputError before any work when brute force would compute every single-hop query's logits past the limit."""
    N, R = weights.meta.N, weights.meta.R
    rows = len(unembedding_support(weights)) if path == "fast" else weights.d_model
    work = N * R * weights.meta.d_vocab_out * rows
    if work > BRUTE_FORCE_WORK_LIMIT:
        raise InputError(f"the {path} path would brute-force {N * R:,} single-hop queries against {weights.meta.d_vocab_out:,} "
                         f"logits each: about {work:.3g} multiply-adds, {work / BRUTE_FORCE_PER_SECOND / 60:,.0f} minutes or more "
                         f"(limit {BRUTE_FORCE_WORK_LIMIT:.0e}); the certificate (the default path) needs a nearest-code W_U, or check a smaller file")


DEVICE_COPY_LIMIT_BYTES = 16 * 2**30  # float64 W_E and W_U on the torch device (and widened on the host first)


def refuse_device_copy_out_of_reach(weights: TransformerWeights) -> None:
    """InputError before any copy when the torch path's float64 W_E and W_U would pass DEVICE_COPY_LIMIT_BYTES."""
    needed = 8 * (weights.W_E.size + weights.W_U.size)
    if needed > DEVICE_COPY_LIMIT_BYTES:
        raise InputError(f"the torch path holds W_E and W_U as float64: {needed / 2**30:,.1f} GiB (limit {DEVICE_COPY_LIMIT_BYTES / 2**30:.0f} GiB); "
                         f"use the default path (the certificate), or check a smaller file")
