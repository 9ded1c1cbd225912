"""Exact-recall checks for k-hop queries, with and without chain-of-thought.

Every query is checked unless there are more than ``max_queries``; then a uniform sample of
``max_queries`` (drawn from ``seed``) is checked and the report says so (exhaustive = False).
Under chain-of-thought a query passes only if every emitted token is right: each step is checked
with the earlier correct tokens in the prompt, which is greedy decoding as long as all are right.
"""

from __future__ import annotations

import math
import time

import numpy as np

from theory.instance import Instance
from theory.queries import ChainOfThoughtStepQueries, MultiHopQueries
from theory.verify import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    RecallReport,
    chunk_size_for,
    failure_record,
    iter_margins,
    verify_queries,
    verify_single_hop,
)
from theory.weights import TransformerWeights

DEFAULT_MAX_QUERIES = 1_000_000


def query_sample(total: int, max_queries: int | None, seed: int) -> np.ndarray | None:
    """None (check all) when total <= max_queries, else sorted distinct indices drawn from ``seed``."""
    if max_queries is None or total <= max_queries:
        return None
    if max_queries < 1:
        raise ValueError(f"max_queries must be >= 1, got {max_queries}")
    return np.sort(np.random.default_rng(seed).choice(total, size=max_queries, replace=False))


def _check_sizes(weights: TransformerWeights, instance: Instance, hops: int) -> None:
    if (weights.meta.N, weights.meta.R) != (instance.N, instance.R):
        raise ValueError(f"weights are for N={weights.meta.N}, R={weights.meta.R} but the instance has N={instance.N}, R={instance.R}")
    if hops < 1:
        raise ValueError(f"hops must be >= 1, got {hops}")


def verify_multi_hop(
    weights: TransformerWeights,
    instance: Instance,
    hops: int,
    chains: str = "exact",
    *,
    max_queries: int | None = DEFAULT_MAX_QUERIES,
    seed: int = 0,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    max_listed: int = 10,
    progress=None,
    margins_fn=None,
) -> RecallReport:
    """All chains of length ``hops`` ("exact") or of every length 1..hops ("up_to"), every subject."""
    _check_sizes(weights, instance, hops)
    if chains not in ("exact", "up_to"):
        raise ValueError(f"chains must be 'exact' or 'up_to', got {chains!r}")
    started = time.perf_counter()
    lengths = [hops] if chains == "exact" else list(range(1, hops + 1))
    reports = []
    for length in lengths:
        queries = MultiHopQueries(instance, length)
        # the sampling limit applies per chain length, each with its own share of the limit
        limit = None if max_queries is None else max(1, max_queries // len(lengths))
        reports.append(
            verify_queries(weights, queries, indices=query_sample(queries.total, limit, seed + length),
                           memory_budget_bytes=memory_budget_bytes, max_listed=max_listed, progress=progress,
                           margins_fn=margins_fn)
        )
    return _combine(reports, "multi_hop", started, {"hops": hops, "chains": chains, "max_queries": max_queries})


def _combine(reports: list[RecallReport], kind: str, started: float, details: dict) -> RecallReport:
    worst = min(reports, key=lambda r: (not np.isnan(r.min_margin), r.min_margin))
    return RecallReport(
        kind=kind,
        exact_recall=all(r.exact_recall for r in reports),
        queries=sum(r.queries for r in reports),
        total_queries=sum(r.total_queries for r in reports),
        failures=sum(r.failures for r in reports),
        min_margin=worst.min_margin,
        exhaustive=all(r.exhaustive for r in reports),
        first_failures=[f for r in reports for f in r.first_failures][:10],
        argmin_query=worst.argmin_query,
        chunk_size=max(r.chunk_size for r in reports),
        elapsed_s=time.perf_counter() - started,
        details=details,
    )


def verify_chain_of_thought(
    weights: TransformerWeights,
    instance: Instance,
    hops: int,
    *,
    max_queries: int | None = DEFAULT_MAX_QUERIES,
    seed: int = 0,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    max_listed: int = 10,
    progress=None,
    margins_fn=None,
) -> RecallReport:
    """Every emitted token of every k-hop CoT query; needs meta.extra max_hops, hops_per_step and SEP/PAD."""
    _check_sizes(weights, instance, hops)
    meta = weights.meta
    if "cot" not in meta.query_kinds:
        raise ValueError(f"these weights answer {list(meta.query_kinds)}, not chain-of-thought ('cot') queries")
    max_hops, h = int(meta.extra["max_hops"]), int(meta.extra["hops_per_step"])
    if hops > max_hops:
        raise ValueError(f"hops must be <= max_hops = {max_hops} of these weights, got {hops}")
    started = time.perf_counter()
    steps = math.ceil(hops / h)
    total = instance.N * instance.R**hops
    sample = query_sample(total, max_queries, seed)
    indices = np.arange(total, dtype=np.int64) if sample is None else sample
    worst = np.full(len(indices), np.inf)  # per query: the least margin over its steps
    listed: list[dict] = []
    for step in range(1, steps + 1):
        queries = ChainOfThoughtStepQueries(instance, hops, max_hops, h, step, meta.special_tokens["SEP"], meta.special_tokens["PAD"])
        chunk_size = chunk_size_for(weights, queries.seq_len, memory_budget_bytes)
        offset = 0
        for chunk, margins, best_other in iter_margins(weights, queries, indices, chunk_size, margins_fn):
            span = slice(offset, offset + len(margins))
            worst[span] = np.fmin(worst[span], np.where(np.isnan(margins), -np.inf, margins))
            for pos in np.flatnonzero(~(margins > 0))[: max(0, max_listed - len(listed))]:
                listed.append(failure_record(queries, chunk, pos, margins, best_other))
            offset += len(margins)
            if progress is not None:
                progress((step - 1) * len(indices) + offset, steps * len(indices))
    failed = ~(worst > 0)
    low = int(np.argmin(worst))
    return RecallReport(
        kind="cot",
        exact_recall=not failed.any(),
        queries=int(len(indices)),
        total_queries=int(total),
        failures=int(failed.sum()),
        min_margin=float(worst[low]),
        exhaustive=sample is None,
        first_failures=listed,
        argmin_query={"query": int(indices[low]), **MultiHopQueries(instance, hops).describe(indices[low])},
        chunk_size=int(chunk_size),
        elapsed_s=time.perf_counter() - started,
        details={"hops": hops, "steps": steps, "hops_per_step": h, "max_hops": max_hops,
                 "tokens_checked": int(steps * len(indices)), "max_queries": max_queries},
    )


def verify_model(weights: TransformerWeights, instance: Instance, hops: int | None = None, **options) -> RecallReport:
    """Check whatever the weights say they answer (meta.query_kinds), every query unless sampled.

    single_hop: all N R queries. multi_hop: chains of meta.extra.hops (``chains`` from meta).
    cot: every depth 1..max_hops (or only ``hops``), every emitted token.
    """
    kinds = weights.meta.query_kinds
    extra = weights.meta.extra
    if "cot" in kinds:
        depths = [hops] if hops is not None else list(range(1, int(extra["max_hops"]) + 1))
        started = time.perf_counter()
        reports = [verify_chain_of_thought(weights, instance, k, **options) for k in depths]
        return _combine(reports, "cot", started, {"depths": depths, "hops_per_step": int(extra["hops_per_step"])})
    if "multi_hop" in kinds:
        return verify_multi_hop(weights, instance, int(extra["hops"]) if hops is None else hops, extra.get("chains", "exact"), **options)
    if "single_hop" in kinds:
        options.pop("max_queries", None)  # single hop is always exhaustive
        options.pop("seed", None)
        return verify_single_hop(weights, instance, **options)
    raise ValueError(f"unknown query kinds {list(kinds)}")
