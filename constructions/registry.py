"""Build any single-hop construction by name: the one entry point the CLI and the API share."""

from __future__ import annotations

from constructions.base import Construction
from constructions.block_superposition import build_block_superposition
from constructions.codebooks import make_codebook
from constructions.shared_space import build_shared_space, code_min_hamming, shared_space_sufficient_d
from theory.instance import Instance

CONSTRUCTIONS = ("block", "shared-space")


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
) -> Construction:
    """``name`` is "block" (THEORY C1) or "shared-space" (C2; d defaults to Theorem 3's sufficient d).

    codebook: "binary", "multilevel" (with ``precision`` bits per coordinate) or "rademacher"
    (d0 from ``delta``, drawn from ``codebook_seed``).
    """
    book = make_codebook(codebook, instance.N, precision=precision, delta=delta, seed=codebook_seed)
    if name == "block":
        return build_block_superposition(instance, book)
    if name == "shared-space":
        if d is None:
            d = shared_space_sufficient_d(instance.N, instance.R, book.d0, code_min_hamming(book), delta)
        return build_shared_space(instance, book, d, maps_seed, delta)
    raise ValueError(f"construction must be one of {', '.join(CONSTRUCTIONS)}; got {name!r}")
