"""The theorem checks of ``georecall report``: each runs a construction or an inequality and returns one row."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from georecall.bounds import compare, max_N
from georecall.bounds.brute_force import count_realisable_tuples
from georecall.bounds.generic import generic_min_d, realisable_tuples_lower
from georecall.bounds.information import log2_factorial, robbins_log2_factorial_bounds
from georecall.constructions.registry import build_construction
from georecall.theory.instance import Instance
from georecall.verify.certify import certify_single_hop
from georecall.verify.run import verify_model, verify_single_hop

MARGIN_TOLERANCE = 1e-9


@dataclass
class TheoremCheck:
    """One row of the report: ``run()`` returns sizes, exhaustive, queries, min_margin, passed, detail."""

    key: str
    statement: str
    doc: str
    run: Callable[[], dict]
    spec: object = None


def construction_check(key: str, statement: str, doc: str, name: str, N: int, R: int, seed: int = 0,
                       weights_hook=None, **options) -> TheoremCheck:
    """Build ``name`` on a random instance and verify it on every query (sampled only where the
    verifier says so); passes when exact with at least the spec's guaranteed margin.
    ``weights_hook(weights)`` may alter the weights first (a test plants a broken model this way)."""
    check = TheoremCheck(key, statement, doc, run=None)

    def run() -> dict:
        instance = Instance.random(N, R, seed)
        model = build_construction(name, instance, **options)
        check.spec = model.spec
        weights = model.weights if weights_hook is None else weights_hook(model.weights)
        report = verify_model(weights, instance)
        promised = model.spec.guaranteed_margin
        margin_ok = not math.isfinite(promised) or report.min_margin >= promised - MARGIN_TOLERANCE
        sizes = ", ".join([f"N={N}", f"R={R}"] + [f"{k}={v}" for k, v in options.items()] + [f"d_model={model.spec.d_model}"])
        return {"sizes": sizes,
                "exhaustive": report.exhaustive, "queries": report.queries, "min_margin": report.min_margin,
                "guaranteed_margin": promised, "passed": bool(report.exact_recall and margin_ok),
                "detail": report.summary()}

    check.run = run
    return check


def inequality_check(key: str, statement: str, doc: str, sizes: str, evaluate: Callable[[], tuple[bool, str]]) -> TheoremCheck:
    def run() -> dict:
        passed, detail = evaluate()
        return {"sizes": sizes, "exhaustive": True, "queries": None, "min_margin": None, "passed": bool(passed), "detail": detail}

    return TheoremCheck(key, statement, doc, run)


def _certificate_check(N: int, R: int) -> TheoremCheck:
    def evaluate():
        instance = Instance.random(N, R, 0)
        weights = build_construction("block", instance).weights
        fast, plain = certify_single_hop(weights, instance), verify_single_hop(weights, instance)
        classes = [(r.robust, r.fragile, r.unproven, r.failures) for r in (fast, plain)]
        same = classes[0] == classes[1] and abs(fast.min_margin - plain.min_margin) <= 1e-6 * max(1.0, abs(plain.min_margin))
        return same and fast.exact_recall, f"certified {fast.summary()}; brute force {plain.summary()}"

    return inequality_check("Certificate", "a certified verdict equals brute force (every verdict class; margin within 1e-6, relative)",
                            "docs/theorems/certificate.md", f"N={N}, R={R}", evaluate)


def _robbins_check(Ns) -> TheoremCheck:
    def evaluate():
        bad = [N for N in Ns if not (robbins_log2_factorial_bounds(N)[0] <= log2_factorial(N) <= robbins_log2_factorial_bounds(N)[1])]
        exact = all(abs(float(log2_factorial(N)) - math.log2(math.factorial(N))) < 1e-9 * max(1, math.log2(math.factorial(N))) for N in Ns if N <= 300)
        return not bad and exact, f"log2 N! inside the Robbins bracket for N in {Ns[0]}..{Ns[-1]}; equal to the integer log2 N! where computed"

    return inequality_check("B1", "Robbins: log2 N! lies between its lower and upper Stirling bounds; H(instance) = R log2 N!",
                            "docs/theorems/bounds.md", f"N = {Ns[0]}..{Ns[-1]}", evaluate)


def _tuples_check(cases) -> TheoremCheck:
    def evaluate():
        rows = [(N, R, k, realisable_tuples_lower(N, R, k), count_realisable_tuples(N, R, k)) for N, R, k in cases]
        return all(lower <= count for *_, lower, count in rows), "; ".join(f"N={N},R={R},k={k}: {lower} <= {count}" for N, R, k, lower, count in rows)

    return inequality_check("B4", "the counted lower bound on realisable k-hop answer tuples never exceeds the enumerated count",
                            "docs/theorems/bounds.md", ", ".join(f"(N={N},R={R},k={k})" for N, R, k in cases), evaluate)


def _max_N_check(cases) -> TheoremCheck:
    def evaluate():
        rows = []
        for d, p, R, k in cases:
            n = max_N(d, p, R, k)
            rows.append(generic_min_d(n, R, p, k) <= d < generic_min_d(n + 1, R, p, k))
        return all(rows), f"{len(rows)} cases: generic_min_d(N_max) <= d < generic_min_d(N_max + 1)"

    values = [sorted({case[i] for case in cases}) for i in range(4)]
    sizes = f"{len(cases)} cases: " + ", ".join(f"{name} in {v}" for name, v in zip(("d", "p", "R", "k"), values))
    return inequality_check("B6", "N_max(d) is the largest N the generic bound allows at subject dimension d",
                            "docs/theorems/bounds.md", sizes, evaluate)


def default_checks(quick: bool) -> list[TheoremCheck]:
    big = (256, 4) if quick else (4096, 8)
    multi = (64, 2) if quick else (1024, 3)
    single = "docs/theorems/single_hop.md"
    many = "docs/theorems/multi_hop.md"
    return [
        construction_check("Theorem 1", "block superposition with binary codes: every margin >= 2", single, "block", *big, codebook="binary"),
        construction_check("Theorem 1 (p=2)", "block superposition with 4-level codes: every margin >= 2", single, "block", *big,
                           codebook="multilevel", precision=2),
        construction_check("Theorem 2", "block superposition with Rademacher codes, d0 = ceil(log2(N(N-1)/(2 delta)))", single,
                           "block", *big, codebook="rademacher"),
        construction_check("Theorem 3", "shared-space superposition at the proven sufficient d", single, "shared-space",
                           *((64, 2) if quick else (1024, 4))),
        construction_check("Theorem 4", "k-hop without chain-of-thought, one routing block per chain (k = 2)", many, "chains", *multi, hops=2),
        construction_check("Theorem 5", "chain-of-thought, every depth <= 3, one hop per emitted token", many, "cot", *multi, hops=3),
        construction_check("Theorem 6", "associative route: k layers of N R lookup units (k = 2)", many, "associative", *multi, hops=2),
        _certificate_check(*((256, 4) if quick else (4096, 8))),
        _robbins_check(list(range(2, 200 if quick else 2000))),
        _tuples_check([(3, 2, 2), (4, 2, 2)] if quick else [(3, 2, 2), (4, 2, 2), (3, 2, 3), (3, 3, 2)]),
        _max_N_check([(d, p, R, k) for d in (16, 64, 256) for p in (1, 4) for R in (1, 4) for k in (1, 2)]),
    ]


def bounds_rows(checks: list[TheoremCheck]) -> list[dict]:
    rows = []
    for check in checks:
        if check.spec is None:
            continue
        result = compare(check.spec)
        rows.append({"construction": check.spec.name, "N": check.spec.N, "R": check.spec.R, "hops": check.spec.hops,
                     "cot": check.spec.cot, "d_model": check.spec.d_model, "precision": result.precision,
                     "bound": result.bound, "ratio": result.ratio, "verdict": result.verdict})
    return rows
