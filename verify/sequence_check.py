"""Multi-hop and chain-of-thought queries of one-layer models through the fast sequence path.

Each chunk's final residuals come from verify.sequence (Lemma S9). Where the unembedding is
nearest-code (verify.certify.nearest_code_structure) a query is certified robust by Theorem C2'
without its N logits; elsewhere its logits are read on W_U's support with Lemma S4's radii
(Theorem S5). Every query neither decides goes through the bounded reference, and from there to
the oracle, exactly as on the reference path. The reported minimum margin is a float64 margin:
certified queries whose bound could be below it are brute forced (verify.certify.search_min_margin).
"""

from __future__ import annotations

import numpy as np

from georecall.verify.certify import certified_bounds, nearest_code_structure
from georecall.verify.margin_search import search_min_margin
from georecall.verify.chunks import map_in_threads
from georecall.verify.margins import COLUMN_BLOCK, blocked_margins
from georecall.verify.reference import BoundedForward, MarginBatch, UnembeddingNorms, unembedding_support
from georecall.verify.sequence import SequenceForward
from georecall.theory.arrays import rows_as_stored
from georecall.verify.verdict import ROBUST, classify

MIN_MARGIN_CHUNK = 4096  # certified queries brute forced at a time while searching the least margin
MIN_MARGIN_BUDGET = 16384  # and at most this many per query set: past it the report gives the proven bound beside the margin


class FastSequences:
    """A ``forward`` for verify.run.verify_queries that checks whole query sets itself (``check``)."""

    path = "fast_sequence"

    def __init__(self, weights):
        self.weights = weights
        self.structure = nearest_code_structure(weights)
        support = self.structure.support if self.structure is not None else unembedding_support(weights)
        self.sequence = SequenceForward(weights, support)
        self._reference = None
        self.norms = UnembeddingNorms(weights.W_U, weights.b_U, rows=support)
        self.W_U = rows_as_stored(weights.W_U, support)
        self.b_U = weights.b_U if np.any(weights.b_U != 0) else None
        self.certified = 0
        self.min_margin_bound = None  # a proven lower bound on every certified query's margin, once any is certified

    @property
    def reference(self) -> BoundedForward:
        """The bounded reference, made on first use: where the certificate decides every query it is never needed."""
        if self._reference is None:
            self._reference = BoundedForward(self.weights)
        return self._reference

    def chunk_size(self, seq_len: int, memory_budget_bytes: int) -> int:
        """Queries per chunk: about 40 numbers per head and position, plus the MLP's and the residual's rows."""
        b = self.weights.blocks[0]
        per_query = 8 * (40 * b.attn.n_heads * seq_len + 4 * b.mlp.d_mlp + 6 * self.weights.d_model + 2 * min(len(self.W_U), COLUMN_BLOCK))
        return int(max(1024, min(131072, memory_budget_bytes // per_query)))

    def check(self, query_set, indices: np.ndarray, accumulator, chunk_size: int, progress=None) -> None:
        """Every query ``indices`` of ``query_set`` into ``accumulator`` (item slots 0..len - 1)."""
        lower = np.full(len(indices), -np.inf)
        spans = [(begin, min(begin + chunk_size, len(indices))) for begin in range(0, len(indices), chunk_size)]

        def residuals(span):
            chunk = query_set.take(indices[span[0] : span[1]])
            return chunk, self.sequence.final_residual(chunk.tokens)

        for (begin, end), (chunk, rows) in zip(spans, map_in_threads(residuals, spans)):
            positions = np.arange(begin, end)
            if self.structure is not None:
                robust, bound = certified_bounds(self.structure, self.norms, rows.center, rows.radius_norm, rows.upper_norm,
                                                 rows.safe, chunk.answers, self.weights.d_model)
                accumulator.set_status(positions[robust], ROBUST)
                lower[positions[robust]] = bound[robust]
                self.certified += int(robust.sum())
                rest = ~robust
            else:
                batch = self._logit_batch(rows, chunk.answers)
                status = classify(batch)
                decided = status >= 0
                accumulator.add(positions[decided], chunk.indices[decided], _subset(batch, decided), query_set, status=status[decided])
                rest = ~decided
            if rest.any():  # the reference's componentwise radii, then the oracle
                accumulator.add(positions[rest], chunk.indices[rest], self.reference.margins(chunk.tokens[rest], chunk.answers[rest]), query_set)
            if progress is not None:
                progress(end, len(indices))
        certified = lower > -np.inf
        if certified.any():
            found = accumulator.margin[~certified]
            best = float(found.min()) if len(found) else np.inf

            def margins_of(items):  # the float margins of this path's own evaluation (the verdicts are proven already)
                chunk = query_set.take(indices[items])
                rows = self.sequence.final_residual(chunk.tokens)
                margins = np.nan_to_num(self._margins(rows.center, chunk.answers)[0], nan=-np.inf)
                accumulator.margin[items] = np.minimum(accumulator.margin[items], margins)
                return margins

            best = search_min_margin(lower, certified, best, margins_of, MIN_MARGIN_CHUNK, np.zeros(len(indices), dtype=bool),
                                     MIN_MARGIN_BUDGET)
            bound = min(best, float(np.min(lower, where=certified, initial=np.inf)))  # each bound is proven; best only lowers it
            self.min_margin_bound = bound if self.min_margin_bound is None else min(self.min_margin_bound, bound)

    def take_details(self) -> dict:
        """What the report says of this path since the last call: queries certified, and the proven bound."""
        details = {"certified": self.certified}
        if self.min_margin_bound is not None:
            details["min_margin_lower_bound"] = self.min_margin_bound
        self.certified, self.min_margin_bound = 0, None
        return details

    def _margins(self, center, answers):
        return blocked_margins(center, self.W_U, self.b_U, answers, min(COLUMN_BLOCK, self.weights.meta.d_vocab_out))

    def _logit_batch(self, rows, answers) -> MarginBatch:
        margins, best_other = self._margins(rows.center, answers)
        return self.norms.margin_batch(margins, best_other, rows.radius_norm, rows.upper_norm, rows.safe, answers, self.weights.d_model)


def _subset(batch: MarginBatch, keep: np.ndarray) -> MarginBatch:
    return MarginBatch(*(getattr(batch, k)[keep] for k in ("margins", "best_other", "radius_target", "radius_rival", "safe")))
