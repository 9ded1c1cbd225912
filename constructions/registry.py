"""Build any single-hop construction by name: the one entry point the CLI and the API share."""

from __future__ import annotations

import math

from georecall.constructions.associative import build_associative_multi_hop
from georecall.constructions.base import Construction
from georecall.constructions.block_superposition import build_block_superposition
from georecall.constructions.planar import build_block_planar
from georecall.constructions.codebooks import make_codebook
from georecall.constructions.shared_space import build_shared_space, code_min_hamming, shared_space_sufficient_d
from georecall.constructions.chains import build_chain_of_thought, build_multi_hop_chains
from georecall.theory.checks import InputError, require_int
from georecall.theory.instance import Instance

CONSTRUCTIONS = ("block", "planar", "shared-space", "chains", "associative", "cot")


def build_construction(
    name: str,
    instance: Instance,
    *,
    codebook: str = "binary",
    precision: int = 1,
    delta: float = 1e-3,
    codebook_seed: int = 0,
    d: int | None = None,
    maps_seed: int = 0,
    hops: int = 1,
    chains: str = "exact",
    cot_steps: int | None = None,
) -> Construction:
    """``name`` is "block" (construction K1), "planar" (K1': no output slot, a two-coordinate
    relation code, d_model = R d0 + 2), "shared-space" (K2; d defaults to Theorem 3's sufficient d),
    "chains" (C3: k-hop without CoT, one code block per chain), "associative" (C4: k layers with
    lookup MLPs) or "cot" (C5: chain-of-thought for every depth <= hops; ``cot_steps`` = T < hops
    gives partial CoT with ceil(hops / T) hops per emitted token).

    codebook: "binary", "multilevel" (with ``precision`` bits per coordinate) or "rademacher"
    (d0 from ``delta``, drawn from ``codebook_seed``).
    """
    book = make_codebook(codebook, instance.N, precision=precision, delta=delta, seed=codebook_seed)
    if name == "block":
        return build_block_superposition(instance, book)
    if name == "planar":
        return build_block_planar(instance, book)
    if name == "shared-space":
        if d is None:
            d = shared_space_sufficient_d(instance.N, instance.R, book.d0, code_min_hamming(book), delta)
        return build_shared_space(instance, book, d, maps_seed, delta)
    if name == "chains":
        return build_multi_hop_chains(instance, book, hops, chains)
    if name == "associative":
        return build_associative_multi_hop(instance, book, hops)
    if name == "cot":
        hops = require_int("hops", hops, minimum=1)
        steps = hops if cot_steps is None else require_int("cot_steps", cot_steps, minimum=1, maximum=hops)
        return build_chain_of_thought(instance, book, hops, math.ceil(hops / steps))
    raise InputError(f"construction must be one of {', '.join(CONSTRUCTIONS)}; got {name!r}")
