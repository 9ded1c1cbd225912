"""Certified single-hop recall: a proven margin bound per query, brute force only where it declines.

docs/theorems/certificate.md. For a nearest-code unembedding (b_U[a] = -||w_a||^2 / 2 up to a
proven B, w_a = W_U[S, a] on the non-zero rows S) and codes at distance >= D:

    logit_t - logit_a >= D^2 / 2 - D r - 2 B,   r >= ||x_S - w_t|| for the exact residual x,

(Theorem C2'). r comes from the residual center plus its radius (verify.fast, Lemma S7), so the
bound holds in exact arithmetic; a query is certified *robust* when the bound also exceeds the
logit radii of every conforming float64 evaluation (Lemma S4). Every other query is brute
forced through the fast path (one layer) or the bounded reference, and re-decided exactly where
float64 cannot tell. The minimum margin is found by brute-forcing certified queries in
increasing order of their bound while they could still hold it (verify.margin_search, to within MARGIN_TOLERANCE,
relative); details.min_margin_lower_bound is a proven lower bound on every exact margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from georecall.verify.error_model import overflow_is_a_verdict
from georecall.verify.reference import BoundedForward, UnembeddingNorms, unembedding_support
from georecall.verify.exact import ExactDecider
from georecall.verify.margin_search import in_blocks, search_min_margin
from georecall.verify.fast import FAST_MEMORY_BUDGET_BYTES, FastScan
from georecall.verify.chunks import DEFAULT_MEMORY_BUDGET_BYTES, map_in_threads
from georecall.theory.geometry import min_squared_distance
from georecall.theory.instance import Instance
from georecall.theory.queries import SingleHopQueries
from georecall.verify.error_model import INFLATE, TINY, UNIT_ROUNDOFF, gamma, norm_up
from georecall.verify.verdict import DEFAULT_MAX_EXACT, ROBUST, RecallReport, VerdictAccumulator
from georecall.theory.arrays import Widened, read_columns, stored, widen
from georecall.theory.weights import TransformerWeights

EXACT_DISTANCE_MAX_N = 4096  # above this, use the grid-gap bound instead of the O(N^2) exact distance
CODE_BLOCK = 1 << 16  # codes read, and hashed, this many at a time


@dataclass(frozen=True)
class NearestCode:
    """Support rows S of W_U, codes [N, |S| / folds], a proven D <= min distance and
    B >= max |b_a + ||u_a||^2 / 2|. ``folds`` > 1: W_U[S] is that many identical copies of the
    code block, so the logits read the sum of the residual's blocks (Lemma C3)."""

    support: np.ndarray
    codes: np.ndarray
    distance: float
    bias_gap: float
    folds: int = 1


def fold_count(codes: np.ndarray) -> int:
    """The largest f such that the columns of ``codes`` ([N, |S|]: W_U's support rows as columns) are
    f identical consecutive copies of one block; read a block of rows at a time, stopping at the first
    that differs."""
    N, width = codes.shape
    for folds in range(width, 1, -1):
        part = width // folds
        if width % folds == 0 and all(
                np.array_equal(block.reshape(len(block), folds, part), np.broadcast_to(block[:, None, :part], (len(block), folds, part)))
                for block in (codes[r0 : r0 + CODE_BLOCK] for r0 in range(0, N, CODE_BLOCK))):
            return folds
    return 1


def code_distance_lower_bound(codes: np.ndarray) -> float:
    """A proven D <= min_{a != b} ||u_a - u_b|| in exact arithmetic; 0 when two codes coincide.

    N <= EXACT_DISTANCE_MAX_N: the float64 minimum from coordinate differences, shrunk by its
    rounding (gamma_{d+3}) and the square root's. Larger N: distinct codes differ in some
    coordinate i by at least the least gap g_i between distinct values of coordinate i, so
    D >= min_i g_i, each g_i shrunk by its subtraction's rounding.
    """
    N, d = codes.shape
    if N < 2:
        return np.inf
    if _has_duplicate_rows(codes):
        return 0.0
    if N <= EXACT_DISTANCE_MAX_N:
        squared = min_squared_distance(np.asarray(codes)) * (1.0 - gamma(d + 3))
        if not squared >= 2.0**-900:  # squares near the underflow range may round up: claim nothing
            return 0.0
        return float(np.sqrt(squared) * (1.0 - 4.0 * UNIT_ROUNDOFF))
    distinct = _distinct_columns(codes)
    gaps = [np.diff(values).min() for values in distinct if len(values) > 1]
    return float(min(gaps) * (1.0 - 4.0 * UNIT_ROUNDOFF))


def _distinct_columns(codes) -> list[np.ndarray]:
    """The sorted distinct values of each column (-0.0 and 0.0 as one). float16 codes by a table of the
    65,536 bit patterns per column, filled in one pass over the rows, not a sort per column: 24 columns
    of 2^24 codes in about 0.5 s instead of 2.6 s."""
    if isinstance(codes, Widened) and codes.stored.dtype == np.float16:
        width = codes.shape[1]
        present = np.zeros((width, 1 << 16), dtype=bool)
        for r0 in range(0, len(codes), CODE_BLOCK):
            present[np.arange(width)[None, :], codes.stored[r0 : r0 + CODE_BLOCK].view(np.uint16)] = True
        return [np.unique(widen(np.flatnonzero(column).astype(np.uint16).view(np.float16))) for column in present]
    return [np.unique(codes[:, i]) for i in range(codes.shape[1])]


def _row_words(codes, r0: int) -> np.ndarray:
    """Rows r0.. of the codes as 64-bit words that are equal exactly when the rows are equal as
    numbers: float64 after + 0.0 (which makes -0.0 one with 0.0), or float16 bits with -0.0 made
    0 and packed four to a word."""
    if isinstance(codes, Widened) and codes.stored.dtype == np.float16:
        bits = codes.stored[r0 : r0 + CODE_BLOCK].view(np.uint16)
        bits = np.where(bits == 0x8000, np.uint16(0), bits)
        padded = np.zeros((len(bits), -(-bits.shape[1] // 4) * 4), dtype=np.uint16)
        padded[:, : bits.shape[1]] = bits
        return padded.view(np.uint64)
    return np.ascontiguousarray(codes[r0 : r0 + CODE_BLOCK] + 0.0, dtype=np.float64).view(np.uint64)


def _has_duplicate_rows(codes: np.ndarray) -> bool:
    """Two equal rows (as numbers: -0.0 and 0.0 are made one first). Each row is hashed from its
    64-bit words and only rows whose hash repeats are compared in full, by sorting their bytes: a
    sort of N integers instead of N rows of |S| numbers (1.0 s to 0.15 s at N = 2^20)."""
    if len(codes) < 2:
        return False
    hashed = np.full(len(codes), 0x9E3779B97F4A7C15, dtype=np.uint64)
    for r0 in range(0, len(codes), CODE_BLOCK):
        words = _row_words(codes, r0)
        part = hashed[r0 : r0 + CODE_BLOCK]
        with np.errstate(over="ignore"):
            for column in words.T:  # FNV-style mixing; wraps modulo 2^64 by design
                part = (part ^ column) * np.uint64(0x100000001B3)
                part ^= part >> np.uint64(29)
        hashed[r0 : r0 + CODE_BLOCK] = part
    ordered = np.sort(hashed)  # the hashes alone, not their order: 2.6 s to 1 s at N = 2^24
    twice = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not len(twice):
        return False  # equal rows have equal hashes: no repeated hash, no equal rows
    repeated = np.isin(hashed, twice)
    suspects = np.ascontiguousarray(codes[repeated] + 0.0, dtype=np.float64)
    keys = np.sort(suspects.view(np.dtype((np.void, suspects.dtype.itemsize * suspects.shape[1]))).ravel())
    return bool(np.any(keys[1:] == keys[:-1]))


def bias_gap_bound(codes: np.ndarray, b_U: np.ndarray) -> float:
    """A proven B >= max_a |b_a + ||w_a||^2 / 2| (the nearest-code identity's defect)."""
    squares = np.concatenate([np.einsum("ij,ij->i", block, block) for block in (codes[r0 : r0 + CODE_BLOCK] for r0 in range(0, len(codes), CODE_BLOCK))]
                             or [np.zeros(0)])
    defect = np.abs(b_U + 0.5 * squares) * (1.0 + 4.0 * UNIT_ROUNDOFF) + squares * gamma(codes.shape[1] + 3) + TINY  # TINY: underflowed squares
    return float(defect.max() * INFLATE) if len(defect) else 0.0


def nearest_code_structure(weights: TransformerWeights) -> NearestCode | None:
    """The certificate's data when it can certify anything: D > 0 and B < D^2 / 8; else None."""
    support = unembedding_support(weights)
    if len(support) == 0:
        return None
    kept = stored(weights.W_U)  # equal copies are equal in the stored dtype too; the codes stay as narrow as W_U was stored
    codes = np.empty((weights.meta.d_vocab_out, len(support)), dtype=kept.dtype)
    for c0 in range(0, len(codes), CODE_BLOCK):  # a block of W_U's columns at a time: no second copy of W_U
        codes[c0 : c0 + CODE_BLOCK] = read_columns(kept, support, c0, c0 + CODE_BLOCK, as_stored=True).T
    folds = fold_count(codes)
    width = len(support) // folds
    if folds > 1:
        codes = np.ascontiguousarray(codes[:, :width])
    codes = Widened(codes) if codes.dtype != np.float64 else codes  # widened where read
    bias = bias_gap_bound(codes, weights.b_U)
    if len(codes) > 1:  # cheap refusal first: D <= ||u_0 - u_1||, so B must be below that squared over 8
        first_pair = float(np.sum((codes[0] - codes[1]) ** 2))
        if not bias < 0.125 * first_pair * (1.0 + gamma(codes.shape[1] + 3)):
            return None
    distance = code_distance_lower_bound(codes)
    if not (0 < distance < np.inf and bias < 0.125 * distance**2):
        return None
    return NearestCode(support, codes, distance, bias, folds)


def structure_beside_exactness(weights: TransformerWeights, above_N: int) -> NearestCode | None:
    """nearest_code_structure, with Lemma S8's check (which the one-layer paths need next) decided
    ahead beside it on a second thread when one is allowed: both read every subject once (0.9 s
    and 1.3 s at N = 2^20). The caller forgets an answer its path did not take."""
    from concurrent.futures import ThreadPoolExecutor

    from georecall.verify.exactness import decide_ahead
    from georecall.verify.threads import threads_for

    if weights.n_layers != 1 or threads_for(2, 1) < 2 or weights.meta.N < above_N:
        return nearest_code_structure(weights)
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(decide_ahead, weights)
        structure = nearest_code_structure(weights)
        ahead.result()
    return structure


def folded(center: np.ndarray, radius: np.ndarray, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum of the residual's ``folds`` blocks, a norm radius for it) from a center and norm radius
    over all blocks (Lemma C3): ||fl(sum c_r) - sum x_r|| <= gamma_folds ||sum |c_r| || + sqrt(folds) radius."""
    if folds == 1:
        return center, radius
    blocks = center.reshape(len(center), folds, -1)
    total = blocks.sum(axis=1)
    rounding = norm_up(np.abs(blocks).sum(axis=1)) * gamma(folds + 1)
    return total, (np.sqrt(folds) * (1.0 + 4.0 * UNIT_ROUNDOFF)) * radius + rounding


@overflow_is_a_verdict
def certify_single_hop(weights: TransformerWeights, instance: Instance, *, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
                       max_listed: int = 10, max_exact: int = DEFAULT_MAX_EXACT, structure: NearestCode | None = None,
                       progress=None) -> RecallReport:
    """Exhaustive single-hop verdict, certified where possible; sound on every query (Theorem C2')."""
    N, R = instance.N, instance.R
    queries = SingleHopQueries(instance)
    total = queries.total
    structure = structure or nearest_code_structure(weights)
    accumulator = VerdictAccumulator(queries, total, decider=ExactDecider(weights), max_listed=max_listed, max_exact=max_exact)
    lower = np.full(total, -np.inf)  # proven margin bound of certified-robust queries; -inf elsewhere
    one_layer = weights.n_layers == 1
    budget = min(memory_budget_bytes, FAST_MEMORY_BUDGET_BYTES)
    scan = FastScan(weights, instance, budget, None if structure is None else structure.support) if one_layer else None
    bounded = None if one_layer else BoundedForward(weights)
    lowest = (np.inf, None)  # (least certified bound, its query)
    if structure is not None:
        norms = scan.norms if one_layer else UnembeddingNorms(weights.W_U, weights.b_U, rows=structure.support)  # the same rows
        per_subject = 8 * 6 * R * (weights.d_model + max(b.mlp.d_mlp for b in weights.blocks))
        step = max(1, memory_budget_bytes // per_subject)
        chunks = [np.arange(first, min(first + step, N)) for first in range(0, N, step)]

        exact = scan.sides.exact if one_layer else False

        def chunk_bounds(subjects):  # in the chunk's own thread: the certificate costs about a third of the rows
            begin, end = int(subjects[0]) * R, (int(subjects[-1]) + 1) * R
            center, radius, upper, safe = _residual_rows(weights, queries, subjects, begin, end, scan, bounded, structure.support)
            answers = instance.facts.T[subjects].reshape(-1)
            robust, bound = certified_bounds(structure, norms, center, radius, upper, safe, answers, weights.d_model, exact)
            low = int(np.argmin(np.where(robust, bound, np.inf)))  # the chunk's least certified bound, found here, in parallel
            return np.where(robust, bound, -np.inf), (bound[low] if robust[low] else np.inf, begin + low)

        for subjects, (bounds, least) in zip(chunks, map_in_threads(chunk_bounds, chunks)):
            begin, end = int(subjects[0]) * R, (int(subjects[-1]) + 1) * R
            lower[begin:end] = bounds
            lowest = least if least[0] < lowest[0] else lowest  # strict: the first of equal bounds, as argmin
            if progress is not None:
                progress(end, total)
    certified = lower > -np.inf  # a mask: index arrays over 8 million queries would cost 64 MB each
    accumulator.set_status(certified, ROBUST)  # margins: brute-forced ones only

    def brute_force(indices: np.ndarray):
        """Margins of ``indices`` (sorted) into the accumulator; returns their float margins."""
        if one_layer:
            batch = scan.query_batch(indices)
        else:
            chunk = queries.take(indices)
            batch = bounded.margins(chunk.tokens, chunk.answers)
        return batch

    chunk = max(1, min(65536, memory_budget_bytes // (16 * (weights.meta.d_vocab_out + 8 * weights.d_model))))
    rest = in_blocks(total, lambda b, e: lower[b:e] == -np.inf)
    best = np.inf
    for begin in range(0, len(rest), chunk):
        indices = rest[begin : begin + chunk]
        batch = brute_force(indices)
        accumulator.add(indices, indices, batch)
        best = min(best, float(np.min(accumulator.margin[indices])))
        if progress is not None:  # a second phase: the queries the certificate left to brute force
            progress(begin + len(indices), len(rest))
    # The minimum margin: certified queries whose bound could still be below it are brute forced.
    checked = np.zeros(total, dtype=bool)

    def margins_of(indices):
        margins = np.nan_to_num(brute_force(indices).margins, nan=-np.inf)
        accumulator.margin[indices] = margins
        return margins

    best = search_min_margin(lower, certified, best, margins_of, chunk, checked, lowest=lowest[1])
    report = accumulator.report("single_hop", total, True, chunk_size=chunk,
                                details={"path": "certify", "certified": int(certified.sum()),
                                         "brute_forced": int(len(rest) + checked.sum()),
                                         "min_margin_lower_bound": float(min(best, np.min(lower, where=certified, initial=np.inf))),
                                         "code_distance_bound": structure.distance if structure else _distance_or_none(weights),
                                         "bias_gap_bound": None if structure is None else structure.bias_gap,
                                         "folded_blocks": None if structure is None else structure.folds,
                                         "nearest_code_unembedding": structure is not None})
    return report


def certified_bounds(structure: NearestCode, norms: UnembeddingNorms, center, radius, upper, safe, answers, d_model: int,
                     exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(certified robust, proven margin bound) per residual row (Theorem C2' with Lemma S4's radii):
    ``center`` on the support, ``radius`` and ``upper`` norm bounds, ``safe`` the path's flag."""
    D, B = structure.distance, structure.bias_gap
    read, read_radius = folded(center, radius, structure.folds)
    r = (norm_up(read - structure.codes[answers]) + read_radius) * INFLATE
    bound = 0.5 * D * D - D * r - 2.0 * B
    bound -= 8.0 * UNIT_ROUNDOFF * (0.5 * D * D + D * r + 2.0 * B)
    if exact:  # Lemma S8: every conforming evaluation computes the exact logits
        e_target = e_rival = 0.0
    else:
        e_target, e_rival = norms.radii(radius, upper, answers, d_model, any_evaluation=True)
    robust = safe & norms.logits_in_range(upper) & (r < 0.5 * D) & (bound > (e_target + e_rival) * INFLATE)
    return robust, bound


def _residual_rows(weights, queries, subjects, begin, end, scan, bounded, support):
    """(center on the support, radius norm, upper norm, safe) of the queries of ``subjects``."""
    if scan is not None:
        rows = scan.rows(subjects)
        return rows.center, rows.radius_norm, rows.upper_norm, rows.safe
    x, rx, safe = bounded.final_residual(queries.take(np.arange(begin, end)).tokens)
    x, rx = x[:, support], rx[:, support]
    return x, norm_up(rx), norm_up(np.abs(x) + rx), safe


def _distance_or_none(weights: TransformerWeights) -> float | None:
    """D of the unembedding's codes for the report when the certificate declined (None past EXACT_DISTANCE_MAX_N)."""
    support = unembedding_support(weights)
    if len(support) == 0 or weights.meta.N > EXACT_DISTANCE_MAX_N:
        return None
    return code_distance_lower_bound(np.ascontiguousarray(weights.W_U[support].T))
