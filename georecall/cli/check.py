"""``georecall check``: build and verify every construction at default sizes, one table."""

from __future__ import annotations

import json
import sys
import time

from georecall.cli.args import EXIT_FAILED, EXIT_OK
from georecall.constructions.registry import build_construction
from georecall.tables import format_table
from georecall.theory.instance import Instance

# `georecall check` defaults: every construction kind, single hop at two sizes (shared-space at its
# proven d), multi-hop, chain-of-thought (full and partial) and the associative route.
CHECK_CASES = [
    ("block", "binary", 1, 256, 4, {}),
    ("planar", "binary", 1, 256, 4, {}),
    ("planar", "multilevel", 2, 4096, 8, {}),
    ("block", "multilevel", 2, 256, 4, {}),
    ("block", "multilevel", 4, 256, 4, {}),
    ("block", "rademacher", 1, 256, 4, {}),
    ("block", "binary", 1, 4096, 8, {}),
    ("block", "multilevel", 2, 4096, 8, {}),
    ("block", "rademacher", 1, 4096, 8, {}),
    ("shared-space", "binary", 1, 64, 2, {}),
    ("shared-space", "binary", 1, 256, 4, {}),
    ("chains", "binary", 1, 256, 3, {"hops": 2}),
    ("chains", "binary", 1, 64, 2, {"hops": 3, "chains": "up_to"}),
    ("cot", "binary", 1, 256, 3, {"hops": 3}),
    ("cot", "binary", 1, 64, 2, {"hops": 4, "cot_steps": 2}),
    ("associative", "binary", 1, 256, 3, {"hops": 2}),
]

CHECK_COLUMNS = [
    ("construction", "construction"),
    ("N", "N"),
    ("R", "R"),
    ("d_model", "d_model"),
    ("d_mlp", "d_mlp"),
    ("subject_params", "subject params"),
    ("shared_params", "shared params"),
    ("bits_per_coordinate", "bits/coord"),
    ("guaranteed_margin", "proven margin"),
    ("min_margin", "min margin"),
    ("exact_recall", "exact"),
    ("queries", "queries"),
    ("seconds", "seconds"),
]


def add_parsers(sub) -> None:
    check = sub.add_parser("check", help="build and verify every construction at default sizes; print a table")
    check.add_argument("--json", action="store_true", help="print one JSON object")


def run_check_case(construction: str, codebook: str, precision: int, N: int, R: int, options: dict) -> dict:
    started = time.perf_counter()
    instance = Instance.random(N, R, seed=0)
    model = build_construction(construction, instance, codebook=codebook, precision=precision, **options)
    report = model.verify()
    spec = model.spec
    shape = "".join(f", {k}={v}" for k, v in options.items())
    return {
        "construction": spec.name + (f"(p={precision})" if codebook == "multilevel" else "") + shape,
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
    for i, case in enumerate(CHECK_CASES, 1):
        if not args.json:
            sys.stderr.write(f"[{i}/{len(CHECK_CASES)}] {case[0]}/{case[1]} N={case[3]} R={case[4]}\n")
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
