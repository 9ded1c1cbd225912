"""``georecall verify``: exact recall of a weights file, every query proven (docs/FORMAT.md §6)."""

from __future__ import annotations

import argparse
import json
import os

from georecall.cli.args import EXIT_FAILED, EXIT_OK, BadInput, positive_int, real, warn_deprecated
from georecall.cli.progress import add_quiet_option, counter
from georecall.cli.train import torch_forward
from georecall.formats.containers import load_model
from georecall.verify.chunks import DEFAULT_MEMORY_BUDGET_BYTES
from georecall.verify.run import PATHS, verify_model
from georecall.verify.threads import threads_for
from georecall.verify.verdict import DEFAULT_MAX_EXACT


LOAD_BYTES_PER_THREAD = 256 * 2**20  # a file's large members are checked on a second thread past this much of it


def add_parsers(sub) -> None:
    verify = sub.add_parser("verify", help="check exact recall of a weights file on every query")
    verify.add_argument("file", help="a weights file: .npz (docs/FORMAT.md) or safetensors, ours or a TransformerLens export (docs/interop.md)")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.add_argument("--memory-budget-mb", type=real("--memory-budget-mb", minimum=1, maximum=2**20), default=DEFAULT_MEMORY_BUDGET_BYTES / 2**20,
                        help="memory budget of one chunk in MiB, 1..1048576 (default 256)")
    verify.add_argument("--max-listed", type=positive_int("--max-listed"), default=10, help="failing queries to list (default 10)")
    add_quiet_option(verify)
    verify.add_argument("--hops", type=positive_int("--hops", minimum=1, maximum=64), default=None, help="CoT files: check only this depth (default: every depth)")
    verify.add_argument("--max-queries", type=positive_int("--max-queries", minimum=1), default=None,
                        help="multi-hop/CoT: sample this many queries per chain length or depth when there are more (default 16,777,216 "
                             "on the fast path for one-layer models, 1,000,000 on the reference)")
    verify.add_argument("--seed", type=positive_int("--seed"), default=0, help="seed of the query sample (default 0)")
    verify.add_argument("--path", choices=PATHS, default="auto",
                        help="auto (default: single hop on the certificate where it applies, else fast brute force; chains and CoT of "
                             "one-layer files on the fast sequence path; else the reference), certify, fast, reference, torch, or exact "
                             "(every query decided by ball arithmetic alone: the oracle, slow, for small files); details.path names the one that ran")
    verify.add_argument("--backend", choices=("numpy", "torch"), default=None, help=argparse.SUPPRESS)  # deprecated: --path torch
    verify.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="with --path torch: cpu (default) or cuda")
    verify.add_argument("--certify", action="store_true", help=argparse.SUPPRESS)  # deprecated: --path certify
    verify.add_argument("--max-exact", type=positive_int("--max-exact"), default=DEFAULT_MAX_EXACT,
                        help=f"queries re-decided in ball arithmetic when float64 cannot tell; past it they are unproven (default {DEFAULT_MAX_EXACT:,})")


def run(args) -> int:
    size = os.path.getsize(args.file) if os.path.isfile(args.file) else 0  # load_model names what is wrong with anything else
    loaded = load_model(args.file, workers=threads_for(size, LOAD_BYTES_PER_THREAD, most=2))
    path = args.path
    backend = {None: None, "numpy": "auto", "torch": "torch"}[args.backend]
    for flag, implied in (("--certify", "certify" if args.certify else None), (f"--backend {args.backend}", backend)):
        if implied is not None:
            warn_deprecated(flag, "--path " + implied)
            if implied != "auto" and path not in ("auto", implied):
                raise BadInput(f"{flag} contradicts --path {path}")
            path = implied if implied != "auto" else path
    if args.device != "cpu" and path != "torch":
        raise BadInput("--device cuda needs --path torch")
    if path == "certify" and "single_hop" not in loaded.weights.meta.query_kinds:
        raise BadInput(f"--path certify handles single-hop queries; this file declares {list(loaded.weights.meta.query_kinds)}")
    forward = torch_forward(loaded.weights, args.device) if path == "torch" else None
    options = dict(seed=args.seed, memory_budget_bytes=int(args.memory_budget_mb * 2**20),
                   max_exact=args.max_exact, progress=counter("verify", "queries", args.quiet))
    if args.max_queries is not None:
        options["max_queries"] = args.max_queries
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
