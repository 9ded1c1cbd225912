"""Exact-recall verification: every query kind a file declares, through one verdict engine.

A query passes only when it is *proven* correct and float64-robust (verify.verdict,
docs/theorems/soundness.md). Paths differ only in how they compute margins and radii:

    reference  verify.reference.BoundedForward: the §3 forward pass with a radius on every value
    fast       verify.fast: one-layer single hop, subject/relation sides computed once
    certify    verify.certify: a proven margin bound per query, brute force (fast) elsewhere
    torch      verify.torch_path: BoundedForward's rules on torch tensors
    exact      verify.exact: every query decided by the oracle (ball arithmetic), no float64 test;
               slow, for small files and as the ground truth the other paths are tested against

``verify_model`` picks the fastest sound path per query kind unless ``path`` forces one.
Multi-hop and chain-of-thought checks sample only past ``max_queries``, and say so.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from georecall.theory.checks import InputError
from georecall.verify.error_model import overflow_is_a_verdict
from georecall.verify.reference import BoundedForward, answer_margins, check_context  # noqa: F401 (answer_margins: the plain definition)
from georecall.verify.chunks import DEFAULT_MEMORY_BUDGET_BYTES
from georecall.verify.reach import refuse_brute_force_out_of_reach
from georecall.verify.exact import ExactDecider
from georecall.theory.instance import Instance
from georecall.theory.queries import ChainOfThoughtStepQueries, MultiHopQueries, SingleHopQueries, cot_parameters, multi_hop_parameters
from georecall.verify.verdict import DEFAULT_MAX_EXACT, RecallReport, VerdictAccumulator, combine, merged_path_details
from georecall.theory.weights import TransformerWeights

DEFAULT_MAX_QUERIES = 1_000_000
FAST_MAX_QUERIES = 2**24  # on the fast sequence path: 16.8 million queries (about a minute on 2 cores) before sampling
WORK_LIMIT_POSITIONS = 2 * 10**9  # attention scores (prompts x length^2) of a check: hours on 2 cores


def refuse_out_of_reach(positions: int, what: str) -> None:
    """InputError before any work when a check would compute more than WORK_LIMIT_POSITIONS attention scores."""
    if positions > WORK_LIMIT_POSITIONS:
        raise InputError(f"{what} would compute about {positions:.3g} attention scores (limit {WORK_LIMIT_POSITIONS:.0e}); "
                         f"lower --max-queries or check one depth with --hops")


QUERY_INDEX_LIMIT = 2**62  # query indices are int64: a query set past this is refused, naming its size


def refuse_index_overflow(N: int, R: int, hops: int) -> int:
    """N R^hops, or InputError when the queries could not be numbered in 64 bits."""
    total = N * R**hops
    if total > QUERY_INDEX_LIMIT:
        raise InputError(f"{hops} hops over R = {R} relations and N = {N} subjects make {total:.3g} queries; query indices are 64-bit "
                         f"(at most 2^62): check fewer hops (--hops) or a smaller file")
    return total


def _sampled(total: int, max_queries: int | None) -> int:
    return total if max_queries is None else min(total, max_queries)
PATHS = ("auto", "certify", "fast", "reference", "torch", "exact")
EXACT_PATH_WORK_LIMIT = 6 * 10**10  # ball operations of a whole exact-path check: about 10 minutes (measured 1e8 per second)
BALL_OPERATIONS_PER_SECOND = 10**8


def chunk_size_for(weights: TransformerWeights, seq_len: int, memory_budget_bytes: int) -> int:
    """Queries per chunk so that the bounded forward pass (centers, radii, twins) fits the budget."""
    d_model = weights.d_model
    widest = max([d_model] + [b.attn.n_heads * b.attn.d_head for b in weights.blocks] + [b.mlp.d_mlp for b in weights.blocks])
    heads = max([1] + [b.attn.n_heads for b in weights.blocks])
    per_query = 8 * (2 * weights.meta.d_vocab_out + 16 * seq_len * widest + 8 * heads * seq_len * seq_len)
    return max(1, int(memory_budget_bytes // per_query))


@overflow_is_a_verdict
def verify_queries(
    weights: TransformerWeights,
    query_set,
    *,
    indices: np.ndarray | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    chunk_size: int | None = None,
    max_listed: int = 10,
    max_exact: int = DEFAULT_MAX_EXACT,
    progress: Callable[[int, int], None] | None = None,
    forward=None,
    accumulator: VerdictAccumulator | None = None,
) -> RecallReport:
    """Check the queries of ``query_set`` (all unless ``indices`` picks a sample) through ``forward``.

    ``forward.margins(tokens, answers) -> MarginBatch``: the reference BoundedForward by default,
    or a backend such as verify.torch_path. ``accumulator`` lets several query sets (CoT
    steps) share per-query verdicts; the report is then the caller's to make.
    """
    exhaustive = indices is None
    indices = np.arange(query_set.total, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
    check_context(weights, query_set.seq_len)
    explicit_chunk = chunk_size is not None
    if chunk_size is None:
        chunk_size = chunk_size_for(weights, query_set.seq_len, memory_budget_bytes)
    elif chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    forward = forward or BoundedForward(weights)
    own = accumulator is None
    if own:
        accumulator = VerdictAccumulator(query_set, len(indices), decider=ExactDecider(weights), max_listed=max_listed,
                                         max_exact=max_exact)
    if hasattr(forward, "check"):  # a path that checks a whole query set itself (verify.sequence_check)
        chunk_size = chunk_size if explicit_chunk else forward.chunk_size(query_set.seq_len, memory_budget_bytes)
        forward.check(query_set, indices, accumulator, chunk_size, progress)
    else:
        _check_in_chunks(forward, query_set, indices, accumulator, chunk_size, progress)
    if not own:
        return None
    return accumulator.report(query_set.kind, query_set.total, exhaustive, indices=None if exhaustive else indices,
                              chunk_size=chunk_size, details={"path": getattr(forward, "path", "reference"), **_path_details(forward)})


def _path_details(forward) -> dict:
    return forward.take_details() if hasattr(forward, "take_details") else {}


def _check_in_chunks(forward, query_set, indices, accumulator, chunk_size: int, progress) -> None:
    """Margins (or the exact path's classes) of ``indices`` through ``forward``, a chunk at a time."""
    for begin in range(0, len(indices), chunk_size):
        chunk = query_set.take(indices[begin : begin + chunk_size])
        if hasattr(forward, "classes"):  # the exact path decides each query itself
            batch, status = forward.classes(chunk.tokens, chunk.answers)
        else:
            batch, status = forward.margins(chunk.tokens, chunk.answers), None
        positions = np.arange(begin, begin + len(chunk.indices))
        accumulator.add(positions, chunk.indices, batch, query_set, status=status)
        if progress is not None:
            progress(begin + len(chunk.indices), len(indices))


def _check_sizes(weights: TransformerWeights, instance: Instance) -> None:
    if (weights.meta.N, weights.meta.R) != (instance.N, instance.R):
        raise InputError(f"weights are for N={weights.meta.N}, R={weights.meta.R} but the instance has N={instance.N}, R={instance.R}")


def verify_single_hop(weights: TransformerWeights, instance: Instance, **options) -> RecallReport:
    """The reference path over all N * R single-hop queries (s, r) -> f_r(s)."""
    _check_sizes(weights, instance)
    return verify_queries(weights, SingleHopQueries(instance), **options)


def query_sample(total: int, max_queries: int | None, seed: int) -> np.ndarray | None:
    """None (check all) when total <= max_queries, else sorted distinct indices drawn from ``seed``."""
    if max_queries is None or total <= max_queries:
        return None
    if max_queries < 1:
        raise InputError(f"max_queries must be >= 1, got {max_queries}")
    return np.sort(np.random.default_rng(seed).choice(total, size=max_queries, replace=False))


def verify_multi_hop(weights: TransformerWeights, instance: Instance, hops: int, chains: str = "exact", *,
                     max_queries: int | None = DEFAULT_MAX_QUERIES, seed: int = 0, max_listed: int = 10, **options) -> RecallReport:
    """All chains of length ``hops`` ("exact") or of every length 1..hops ("up_to"), every subject."""
    _check_sizes(weights, instance)
    if hops < 1:
        raise InputError(f"hops must be >= 1, got {hops}")
    if chains not in ("exact", "up_to"):
        raise InputError(f"chains must be 'exact' or 'up_to', got {chains!r}")
    lengths = [hops] if chains == "exact" else list(range(1, hops + 1))
    refuse_index_overflow(instance.N, instance.R, hops)
    share = None if max_queries is None else max(1, max_queries // len(lengths))
    refuse_out_of_reach(sum(_sampled(instance.N * instance.R**length, share) * (length + 1) ** 2 for length in lengths),
                        f"multi-hop verification of chains of length {lengths[0]}..{lengths[-1]}")
    started = time.perf_counter()
    reports = []
    for length in lengths:
        queries = MultiHopQueries(instance, length)
        # the sampling limit applies per chain length, each with its own share of the limit
        limit = None if max_queries is None else max(1, max_queries // len(lengths))
        reports.append(verify_queries(weights, queries, indices=query_sample(queries.total, limit, seed + length),
                                      max_listed=max_listed, **options))
    return combine(reports, "multi_hop", started, {"hops": hops, "chains": chains, "max_queries": max_queries,
                                                   "path": reports[0].details.get("path"), **merged_path_details(reports)}, max_listed)


def verify_chain_of_thought(weights: TransformerWeights, instance: Instance, hops: int, *,
                            max_queries: int | None = DEFAULT_MAX_QUERIES, seed: int = 0, max_listed: int = 10,
                            max_exact: int = DEFAULT_MAX_EXACT, forward=None, **options) -> RecallReport:
    """Every emitted token of every k-hop CoT query: a query's class is the worst of its steps."""
    _check_sizes(weights, instance)
    meta = weights.meta
    max_hops, h = cot_parameters(meta)
    if not 1 <= hops <= max_hops:
        raise InputError(f"hops must be in 1..max_hops = {max_hops} of these weights, got {hops}")
    steps = math.ceil(hops / h)
    total = refuse_index_overflow(instance.N, instance.R, hops)
    sample = query_sample(total, max_queries, seed)
    indices = np.arange(total, dtype=np.int64) if sample is None else sample
    base = MultiHopQueries(instance, hops)
    forward = forward or BoundedForward(weights)
    accumulator = VerdictAccumulator(base, len(indices), decider=ExactDecider(weights), max_listed=max_listed, max_exact=max_exact)
    progress = options.pop("progress", None)
    for step in range(1, steps + 1):
        queries = ChainOfThoughtStepQueries(instance, hops, max_hops, h, step, meta.special_tokens["SEP"], meta.special_tokens["PAD"])

        def step_progress(done, _total, step=step):
            if progress is not None:
                progress((step - 1) * len(indices) + done, steps * len(indices))

        verify_queries(weights, queries, indices=indices, accumulator=accumulator, forward=forward, progress=step_progress, **options)
    return accumulator.report("cot", total, sample is None, indices=None if sample is None else indices,
                              details={"hops": hops, "steps": steps, "hops_per_step": h, "max_hops": max_hops,
                                       "tokens_checked": int(steps * len(indices)), "max_queries": max_queries,
                                       "path": getattr(forward, "path", "reference"), **_path_details(forward)})


CERTIFY_ABOVE_N = 4096  # measured: below it fast brute force wins (0.56 s against 1.25 s at N = 4096, R = 8)


def choose_single_hop_path(weights: TransformerWeights, structure=None) -> str:
    """The fastest sound single-hop path: the certificate where the unembedding is nearest-code
    (``structure``, from georecall.verify.certify.nearest_code_structure) and N is large, else fast brute
    force (one layer), else the bounded reference."""
    if structure is not None and (weights.meta.N > CERTIFY_ABOVE_N or weights.n_layers != 1):
        return "certify"
    return "fast" if weights.n_layers == 1 else "reference"


@overflow_is_a_verdict
def verify_model(weights: TransformerWeights, instance: Instance, hops: int | None = None, *, path: str = "auto",
                 forward=None, max_listed: int = 10, **options) -> RecallReport:
    """Check every query kind the weights declare (meta.query_kinds); per-kind reports in details.kinds.

    single_hop: all N R queries. multi_hop: chains of meta.extra.hops (``chains`` from meta).
    cot: every depth 1..max_hops (or only ``hops``), every emitted token. ``path`` forces one
    path (PATHS); "torch" needs ``forward`` (verify.torch_path.TorchForward).
    """
    if path not in PATHS:
        raise InputError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    _check_sizes(weights, instance)
    kinds = weights.meta.query_kinds
    if not kinds:
        raise InputError("meta.query_kinds is empty: the file declares no queries to check")
    unknown = [k for k in kinds if k not in ("single_hop", "multi_hop", "cot")]
    if unknown:
        raise InputError(f"meta.query_kinds has unknown kinds {unknown}; known: single_hop, multi_hop, cot")
    if hops is not None and "cot" not in kinds:
        raise InputError("hops selects a chain-of-thought depth; these weights declare no 'cot' queries")
    if path == "torch" and forward is None:
        raise InputError("path 'torch' needs a torch forward (verify.torch_path.TorchForward)")
    if path == "exact":
        from georecall.verify.exact import OracleForward

        refuse_exact_out_of_reach(weights, instance, hops, options.get("max_queries", DEFAULT_MAX_QUERIES))
        forward = OracleForward(weights)
    if path == "fast" and weights.n_layers != 1:  # both fast paths, single hop and sequences
        raise InputError("path 'fast' handles one-layer models; use 'reference'")
    sequences = [k for k in kinds if k != "single_hop"]
    sequence_forward = forward
    if path in ("auto", "fast") and sequences and weights.n_layers == 1 and forward is None:
        from georecall.verify.sequence_check import FastSequences

        sequence_forward = FastSequences(weights)
    started = time.perf_counter()
    sampled = {k: options.pop(k) for k in ("max_queries", "seed") if k in options}
    if "max_queries" not in sampled and sequences:
        sampled["max_queries"] = FAST_MAX_QUERIES if hasattr(sequence_forward, "check") else DEFAULT_MAX_QUERIES
    reports = {}
    for kind in dict.fromkeys(kinds):
        if kind == "single_hop":
            reports[kind] = _verify_single_hop_by_path(weights, instance, path, forward, max_listed, options)
        elif kind == "multi_hop":
            k, chains = multi_hop_parameters(weights.meta)
            reports[kind] = verify_multi_hop(weights, instance, k, chains, forward=sequence_forward, max_listed=max_listed, **sampled, **options)
        else:
            K, h = cot_parameters(weights.meta)
            depths = [hops] if hops is not None else list(range(1, K + 1))
            refuse_index_overflow(instance.N, instance.R, max(depths))
            limit = sampled.get("max_queries", DEFAULT_MAX_QUERIES)
            refuse_out_of_reach(sum(_sampled(instance.N * instance.R**k, limit) * sum((K + 1 + t) ** 2 for t in range(1, math.ceil(k / h) + 1))
                                    for k in depths), f"chain-of-thought verification of depths {depths[0]}..{depths[-1]}")
            cot_started = time.perf_counter()
            parts = [verify_chain_of_thought(weights, instance, k, forward=sequence_forward, max_listed=max_listed, **sampled, **options)
                     for k in depths]
            reports[kind] = combine(parts, "cot", cot_started, {"depths": depths, "hops_per_step": parts[0].details["hops_per_step"],
                                                                "path": parts[0].details.get("path"), **merged_path_details(parts)}, max_listed)
    if len(reports) == 1:
        report = next(iter(reports.values()))
        report.details = {**report.details, "kinds": {kind: _kind_counts(report)}}
        return report
    per_kind = {kind: _kind_counts(r) for kind, r in reports.items()}
    return combine(list(reports.values()), "+".join(reports), started, {"kinds": per_kind}, max_listed)


def _kind_counts(report: RecallReport) -> dict:
    return {"queries": report.queries, "robust": report.robust, "fragile": report.fragile, "unproven": report.unproven,
            "failures": report.failures, "exact_recall": report.exact_recall, "exhaustive": report.exhaustive,
            "path": report.details.get("path")}


def refuse_exact_out_of_reach(weights: TransformerWeights, instance: Instance, hops: int | None, max_queries: int | None) -> None:
    """InputError before any work when the exact path would take more than EXACT_PATH_WORK_LIMIT ball operations."""
    meta, d = weights.meta, weights.d_model
    per_position = sum(b.attn.n_heads * d * b.attn.d_head * 4 + 4 * d * b.mlp.d_mlp for b in weights.blocks)
    work = 0
    for kind in dict.fromkeys(meta.query_kinds):
        if kind == "single_hop":
            counts = [(instance.N * instance.R, 2)]
        elif kind == "multi_hop":
            k, chains = multi_hop_parameters(meta)
            counts = [(_sampled(instance.N * instance.R**length, max_queries), length + 1) for length in ([k] if chains == "exact" else range(1, k + 1))]
        else:
            K, h = cot_parameters(meta)
            counts = [(_sampled(instance.N * instance.R**k, max_queries) * math.ceil(k / h), K + 2 + math.ceil(k / h)) for k in ([hops] if hops else range(1, K + 1))]
        work += sum(n * (T * T * per_position + d * meta.d_vocab_out) for n, T in counts)
    if work > EXACT_PATH_WORK_LIMIT:
        raise InputError(f"--path exact would take about {work:.3g} ball operations, about {work / BALL_OPERATIONS_PER_SECOND / 60:,.0f} minutes "
                         f"(limit {EXACT_PATH_WORK_LIMIT:.0e}); use the default path, lower --max-queries, or check a smaller file")


def _verify_single_hop_by_path(weights, instance, path, forward, max_listed, options) -> RecallReport:
    from georecall.verify.certify import structure_beside_exactness
    from georecall.verify.exactness import forget_ahead

    wants_structure = path == "certify" or (path == "auto" and (weights.meta.N > CERTIFY_ABOVE_N or weights.n_layers != 1))
    try:
        structure = structure_beside_exactness(weights, CERTIFY_ABOVE_N) if wants_structure else None
        return _single_hop_on(weights, instance, path, forward, max_listed, options, structure)
    finally:
        forget_ahead(weights)


def _single_hop_on(weights, instance, path, forward, max_listed, options, structure) -> RecallReport:
    from georecall.verify.certify import certify_single_hop
    from georecall.verify.fast import verify_single_hop_fast

    chosen = choose_single_hop_path(weights, structure) if path == "auto" else path
    if chosen in ("fast", "reference"):  # the torch path refuses when its forward is made (verify.torch_path)
        refuse_brute_force_out_of_reach(weights, chosen)
    if chosen == "certify":
        return certify_single_hop(weights, instance, max_listed=max_listed, structure=structure, **options)
    if chosen == "fast":  # one layer: verify_model refuses 'fast' otherwise, and 'auto' never picks it
        return verify_single_hop_fast(weights, instance, max_listed=max_listed, **options)
    return verify_single_hop(weights, instance, forward=forward, max_listed=max_listed, **options)  # reference, torch, exact
