"""ConstructionSpec: what a construction spends and what it guarantees.

It lives in ``theory`` so that ``bounds`` can compare any spec (from our constructions, a
weights file or a user's own claim) without importing ``constructions``.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.weights import TransformerWeights


@dataclass(frozen=True)
class ConstructionSpec:
    """Sizes, parameter counts and guarantees of one built model.

    subject_params: entries of the N subject rows of W_E (N * d_model).
    subject_embedding_dim: dimension of the subspace that subject embeddings occupy (the
        coordinates a subject row may make non-zero); it is the ``d`` of the bound d * p >= R log2 N.
    shared_params: entries of every other array (dense count); shared_params_nonzero: those not 0.
    bits_per_coordinate: log2 of the number of values one subject-embedding coordinate can take.
    guaranteed_margin: the margin the construction's theorem promises for every query.
    failure_probability: 0 for a deterministic guarantee, else the theorem's delta.
    fact_independent_shared: True when every shared array is fixed before the facts are drawn.
    """

    name: str
    N: int
    R: int
    d_model: int
    d_mlp: int
    n_layers: int
    n_heads: int
    d_head: int
    subject_embedding_dim: int
    subject_params: int
    shared_params: int
    shared_params_nonzero: int
    bits_per_coordinate: float
    guaranteed_margin: float
    failure_probability: float = 0.0
    fact_independent_shared: bool = True
    hops: int = 1
    cot: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def subject_bits(self) -> float:
        """Bits one subject embedding carries: subject_embedding_dim * bits_per_coordinate."""
        return self.subject_embedding_dim * self.bits_per_coordinate

    def to_json_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: dict) -> "ConstructionSpec":
        """A spec from JSON (a file's meta.extra.spec or a spec file), each field type-checked."""
        from dataclasses import fields

        if not isinstance(data, dict):
            raise InputError(f"meta.extra.spec must be an object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise InputError(f"meta.extra.spec has unknown fields {unknown}")
        kinds = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "dict": (dict,)}
        for name, f in known.items():
            if name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise InputError(f"meta.extra.spec.{name} is missing")
                continue
            value, allowed = data[name], kinds[str(f.type)]
            if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
                raise InputError(f"meta.extra.spec.{name} must be of type {f.type}, got {value!r}")
        return cls(**data)


def parameter_counts(weights: TransformerWeights) -> dict:
    """Dense and non-zero entry counts, split into subject rows of W_E and shared arrays."""
    N = weights.meta.N
    shared = weights.shared_arrays().values()
    return {
        "subject_params": int(weights.W_E[:N].size),
        "shared_params": int(sum(a.size for a in shared)),
        "shared_params_nonzero": int(sum(np.count_nonzero(a) for a in shared)),
    }


def spec_from_weights(weights: TransformerWeights, **fields) -> ConstructionSpec:
    """A spec whose sizes and counts are read off ``weights``; ``fields`` gives the rest."""
    N = weights.meta.N
    used = np.flatnonzero(np.any(weights.W_E[:N] != 0, axis=0))
    fields.setdefault("subject_embedding_dim", int(used.size))
    layers = [(b.attn.n_heads, b.attn.d_head, b.mlp.d_mlp) for b in weights.blocks]
    return spec_from_sizes(weights.meta, weights.d_model, layers, **parameter_counts(weights), **fields)


def spec_from_sizes(meta, d_model: int, layers: list, **fields) -> ConstructionSpec:
    """A spec from meta, d_model and (n_heads, d_head, d_mlp) per layer; ``fields`` gives the counts
    and the rest: for a builder that writes arrays it never holds whole (formats RowBlocks)."""
    return ConstructionSpec(
        N=meta.N,
        R=meta.R,
        d_model=d_model,
        d_mlp=max((m for _, _, m in layers), default=0),
        n_layers=len(layers),
        n_heads=max((h for h, _, _ in layers), default=0),
        d_head=max((e for _, e, _ in layers), default=0),
        **fields,
    )


SIZE_FIELDS = ("N", "R", "d_model", "d_mlp", "n_layers", "n_heads", "d_head", "subject_params", "shared_params",
               "shared_params_nonzero")


def checked_spec(spec: ConstructionSpec, weights: TransformerWeights) -> ConstructionSpec:
    """``spec`` (a file's claim) checked against the arrays: every size and count must match them,
    hops and chain-of-thought must match meta, and subject_embedding_dim must cover every
    coordinate a subject row uses. Raises ValueError naming the first false field."""
    measured = spec_from_weights(weights, name=spec.name, bits_per_coordinate=spec.bits_per_coordinate,
                                 guaranteed_margin=spec.guaranteed_margin)
    for name in SIZE_FIELDS:
        claimed, actual = getattr(spec, name), getattr(measured, name)
        if claimed != actual:
            raise InputError(f"meta.extra.spec.{name} is {claimed!r} but the arrays give {actual!r}")
    if not isinstance(spec.subject_embedding_dim, int) or not measured.subject_embedding_dim <= spec.subject_embedding_dim <= weights.d_model:
        raise InputError(f"meta.extra.spec.subject_embedding_dim is {spec.subject_embedding_dim!r}, but subject rows use "
                         f"{measured.subject_embedding_dim} coordinates (valid: {measured.subject_embedding_dim}..{weights.d_model})")
    kinds, extra = weights.meta.query_kinds, weights.meta.extra
    cot = "cot" in kinds
    if spec.cot != cot:
        raise InputError(f"meta.extra.spec.cot is {spec.cot!r} but meta.query_kinds is {list(kinds)}")
    hops = extra.get("max_hops") if cot else (extra.get("hops") if "multi_hop" in kinds else 1)
    if spec.hops != hops:
        raise InputError(f"meta.extra.spec.hops is {spec.hops!r} but meta gives {hops!r}")
    return spec
