"""``georecall sizes``: d_model, d_mlp and parameter counts of every codebook at given N and R."""

from __future__ import annotations

import json

from georecall.cli.args import EXIT_OK, positive_int, probability
from georecall.constructions.registry import REGISTRY, code_size, construction_shape
from georecall.tables import format_table


def add_parsers(sub) -> None:
    sizes = sub.add_parser("sizes", help="d_model, d_mlp and parameter counts of every construction in the registry at given N and R")
    sizes.add_argument("--N", type=positive_int("--N", minimum=2), nargs="+", default=[2**8, 2**12, 2**16], help="subject counts (default 256 4096 65536)")
    sizes.add_argument("--R", type=positive_int("--R", minimum=1, maximum=2**16), nargs="+", default=[1, 4, 8], help="relation counts (default 1 4 8)")
    sizes.add_argument("--delta", type=probability("--delta"), default=1e-3, help="failure probability in (0, 1) of random codes and maps (default 1e-3)")
    sizes.add_argument("--json", action="store_true", help="print one JSON object")


VARIANTS = (("binary", 1), ("multilevel", 2), ("multilevel", 4), ("rademacher", 1))
COLUMNS = [("construction", "construction"), ("N", "N"), ("R", "R"), ("d0", "d0"), ("subject_dim", "d"), ("d_model", "d_model"),
           ("d_mlp", "d_mlp"), ("subject_params", "subject params"), ("shared_params", "shared params")]


def size_rows(N: int, R: int, delta: float) -> list[dict]:
    """One row per construction of the registry (every codebook it takes, at its default options;
    K3-K5 at k = 2 hops), from closed forms: nothing is built, so any N is answered at once."""
    rows = []
    for name, entry in REGISTRY.items():
        for codebook, precision in VARIANTS:
            if codebook not in entry.codebooks or (codebook != "binary" and entry.reads and "hops" in entry.reads):
                continue
            code = code_size(codebook, N, precision, delta)
            shape = construction_shape(name, N, R, code, delta=delta, **entry.defaults)
            label = f"{entry.label} {name}/{codebook}" + (f" p={precision}" if codebook == "multilevel" else "") + \
                "".join(f" {k}={v}" for k, v in entry.defaults.items())
            rows.append({"construction": label, "N": N, "R": R, "d0": code.d0, "subject_dim": shape.subject_dim, "d_model": shape.d_model,
                         "d_mlp": max(m for _, _, m in shape.layers), **shape.parameter_counts(N, R)})
    return rows


def run(args) -> int:
    rows = [row for N in args.N for R in args.R for row in size_rows(N, R, args.delta)]
    if args.json:
        print(json.dumps({"delta": args.delta, "rows": rows}))
    else:
        print(format_table(rows, COLUMNS))
        print(f"shared-space at Theorem 3's d for failure probability {args.delta:g}, with code distance 1 (measured codes may need less); "
              "d: the subject-embedding dimension")
    return EXIT_OK


COMMANDS = {"sizes": run}
