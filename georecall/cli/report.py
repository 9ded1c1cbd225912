"""``georecall report``: every theorem checked, bounds, plots, training summary: md, html, png, json."""

from __future__ import annotations

import json
import sys

from georecall.cli.args import EXIT_FAILED, EXIT_OK


def add_parsers(sub) -> None:
    report = sub.add_parser("report", help="check every theorem, compare with the bounds, plot, summarise training: md, html, png, json")
    report.add_argument("--out", default="georecall-report", help="output folder (default georecall-report)")
    report.add_argument("--quick", action="store_true", help="small sizes: under a minute on 2 cores")
    report.add_argument("--no-training", action="store_true", help="leave out the gradient-descent section")
    report.add_argument("--json", action="store_true", help="print results.json to stdout")


def run(args) -> int:
    from georecall.report import run_report

    def say(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    results = run_report(args.out, quick=args.quick, progress=say, with_training=not args.no_training)
    if args.json:
        print(json.dumps(results, default=str))
    else:
        failed = [t["theorem"] for t in results["theorems"] if not t["passed"]]
        print(("PASSED" if results["passed"] else f"FAILED ({', '.join(failed)})") + f": report written to {args.out}/report.md, "
              f"report.html, results.json ({results['elapsed_s']} s)")
    return EXIT_OK if results["passed"] else EXIT_FAILED


COMMANDS = {"report": run}
