"""Closed-form weight constructions. Each returns a :class:`Construction` (weights + spec)."""

from georecall.constructions.base import Construction, retarget
from georecall.constructions.block_superposition import build_block_superposition
from georecall.constructions.codebooks import Codebook, binary_codebook, make_codebook, multilevel_codebook, rademacher_codebook
from georecall.constructions.registry import CONSTRUCTIONS, build_construction
from georecall.constructions.shared_space import build_shared_space, empirical_threshold_d, shared_space_sufficient_d

__all__ = [
    "Construction",
    "retarget",
    "build_block_superposition",
    "build_shared_space",
    "build_construction",
    "CONSTRUCTIONS",
    "Codebook",
    "binary_codebook",
    "multilevel_codebook",
    "rademacher_codebook",
    "make_codebook",
    "empirical_threshold_d",
    "shared_space_sufficient_d",
]
