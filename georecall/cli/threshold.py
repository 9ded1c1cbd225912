"""``georecall threshold``: shared-space, Theorem 3's sufficient d next to the least d measured exact."""

from __future__ import annotations

import json
import time

from georecall.cli.args import EXIT_OK, positive_int, probability
from georecall.cli.progress import add_quiet_option, say
from georecall.constructions.codebooks import make_codebook
from georecall.constructions.shared_space import empirical_threshold_d, shared_space_dimensions
from georecall.tables import format_table
from georecall.theory.instance import Instance


def add_parsers(sub) -> None:
    threshold = sub.add_parser("threshold", help="shared-space: Theorem 3's sufficient d next to the least d measured exact")
    threshold.add_argument("--N", type=positive_int("--N", minimum=2, maximum=2**16), nargs="+", default=[64, 256], help="subject counts, 2..65536 (default 64 256)")
    threshold.add_argument("--R", type=positive_int("--R", minimum=1, maximum=64), nargs="+", default=[1, 2, 4], help="relation counts, 1..64 (default 1 2 4)")
    threshold.add_argument("--seeds", type=positive_int("--seeds", minimum=1, maximum=1000), default=3, help="map seeds that must all be exact, 1..1000 (default 3)")
    threshold.add_argument("--delta", type=probability("--delta"), default=1e-3,
                           help="Theorem 3's failure probability in (0, 1), as in build and sizes (default 1e-3)")
    threshold.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet_option(threshold)


def run(args) -> int:
    rows = []
    show = say(args.quiet)
    for N in args.N:
        for R in args.R:
            started = time.perf_counter()
            instance, book = Instance.random(N, R, seed=0), make_codebook("binary", N)
            proven = shared_space_dimensions(N, R, book, args.delta)["d"]
            measured = empirical_threshold_d(instance, book, seeds=tuple(range(args.seeds)), d_high=proven)
            rows.append({"N": N, "R": R, "d0": book.d0, "proven_d": proven, "measured_d": measured["threshold_d"],
                         "failing_d_below": measured["failing_d_below"], "ratio": proven / measured["threshold_d"],
                         "measured_d_over_R_d0": measured["threshold_d"] / (R * book.d0),
                         "seconds": round(time.perf_counter() - started, 2)})
            if show is not None:
                show(f"N={N} R={R}: proven d {proven}, measured {measured['threshold_d']} ({rows[-1]['seconds']} s)")
    if args.json:
        print(json.dumps({"delta": args.delta, "seeds": args.seeds, "rows": rows}))
    else:
        print(format_table(rows, [(k, k) for k in rows[0]]))
    return EXIT_OK


COMMANDS = {"threshold": run}
