"""``georecall sizes``: d_model, d_mlp and parameter counts of every codebook at given N and R."""

from __future__ import annotations

import json

from georecall.cli.args import EXIT_OK, positive_int
from georecall.constructions.codebooks import make_codebook
from georecall.constructions.registry import build_construction
from georecall.constructions.shared_space import shared_space_dimensions
from georecall.tables import format_table
from georecall.theory.instance import Instance


def add_parsers(sub) -> None:
    sizes = sub.add_parser("sizes", help="d_model, d_mlp and parameter counts of every codebook at given N and R")
    sizes.add_argument("--N", type=positive_int("--N"), nargs="+", default=[2**8, 2**12, 2**16], help="subject counts (default 256 4096 65536)")
    sizes.add_argument("--R", type=positive_int("--R"), nargs="+", default=[1, 4, 8], help="relation counts (default 1 4 8)")
    sizes.add_argument("--delta", type=float, default=1e-3, help="failure probability for random codes and maps (default 1e-3)")
    sizes.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    rows = []
    for N in args.N:
        for R in args.R:
            instance = Instance.random(N, R, seed=0)
            for codebook, precision in (("binary", 1), ("multilevel", 2), ("multilevel", 4), ("rademacher", 1)):
                spec = build_construction("block", instance, codebook=codebook, precision=precision, delta=args.delta).spec
                rows.append({"construction": spec.name + (f"(p={precision})" if codebook == "multilevel" else ""), "N": N, "R": R,
                             "d0": spec.extra["d0"], "d_model": spec.d_model, "d_mlp": spec.d_mlp,
                             "subject_params": spec.subject_params, "shared_params": spec.shared_params})
            dims = shared_space_dimensions(N, R, make_codebook("binary", N), args.delta)
            rows.append({"construction": "shared_space/binary (proven d)", "N": N, "R": R, **dims})
    if args.json:
        print(json.dumps({"delta": args.delta, "rows": rows}))
    else:
        print(format_table(rows, [("construction", "construction"), ("N", "N"), ("R", "R"), ("d0", "d0"), ("d", "d"),
                                  ("d_model", "d_model"), ("d_mlp", "d_mlp"), ("subject_params", "subject params"),
                                  ("shared_params", "shared params")]))
    return EXIT_OK


COMMANDS = {"sizes": run}
