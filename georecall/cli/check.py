"""``georecall check``: build and verify every construction at default sizes, one table."""

from __future__ import annotations

import json
import time

from georecall.cli.args import EXIT_FAILED, EXIT_OK
from georecall.cli.progress import add_quiet_option, say
from georecall.constructions.registry import REGISTRY, build_construction, check_cases
from georecall.tables import format_table
from georecall.theory.instance import Instance

# `georecall check` runs the registry's cases: every construction, single hop at two sizes
# (shared-space at its proven d), multi-hop, chain-of-thought (full and partial), the associative route.
CHECK_CASES = check_cases()

CHECK_COLUMNS = [
    ("case", "case"),
    ("d_model", "d_model"),
    ("d_mlp", "d_mlp"),
    ("bits_per_coordinate", "bits"),
    ("guaranteed_margin", "promised"),
    ("min_margin", "min margin"),
    ("exact_recall", "exact"),
    ("queries", "queries"),
    ("seconds", "s"),
]


def case_label(construction: str, codebook: str, precision: int, N: int, R: int, options: dict) -> str:
    """One short distinct name per case: K1 block/multilevel p=2 N=256 R=4 hops=2."""
    code = f"{codebook} p={precision}" if codebook == "multilevel" else codebook
    shape = "".join(f" {key}={value}" for key, value in options.items())
    return f"{REGISTRY[construction].label} {construction}/{code} N={N} R={R}{shape}"


def add_parsers(sub) -> None:
    check = sub.add_parser("check", help="build and verify every construction at default sizes; print a table")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet_option(check)


def run_check_case(construction: str, codebook: str, precision: int, N: int, R: int, options: dict) -> dict:
    started = time.perf_counter()
    instance = Instance.random(N, R, seed=0)
    model = build_construction(construction, instance, codebook=codebook, precision=precision, **options)
    report = model.verify()
    spec = model.spec
    return {
        "case": case_label(construction, codebook, precision, N, R, options),
        "construction": spec.name,
        "N": N,
        "R": R,
        "d_model": spec.d_model,
        "d_mlp": spec.d_mlp,
        "subject_params": spec.subject_params,
        "shared_params": spec.shared_params,
        "bits_per_coordinate": spec.bits_per_coordinate,
        "guaranteed_margin": spec.guaranteed_margin,
        "min_margin": report.min_margin,
        "exact_recall": report.exact_recall,
        "queries": report.queries,
        "exhaustive": report.exhaustive,
        "seconds": round(time.perf_counter() - started, 3),
    }


def run(args) -> int:
    rows = []
    show = say(args.quiet)
    for i, case in enumerate(CHECK_CASES, 1):
        if show is not None:  # a line per case: each is one build and one exhaustive proof
            show(f"[{i}/{len(CHECK_CASES)}] {case_label(*case)}")
        rows.append(run_check_case(*case))
    all_exact = all(row["exact_recall"] for row in rows)
    if args.json:
        print(json.dumps({"all_exact": all_exact, "rows": rows}))
    else:
        print(format_table(rows, CHECK_COLUMNS))
        scope = "every query of every case checked (exhaustive)" if all(row["exhaustive"] for row in rows) else "some cases sampled (see exhaustive)"
        print(f"{scope}; " + ("all exact (every query proven correct and float64-robust)" if all_exact else "SOME CASES FAILED"))
    return EXIT_OK if all_exact else EXIT_FAILED


COMMANDS = {"check": run}
