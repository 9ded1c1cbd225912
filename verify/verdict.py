"""The one verdict engine: every verification path feeds margins and radii here (docs/FORMAT.md §6).

Classes of a query (docs/theorems/soundness.md, Theorem S5):
    robust   proven correct (real margin > 0) and every conforming float64 evaluation predicts it
    fragile  proven correct; robustness not proven (inside the error bound, or an evaluation may overflow)
    unproven not decided (ball arithmetic did not settle it, or the re-decision limit was reached)
    failure  proven incorrect (real margin <= 0: a tie is not correct), or every conforming
             float64 evaluation overflows (one rule, every path)

A float margin m with radii r_t (answer) and r (every rival) of a *safe* query (finite, and no
conforming evaluation can overflow) decides: m > r_t + r -> robust; m < -(r_t + r) -> failure.
Every other query, unsafe ones included, is re-decided by the exact oracle (verify.exact) on
the stored weights. ``exact_recall`` holds only when every checked query is robust.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from georecall.verify.reference import MarginBatch
from georecall.verify.error_model import INFLATE

ROBUST, FRAGILE, UNPROVEN, FAILURE = 0, 1, 2, 3
CLASS_NAMES = ("robust", "fragile", "unproven", "failures")
DEFAULT_MAX_EXACT = 10_000  # queries re-decided in ball arithmetic per verification; the rest are unproven


@dataclass
class RecallReport:
    """The verifier's verdict. ``to_json_dict`` gives the documented JSON keys (docs/FORMAT.md §6)."""

    kind: str
    exact_recall: bool
    queries: int
    total_queries: int
    failures: int
    min_margin: float
    exhaustive: bool
    fragile: int = 0
    unproven: int = 0
    robust: int = 0
    first_failures: list = field(default_factory=list)
    first_fragile: list = field(default_factory=list)
    first_unproven: list = field(default_factory=list)
    argmin_query: dict = field(default_factory=dict)
    chunk_size: int = 0
    elapsed_s: float = 0.0
    details: dict = field(default_factory=dict)

    def to_json_dict(self) -> dict:
        data = asdict(self)
        data["min_margin"] = json_float(self.min_margin)
        return data

    def summary(self) -> str:
        scope = "all" if self.exhaustive else f"a sample of {self.queries:,} of"
        if self.exact_recall:
            verdict = "EXACT"
        else:
            verdict = f"FAILED on {self.failures:,}" if self.failures else "NOT PROVEN"
            others = [f"{count:,} {name}" for count, name in ((self.fragile, "fragile"), (self.unproven, "unproven")) if count]
            if others:
                verdict += " (" + ", ".join(others) + ")"
        return f"{verdict}: checked {scope} {self.total_queries:,} {self.kind} queries, min margin {self.min_margin:.6g}"

    def __repr__(self) -> str:
        return f"RecallReport({self.summary()})"


def json_float(value) -> float | str:
    value = float(value)
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def classify(batch: MarginBatch) -> np.ndarray:
    """Per query: ROBUST, FAILURE, or -1 (undecided in float64, or unsafe: the oracle decides)."""
    bound = (batch.radius_target + batch.radius_rival) * INFLATE
    status = np.full(len(batch.margins), -1, dtype=np.int8)
    status[batch.margins > bound] = ROBUST
    status[batch.margins < -bound] = FAILURE
    status[~batch.safe] = -1  # a NaN, an inf, or an overflow some evaluation may meet: never decided in float64
    return status


class LeastMargins:
    """Per-item margins, +inf until written, kept in pages of 2^16 items made on first write: the
    certificate brute forces a few thousand of 134 million queries, where a dense array would hold
    1 GB of inf. Indexed like a 1-d float64 array by integer positions or a boolean mask."""

    SHIFT = 16

    def __init__(self, n_items: int):
        self.n = int(n_items)
        self._pages: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.n

    def _groups(self, key):
        """(positions, [(page, slots in the key, offsets in the page)]) of a key."""
        positions = np.flatnonzero(key) if np.asarray(key).dtype == bool else np.asarray(key, dtype=np.int64).reshape(-1)
        if len(positions) and not (0 <= positions.min() and positions.max() < self.n):
            raise IndexError(f"positions must lie in [0, {self.n}); got {int(positions.min())}..{int(positions.max())}")
        pages = positions >> self.SHIFT
        order = np.argsort(pages, kind="stable")
        bounds = np.flatnonzero(np.diff(pages[order])) + 1
        groups = [(int(pages[slots[0]]), slots, positions[slots] & ((1 << self.SHIFT) - 1))
                  for slots in np.split(order, bounds) if len(slots)]
        return positions, groups

    def __getitem__(self, key) -> np.ndarray:
        positions, groups = self._groups(key)
        out = np.full(len(positions), np.inf)
        for page, slots, offsets in groups:
            if page in self._pages:
                out[slots] = self._pages[page][offsets]
        return out

    def __setitem__(self, key, values) -> None:
        positions, groups = self._groups(key)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), positions.shape)
        for page, slots, offsets in groups:
            if page not in self._pages:
                self._pages[page] = np.full(min(1 << self.SHIFT, self.n - (page << self.SHIFT)), np.inf)
            self._pages[page][offsets] = values[slots]

    def argmin(self) -> int:
        """The first position of the least margin (0 when every one is +inf, as numpy's argmin gives)."""
        best, where = np.inf, 0
        for page in sorted(self._pages):
            values = self._pages[page]
            low = int(np.argmin(values))
            if values[low] < best or (np.isnan(values[low]) and not np.isnan(best)):
                best, where = values[low], (page << self.SHIFT) + low
        return where


class VerdictAccumulator:
    """Per-query classes and margins for ``n_items`` checked queries, fed chunk by chunk.

    A query checked several times (chain-of-thought steps) keeps its worst class and least
    margin. Offenders are listed per class, at most ``max_listed`` each, in the order fed.
    ``decider`` (verify.exact.ExactDecider) re-decides float-undecided queries; without one, or
    past ``max_exact`` of them, they stay unproven.
    """

    def __init__(self, query_set, n_items: int, *, decider=None, max_listed: int = 10, max_exact: int = DEFAULT_MAX_EXACT):
        self.query_set, self.decider = query_set, decider
        self.status = np.zeros(n_items, dtype=np.int8)
        self.margin = LeastMargins(n_items)
        self.max_listed, self.max_exact = max_listed, max_exact
        self.listed = {FAILURE: [], FRAGILE: [], UNPROVEN: []}
        self.exact_decided = 0
        self.exact_skipped = 0
        self.started = time.perf_counter()

    def add(self, positions: np.ndarray, indices: np.ndarray, batch: MarginBatch, query_set=None, status: np.ndarray | None = None) -> None:
        """Feed one batch: item slots ``positions`` hold the queries ``indices`` of ``query_set``.
        ``status``: classes already decided (the exact path); otherwise Theorem S5 and the oracle."""
        query_set = query_set or self.query_set
        status = classify(batch) if status is None else np.asarray(status, dtype=np.int8)
        undecided = np.flatnonzero(status < 0)
        if len(undecided):
            room = 0 if self.decider is None else max(0, self.max_exact - self.exact_decided)
            decided, skipped = undecided[:room], undecided[room:]
            if len(decided):
                chunk = query_set.take(indices[decided])
                status[decided] = self.decider.decide_many(chunk.tokens, chunk.answers)
                self.exact_decided += len(decided)
            status[skipped] = UNPROVEN
            self.exact_skipped += len(skipped)
        margins = np.where(np.isnan(batch.margins), -np.inf, batch.margins)
        self.status[positions] = np.maximum(self.status[positions], status)
        self.margin[positions] = np.minimum(self.margin[positions], margins)
        for cls, listed in self.listed.items():
            room = self.max_listed - len(listed)
            if room > 0:
                chosen = np.flatnonzero(status == cls)[:room]
                if len(chosen):
                    chunk = query_set.take(indices[chosen])
                    listed.extend(offender_record(query_set, chunk, i, pos, batch) for i, pos in enumerate(chosen))

    def set_status(self, positions: np.ndarray, status: int, margins: np.ndarray | None = None) -> None:
        """Record queries decided without a forward pass (the certificate's proven bounds); no
        ``margins`` leaves theirs as they are (a certified query's float margin is not computed)."""
        if status != ROBUST:  # every slot starts robust, and a class only ever worsens: robust changes nothing
            self.status[positions] = np.maximum(self.status[positions], status)
        if margins is not None:
            self.margin[positions] = np.minimum(self.margin[positions], margins)

    def counts(self) -> dict:
        block = 1 << 22  # bincount widens to int64: whole, 134 million classes would cost a 1 GB temporary
        found = sum((np.bincount(self.status[b : b + block], minlength=4) for b in range(0, len(self.status), block)), np.zeros(4, dtype=np.int64))
        return {name: int(found[i]) for i, name in enumerate(CLASS_NAMES)}

    def report(self, kind: str, total: int, exhaustive: bool, *, indices: np.ndarray | None = None, chunk_size: int = 0,
               details: dict | None = None) -> RecallReport:
        counts = self.counts()
        n = len(self.status)
        low = self.margin.argmin() if n else 0
        argmin = {}
        if n:
            query = int(low if indices is None else indices[low])
            argmin = {"query": query, **self.query_set.describe(query)}
        return RecallReport(
            kind=kind,
            exact_recall=n > 0 and counts["robust"] == n,
            queries=n,
            total_queries=int(total),
            failures=counts["failures"],
            fragile=counts["fragile"],
            unproven=counts["unproven"],
            robust=counts["robust"],
            min_margin=float(self.margin[[low]][0]) if n else float("nan"),
            exhaustive=exhaustive,
            first_failures=self.listed[FAILURE],
            first_fragile=self.listed[FRAGILE],
            first_unproven=self.listed[UNPROVEN],
            argmin_query=argmin,
            chunk_size=int(chunk_size),
            elapsed_s=time.perf_counter() - self.started,
            details={**(details or {}), "exact_redecided": self.exact_decided, "exact_skipped": self.exact_skipped},
        )


def offender_record(query_set, chunk, i: int, pos: int, batch: MarginBatch) -> dict:
    """One listed query: row ``i`` of ``chunk`` is row ``pos`` of ``batch``."""
    margin = batch.margins[pos]
    return {
        "query": int(chunk.indices[i]),
        **query_set.describe(chunk.indices[i]),
        "expected": int(chunk.answers[i]),
        "predicted": int(chunk.answers[i]) if margin > 0 else int(batch.best_other[pos]),
        "margin": json_float(margin),
        "error_bound": json_float((batch.radius_target[pos] + batch.radius_rival[pos]) * INFLATE),
        "tie": bool(margin == 0),
        "finite": bool(batch.safe[pos]),  # false: NaN/inf here, or an overflow some evaluation may meet
    }


def combine(reports: list[RecallReport], kind: str, started: float, details: dict, max_listed: int = 10) -> RecallReport:
    """One report from several (query kinds, chain lengths, CoT depths): counts add, lists obey ``max_listed``."""
    if len(reports) == 1 and not details:
        return reports[0]
    worst = min(reports, key=lambda r: (not np.isnan(r.min_margin), r.min_margin))
    return RecallReport(
        kind=kind,
        exact_recall=all(r.exact_recall for r in reports),
        queries=sum(r.queries for r in reports),
        total_queries=sum(r.total_queries for r in reports),
        failures=sum(r.failures for r in reports),
        fragile=sum(r.fragile for r in reports),
        unproven=sum(r.unproven for r in reports),
        robust=sum(r.robust for r in reports),
        min_margin=worst.min_margin,
        exhaustive=all(r.exhaustive for r in reports),
        first_failures=[f for r in reports for f in r.first_failures][:max_listed],
        first_fragile=[f for r in reports for f in r.first_fragile][:max_listed],
        first_unproven=[f for r in reports for f in r.first_unproven][:max_listed],
        argmin_query=worst.argmin_query,
        chunk_size=max(r.chunk_size for r in reports),
        elapsed_s=time.perf_counter() - started,
        details=details,
    )


def merged_path_details(reports: list[RecallReport]) -> dict:
    """The fast sequence path's details over several reports: queries certified (summed) and the least proven margin bound."""
    merged = {}
    if any("certified" in r.details for r in reports):
        merged["certified"] = sum(r.details.get("certified", 0) for r in reports)
    bounds = [r.details["min_margin_lower_bound"] for r in reports if "min_margin_lower_bound" in r.details]
    if bounds:
        merged["min_margin_lower_bound"] = min(bounds)
    return merged
