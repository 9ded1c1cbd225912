"""Queries: token sequences with their correct answers, produced in index-addressable chunks.

Token layout (docs/FORMAT.md): subject ids are 0..N-1, relation r is token N + r.
A single-hop query for (s, r) is the sequence [s, N + r]; its answer is f_r(s).
Query index q enumerates subjects major, relations minor: q = s * R + r.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.instance import Instance


def relation_token(N: int, relation) -> np.ndarray | int:
    """Token id of relation ``relation`` in a vocabulary whose first N ids are subjects."""
    return N + relation


@dataclass(frozen=True)
class QueryChunk:
    """Some queries of a query set, addressed by their global indices.

    indices: int64 [batch]; tokens: int64 [batch, seq_len]; answers: int64 [batch], the
    correct output token of each query.
    """

    indices: np.ndarray
    tokens: np.ndarray
    answers: np.ndarray


class SingleHopQueries:
    """Every single-hop query (s, r) of an instance: N * R queries of length 2.

    A query set has ``kind``, ``seq_len``, ``total``, ``take(indices)`` and ``describe(index)``;
    the verifier needs nothing else, so multi-hop and chain-of-thought sets plug in the same way.
    """

    kind = "single_hop"
    seq_len = 2

    def __init__(self, instance: Instance):
        self.instance = instance
        self.total = instance.N * instance.R

    def take(self, indices: np.ndarray) -> QueryChunk:
        indices = np.asarray(indices, dtype=np.int64)
        subjects, relations = np.divmod(indices, self.instance.R)
        tokens = np.stack([subjects, relation_token(self.instance.N, relations)], axis=1)
        return QueryChunk(indices, tokens, self.instance.facts[relations, subjects])

    def describe(self, index: int) -> dict:
        subject, relation = divmod(int(index), self.instance.R)
        return {"subject": subject, "relation": relation}


def single_hop_queries(instance: Instance) -> SingleHopQueries:
    return SingleHopQueries(instance)


CHAIN_KINDS = ("exact", "up_to")


def chain_tuples(R: int, max_length: int, kind: str) -> list[tuple[int, ...]]:
    """Chains (r_1, ..., r_l) of length exactly max_length ("exact") or 1..max_length ("up_to"),
    shorter first, each length in itertools.product order (r_1 most significant)."""
    if kind not in CHAIN_KINDS:
        raise InputError(f"chains must be one of {', '.join(CHAIN_KINDS)}; got {kind!r}")
    lengths = [max_length] if kind == "exact" else range(1, max_length + 1)
    return [c for length in lengths for c in itertools.product(range(R), repeat=length)]


class MultiHopQueries:
    """Every k-hop query without chain-of-thought: prompt [s, N + r_1, ..., N + r_k] -> f_c(s).

    Query index q = s * R^k + chain index (base-R digits of the chain, r_1 most significant).
    """

    kind = "multi_hop"

    def __init__(self, instance: Instance, hops: int):
        self.instance, self.hops = instance, hops
        self.seq_len = hops + 1
        self.n_chains = instance.R**hops
        self.total = instance.N * self.n_chains

    def _split(self, indices):
        subjects, chain_index = np.divmod(np.asarray(indices, dtype=np.int64), self.n_chains)
        R = self.instance.R
        chains = np.stack([(chain_index // R ** (self.hops - 1 - j)) % R for j in range(self.hops)], axis=1)
        return subjects, chains

    def take(self, indices: np.ndarray) -> QueryChunk:
        indices = np.asarray(indices, dtype=np.int64)
        subjects, chains = self._split(indices)
        tokens = np.concatenate([subjects[:, None], relation_token(self.instance.N, chains)], axis=1)
        return QueryChunk(indices, tokens, follow_chains(self.instance, subjects, chains))

    def describe(self, index: int) -> dict:
        subjects, chains = self._split([index])
        return {"subject": int(subjects[0]), "chain": [int(r) for r in chains[0]]}


def follow_chains(instance: Instance, subjects: np.ndarray, chains: np.ndarray) -> np.ndarray:
    """f_{c}(s) per row: apply chains[:, 0] first."""
    values = np.asarray(subjects, dtype=np.int64)
    for j in range(chains.shape[1]):
        values = instance.facts[chains[:, j], values]
    return values


def cot_parameters(meta) -> tuple[int, int]:
    """(max_hops K, hops_per_step h) of a chain-of-thought file, validated (docs/FORMAT.md §5)."""
    extra = meta.extra
    if not isinstance(extra, dict) or "max_hops" not in extra or "hops_per_step" not in extra:
        raise InputError("meta.extra must give max_hops and hops_per_step for query kind 'cot'")
    K, h = extra["max_hops"], extra["hops_per_step"]
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise InputError(f"meta.extra.max_hops must be an integer >= 1, got {K!r}")
    if isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= K:
        raise InputError(f"meta.extra.hops_per_step must be an integer in 1..max_hops = {K}, got {h!r}")
    if "SEP" not in meta.special_tokens or "PAD" not in meta.special_tokens:
        raise InputError("meta.token_layout.special must name SEP and PAD for query kind 'cot'")
    return K, h


def multi_hop_parameters(meta) -> tuple[int, str]:
    extra = meta.extra
    hops = extra.get("hops") if isinstance(extra, dict) else None
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
        raise InputError(f"meta.extra.hops must be an integer >= 1 for query kind 'multi_hop', got {hops!r}")
    chains = extra.get("chains", "exact")
    if chains not in ("exact", "up_to"):
        raise InputError(f"meta.extra.chains must be 'exact' or 'up_to', got {chains!r}")
    return hops, chains


class ChainOfThoughtStepQueries:
    """Step t (1-based) of every k-hop chain-of-thought query, with the earlier steps' correct tokens.

    Prompt (docs/FORMAT.md §5): [s, N + r_1, ..., N + r_k, PAD x (K - k), SEP, e_1, ..., e_{t-1}],
    where e_u = f of the first min(u h, k) relations of the chain applied to s. The answer is e_t.
    Feeding the correct earlier tokens is exactly greedy decoding for as long as every step is right.
    """

    kind = "cot"

    def __init__(self, instance: Instance, hops: int, max_hops: int, hops_per_step: int, step: int, sep: int, pad: int):
        self.instance, self.hops, self.max_hops, self.h, self.step = instance, hops, max_hops, hops_per_step, step
        self.sep, self.pad = sep, pad
        self.base = MultiHopQueries(instance, hops)
        self.total, self.n_chains = self.base.total, self.base.n_chains
        self.seq_len = max_hops + 2 + (step - 1)

    def take(self, indices: np.ndarray) -> QueryChunk:
        indices = np.asarray(indices, dtype=np.int64)
        subjects, chains = self.base._split(indices)
        N, B = self.instance.N, len(indices)
        pad = np.full((B, self.max_hops - self.hops), self.pad, dtype=np.int64)
        emitted = [follow_chains(self.instance, subjects, chains[:, : min(u * self.h, self.hops)]) for u in range(1, self.step + 1)]
        tokens = np.concatenate(
            [subjects[:, None], relation_token(N, chains), pad, np.full((B, 1), self.sep, dtype=np.int64)]
            + [e[:, None] for e in emitted[:-1]],
            axis=1,
        )
        return QueryChunk(indices, tokens, emitted[-1])

    def describe(self, index: int) -> dict:
        return {**self.base.describe(index), "step": self.step}
