"""The exact-recall verifier: every query's argmax must be its answer with a strict margin.

margin(q) = logit[answer] - max_{a != answer} logit[a]; a tie (margin 0) is a failure.
Queries run through the reference forward pass (theory.model.forward) in chunks sized to a
memory budget, so N = 65,536 with R = 8 needs only the budget, not N * R * N floats.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from theory.instance import Instance
from theory.model import forward
from theory.queries import SingleHopQueries
from theory.weights import TransformerWeights

DEFAULT_MEMORY_BUDGET_BYTES = 256 * 2**20


@dataclass
class RecallReport:
    """The verifier's verdict. ``to_json_dict`` gives the documented JSON keys."""

    kind: str
    exact_recall: bool
    queries: int
    total_queries: int
    failures: int
    min_margin: float
    exhaustive: bool
    first_failures: list = field(default_factory=list)
    argmin_query: dict = field(default_factory=dict)
    chunk_size: int = 0
    elapsed_s: float = 0.0
    details: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        data = asdict(self)
        data["min_margin"] = _json_float(self.min_margin)
        return data

    def summary(self) -> str:
        scope = "all" if self.exhaustive else f"a sample of {self.queries:,} of"
        verdict = "EXACT" if self.exact_recall else f"FAILED on {self.failures:,}"
        return f"{verdict}: checked {scope} {self.total_queries:,} {self.kind} queries, min margin {self.min_margin:.6g}"

    def __repr__(self) -> str:
        return f"RecallReport({self.summary()})"


def chunk_size_for(weights: TransformerWeights, seq_len: int, memory_budget_bytes: int) -> int:
    """Queries per chunk so that the forward pass and margin arithmetic fit the budget."""
    d_model = weights.d_model
    widest = max([d_model] + [b.attn.n_heads * b.attn.d_head for b in weights.blocks] + [b.mlp.d_mlp for b in weights.blocks])
    heads = max([1] + [b.attn.n_heads for b in weights.blocks])
    per_query = 8 * (2 * weights.meta.d_vocab_out + 6 * seq_len * widest + 3 * heads * seq_len * seq_len)
    return max(1, int(memory_budget_bytes // per_query))


def verify_queries(
    weights: TransformerWeights,
    query_set,
    *,
    indices: np.ndarray | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    chunk_size: int | None = None,
    max_listed: int = 10,
    progress: Callable[[int, int], None] | None = None,
    margins_fn: Callable | None = None,
) -> RecallReport:
    """Check the queries of ``query_set`` (all of them unless ``indices`` picks a sample).

    ``margins_fn(weights, tokens, answers) -> (margins, best_other)`` replaces the reference
    forward pass (a backend such as ``experiments.torch_verify``); the default is the reference.
    """
    started = time.perf_counter()
    exhaustive = indices is None
    indices = np.arange(query_set.total, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    if chunk_size is None:
        chunk_size = chunk_size_for(weights, query_set.seq_len, memory_budget_bytes)
    elif chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    failures, min_margin, argmin = 0, np.inf, None
    listed: list[dict] = []
    done = 0
    for chunk, margins, best_other in iter_margins(weights, query_set, indices, chunk_size, margins_fn):
        failed = ~(margins > 0)  # NaN margins fail too
        failures += int(failed.sum())
        for pos in np.flatnonzero(failed)[: max(0, max_listed - len(listed))]:
            listed.append(failure_record(query_set, chunk, pos, margins, best_other))
        low = int(np.nanargmin(margins)) if not np.all(np.isnan(margins)) else 0
        if np.isnan(margins[low]) or margins[low] < min_margin:
            min_margin, argmin = float(margins[low]), int(chunk.indices[low])
        done += len(margins)
        if progress is not None:
            progress(done, len(indices))

    return RecallReport(
        kind=query_set.kind,
        exact_recall=failures == 0 and len(indices) > 0,
        queries=int(len(indices)),
        total_queries=int(query_set.total),
        failures=failures,
        min_margin=float(min_margin),
        exhaustive=exhaustive,
        first_failures=listed,
        argmin_query={} if argmin is None else {"query": argmin, **query_set.describe(argmin)},
        chunk_size=int(chunk_size),
        elapsed_s=time.perf_counter() - started,
    )


def reference_margins(weights: TransformerWeights, tokens: np.ndarray, answers: np.ndarray):
    return answer_margins(forward(weights, tokens), answers)


def iter_margins(weights: TransformerWeights, query_set, indices: np.ndarray, chunk_size: int, margins_fn=None):
    """Yield (chunk, margins, best other token) for ``indices`` of ``query_set``, chunk by chunk."""
    margins_fn = reference_margins if margins_fn is None else margins_fn
    for begin in range(0, len(indices), chunk_size):
        chunk = query_set.take(indices[begin : begin + chunk_size])
        margins, best_other = margins_fn(weights, chunk.tokens, chunk.answers)
        yield chunk, margins, best_other


def failure_record(query_set, chunk, pos: int, margins: np.ndarray, best_other: np.ndarray) -> dict:
    return {
        "query": int(chunk.indices[pos]),
        **query_set.describe(chunk.indices[pos]),
        "expected": int(chunk.answers[pos]),
        "predicted": int(best_other[pos]),
        "margin": _json_float(margins[pos]),
        "tie": bool(margins[pos] == 0),
    }


def answer_margins(logits: np.ndarray, answers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: logit of the answer minus the best other logit, and that best other token.

    Overwrites each row's answer entry of ``logits`` with -inf: the verifier owns the array,
    and a copy would double its largest allocation.
    """
    rows = np.arange(len(answers))
    target = logits[rows, answers]
    logits[rows, answers] = -np.inf
    best_other = logits.argmax(axis=1)
    return target - logits[rows, best_other], best_other


def verify_single_hop(weights: TransformerWeights, instance: Instance, **options) -> RecallReport:
    """Exhaustive single-hop check: all N * R queries (s, r) -> f_r(s). Options as verify_queries."""
    if weights.meta.N != instance.N or weights.meta.R != instance.R:
        raise ValueError(
            f"weights are for N={weights.meta.N}, R={weights.meta.R} but the instance has N={instance.N}, R={instance.R}"
        )
    return verify_queries(weights, SingleHopQueries(instance), **options)


def _json_float(value) -> float | str:
    value = float(value)
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value
