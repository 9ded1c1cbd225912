"""``georecall verify``: exact recall of a weights file, every query proven (docs/FORMAT.md §6)."""

from __future__ import annotations

import json

from georecall.cli.args import EXIT_FAILED, EXIT_OK, BadInput, positive_int, progress_printer
from georecall.cli.train import torch_forward
from georecall.formats.containers import load_model
from georecall.verify.chunks import DEFAULT_MEMORY_BUDGET_BYTES
from georecall.verify.run import PATHS, verify_model
from georecall.verify.verdict import DEFAULT_MAX_EXACT


def add_parsers(sub) -> None:
    verify = sub.add_parser("verify", help="check exact recall of a weights file on every query")
    verify.add_argument("file", help="a weights file: .npz (docs/FORMAT.md) or safetensors, ours or a TransformerLens export (docs/interop.md)")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.add_argument("--memory-budget-mb", type=float, default=DEFAULT_MEMORY_BUDGET_BYTES / 2**20, help="memory budget of one chunk (default 256)")
    verify.add_argument("--max-listed", type=positive_int("--max-listed"), default=10, help="failing queries to list (default 10)")
    verify.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    verify.add_argument("--hops", type=positive_int("--hops"), default=None, help="CoT files: check only this depth (default: every depth)")
    verify.add_argument("--max-queries", type=positive_int("--max-queries", minimum=1), default=1_000_000, help="multi-hop/CoT: sample this many queries when there are more (default 1,000,000)")
    verify.add_argument("--seed", type=positive_int("--seed"), default=0, help="seed of the query sample (default 0)")
    verify.add_argument("--path", choices=PATHS, default="auto",
                        help="auto (default: the certificate where it applies, else fast brute force, else the reference), "
                             "certify, fast, reference, torch, or exact (every query decided by ball arithmetic alone: the oracle, "
                             "slow, for small files); details.path names the one that ran")
    verify.add_argument("--backend", choices=("numpy", "torch"), default="numpy", help="torch: the same as --path torch")
    verify.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="with --path torch: cpu (default) or cuda")
    verify.add_argument("--certify", action="store_true", help="the same as --path certify (docs/theorems/certificate.md)")
    verify.add_argument("--max-exact", type=positive_int("--max-exact"), default=DEFAULT_MAX_EXACT,
                        help=f"queries re-decided in ball arithmetic when float64 cannot tell; past it they are unproven (default {DEFAULT_MAX_EXACT:,})")


def run(args) -> int:
    loaded = load_model(args.file)
    path = args.path
    for flag, implied in (("--certify", "certify" if args.certify else None), ("--backend torch", "torch" if args.backend == "torch" else None)):
        if implied is not None:
            if path not in ("auto", implied):
                raise BadInput(f"{flag} contradicts --path {path}")
            path = implied
    if args.device != "cpu" and path != "torch":
        raise BadInput("--device cuda needs --path torch")
    if path == "certify" and "single_hop" not in loaded.weights.meta.query_kinds:
        raise BadInput(f"--path certify handles single-hop queries; this file declares {list(loaded.weights.meta.query_kinds)}")
    forward = torch_forward(loaded.weights, args.device) if path == "torch" else None
    options = dict(max_queries=args.max_queries, seed=args.seed, memory_budget_bytes=int(args.memory_budget_mb * 2**20),
                   max_exact=args.max_exact, progress=progress_printer("verify", args.progress))
    if "cot" in loaded.weights.meta.query_kinds or args.hops is not None:
        options["hops"] = args.hops
    report = verify_model(loaded.weights, loaded.instance, path=path, forward=forward, max_listed=args.max_listed, **options)
    return print_report(report, args)


def print_report(report, args) -> int:
    if args.json:
        print(json.dumps(report.to_json_dict()))
    else:
        print(report.summary())
        kinds = report.details.get("kinds", {})
        if len(kinds) > 1:
            for kind, counts in kinds.items():
                print(f"  {kind}: {counts['queries']:,} queries, {counts['robust']:,} robust, {counts['fragile']:,} fragile, "
                      f"{counts['unproven']:,} unproven, {counts['failures']:,} failing (path {counts['path']})")
        for label, offenders in (("failing", report.first_failures), ("fragile", report.first_fragile), ("unproven", report.first_unproven)):
            for offender in offenders:
                where = ", ".join(f"{k} {offender[k]}" for k in ("subject", "relation", "chain", "step") if k in offender)
                print(f"  {label} query {offender['query']}: {where}: expected {offender['expected']}, "
                      f"predicted {offender['predicted']}, margin {offender['margin']} (float64 error bound {offender['error_bound']})")
    return EXIT_OK if report.exact_recall else EXIT_FAILED


COMMANDS = {"verify": run}
