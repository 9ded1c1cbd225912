"""``georecall tradeoff``: the capacity-depth tradeoff, largest N per construction and bound (PNG + JSON)."""

from __future__ import annotations

import json
import os

from georecall.cli.args import EXIT_OK, BadInput, positive_int
from georecall.tables import format_table


def add_parsers(sub) -> None:
    trade = sub.add_parser("tradeoff", help="capacity-depth tradeoff: largest N per construction and bound, k = 1..6")
    trade.add_argument("--d", type=positive_int("--d", minimum=1, maximum=10**1000), required=True, help="residual width d_model, >= 1")
    trade.add_argument("--R", type=positive_int("--R", minimum=1, maximum=10**1000), required=True, help="number of relations, >= 1")
    trade.add_argument("--precision", type=positive_int("--precision", minimum=1, maximum=10**1000), default=1, help="bits per coordinate p (default 1)")
    trade.add_argument("--max-hops", type=positive_int("--max-hops", minimum=1, maximum=12), default=6, help="largest k (default 6)")
    trade.add_argument("--plot", default=None, help="write a PNG of log2 N_max against k (and a .json beside it)")
    trade.add_argument("--force", action="store_true", help="replace the PNG and the JSON if they exist")
    trade.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from georecall.formats.files import check_new_file, write_atomically
    from georecall.capacity_depth import SERIES, plot_tradeoff, tradeoff

    if args.plot:
        if not args.plot.lower().endswith(".png"):
            raise BadInput(f"--plot {args.plot} must name a .png file (the JSON goes beside it, with .json)")
        for path in (args.plot, os.path.splitext(args.plot)[0] + ".json"):
            check_new_file(path, args.force, option="--plot")
    rows = tradeoff(args.d, args.R, args.precision, args.max_hops)
    result = {"d": args.d, "R": args.R, "precision": args.precision, "series": SERIES, "rows": rows}
    if args.plot:
        plot_tradeoff(rows, args.plot, f"d = {args.d}, R = {args.R}, p = {args.precision}")
        write_atomically(os.path.splitext(args.plot)[0] + ".json", lambda raw: raw.write(json.dumps(result, indent=1).encode()))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"log2 of the largest N at d = {args.d}, R = {args.R}, p = {args.precision} (blank: not even d0 = 1 fits)")
        print(format_table([{k: ("" if v is None else v) for k, v in row.items()} for row in rows], [("k", "k")] + [(key, key) for key in SERIES]))
        reduced = [row["k"] for row in rows if not row["bound_no_cot_theorem_b6"]]
        if reduced:
            print(f"bound_no_cot at k = {', '.join(map(str, reduced))}: N_max < 1 + R + ... + R^(k-1), outside Theorem B6: the count "
                  f"drops relations and the cap does not follow 2^(dp/R^k) (docs/theorems/bounds.md)")
    return EXIT_OK


COMMANDS = {"tradeoff": run}
