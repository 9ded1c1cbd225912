"""``georecall bounds``: the lower bounds for N subjects, R relations, k hops at p bits (docs/theorems/bounds.md)."""

from __future__ import annotations

import json
import math

from georecall.cli.args import EXIT_OK, BadInput, positive_int, probability


def add_parsers(sub) -> None:
    bounds = sub.add_parser("bounds", help="lower bounds for N subjects, R relations, k hops at p bits")
    bounds.add_argument("--N", type=positive_int("--N", minimum=2, maximum=10**1000), required=True, help="number of subjects, >= 2")
    bounds.add_argument("--R", type=positive_int("--R", minimum=1, maximum=10**1000), required=True, help="number of relations, >= 1")
    bounds.add_argument("--hops", type=positive_int("--hops", minimum=1, maximum=10**1000), default=1, help="chain length k, >= 1 (default 1)")
    bounds.add_argument("--precision", type=positive_int("--precision", minimum=1, maximum=10**1000), default=1, help="bits per stored number p, >= 1 (default 1)")
    bounds.add_argument("--cot", action="store_true", help="the model may emit intermediate answers (chain-of-thought)")
    bounds.add_argument("--chains", choices=("exact", "up_to"), default="exact", help="'exact' (chains of length k) or 'up_to' (length 1..k)")
    bounds.add_argument("--hops-per-step", type=positive_int("--hops-per-step", minimum=1, maximum=10**1000), default=None,
                        help="with --cot: hops answered per emitted token h (partial chain-of-thought; default 1)")
    bounds.add_argument("--delta", type=probability("--delta", allow_zero=True), default=0.0,
                        help="failure probability, as everywhere in georecall: bound a model that is exact on a random instance "
                             "with probability >= 1 - delta, in [0, 1) (default 0: on every instance)")
    bounds.add_argument("--d", type=positive_int("--d", minimum=1, maximum=10**1000), default=None, help="also report the largest N allowed at this subject dimension")
    bounds.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from georecall.bounds import bounds_summary, max_N

    if args.hops_per_step is not None and not args.cot:
        raise BadInput("--hops-per-step needs --cot")
    h = args.hops_per_step or 1
    summary = {"delta": args.delta, **bounds_summary(args.N, args.R, args.hops, args.precision, args.cot, args.chains, 1.0 - args.delta, h)}
    if args.d is not None:
        summary["d"] = args.d
        n_max = max_N(args.d, args.precision, args.R, args.hops, args.cot, args.chains, h)
        summary["max_N_at_d"] = n_max if n_max.bit_length() <= 1024 else None  # the exact integer, up to 1024 bits
        summary["log2_max_N_at_d"] = math.log2(n_max)
    if args.json:
        print(json.dumps(summary))
    else:
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key.ljust(width)}  {value:,.6g}" if isinstance(value, float) else f"{key.ljust(width)}  {value}")
    return EXIT_OK


COMMANDS = {"bounds": run}
