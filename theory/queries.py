"""Queries: token sequences with their correct answers, produced in index-addressable chunks.

Token layout (docs/FORMAT.md): subject ids are 0..N-1, relation r is token N + r.
A single-hop query for (s, r) is the sequence [s, N + r]; its answer is f_r(s).
Query index q enumerates subjects major, relations minor: q = s * R + r.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.instance import Instance


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
