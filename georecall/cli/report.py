"""``georecall report``: every theorem checked, bounds, plots, training summary: md, html, png, json."""

from __future__ import annotations

import json

from georecall.cli.args import EXIT_FAILED, EXIT_OK
from georecall.cli.progress import add_quiet_option, say


def add_parsers(sub) -> None:
    report = sub.add_parser("report", help="check every theorem, compare with the bounds, plot, summarise training: md, html, png, json")
    report.add_argument("--out", default="georecall-report", help="output folder, written as a whole (default georecall-report)")
    report.add_argument("--force", action="store_true", help="replace --out if it holds a previous georecall report")
    report.add_argument("--quick", action="store_true", help="small sizes: under a minute on 2 cores")
    report.add_argument("--no-training", action="store_true", help="leave out the gradient-descent section")
    report.add_argument("--json", action="store_true", help="print results.json to stdout")
    add_quiet_option(report)


def run(args) -> int:
    from georecall.report import run_report

    results = run_report(args.out, quick=args.quick, progress=say(args.quiet), with_training=not args.no_training, force=args.force)
    if args.json:
        print(json.dumps(results, default=str))
    else:
        failed = [t["theorem"] for t in results["theorems"] if not t["passed"]]
        written = ", ".join(f"{args.out}/{name}" for name in results["files"])
        print(("PASSED" if results["passed"] else f"FAILED ({', '.join(failed)})") + f": wrote {written} ({results['elapsed_s']} s)")
    return EXIT_OK if results["passed"] else EXIT_FAILED


COMMANDS = {"report": run}
