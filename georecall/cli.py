"""The ``georecall`` command line. Exit codes: 0 success/exact, 1 a check failed (not exact), 2 bad input, 3 internal error."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from georecall.constructions.codebooks import CODEBOOKS
from georecall.constructions.codebooks import make_codebook
from georecall.constructions.registry import CONSTRUCTIONS, build_construction
from georecall.constructions.shared_space import empirical_threshold_d, shared_space_dimensions
from georecall.tables import format_table
from georecall.theory.checks import InputError
from georecall.theory.spec import ConstructionSpec
from georecall.theory.instance import Instance
from georecall.theory.io import CONTAINERS, load_model, save_model, save_model_as
from georecall.theory.verify import DEFAULT_MEMORY_BUDGET_BYTES
from georecall.theory.verdict import DEFAULT_MAX_EXACT
from georecall.theory.verify import PATHS, verify_model
from georecall import train_cli

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3

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


class BadInput(Exception):
    """Raised for anything the user must fix; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise BadInput(f"{self.prog}: {message}")


def _positive_int(name, minimum=0):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


# Options that only some constructions read; build refuses them elsewhere instead of ignoring them.
CONSTRUCTION_OPTION_DEFAULTS = {"precision": 1, "delta": 1e-3, "codebook_seed": 0, "d": None, "maps_seed": 0, "chains": "exact",
                                "cot_steps": None}


def add_construction_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--construction", choices=CONSTRUCTIONS, default="block", help="the construction (default block)")
    p.add_argument("--codebook", choices=CODEBOOKS, default="binary", help="the codebook (default binary)")
    p.add_argument("--N", type=_positive_int("--N"), default=256, help="number of subjects, >= 2 (default 256)")
    p.add_argument("--R", type=_positive_int("--R"), default=4, help="number of relations, >= 1 (default 4)")
    p.add_argument("--seed", type=_positive_int("--seed"), default=0, help="seed of the random facts (default 0)")
    p.add_argument("--precision", type=_positive_int("--precision", minimum=1), default=None, help="bits per coordinate p; --codebook multilevel only (default 1)")
    p.add_argument("--delta", type=float, default=None, help="failure probability in (0, 1) of random codes or random maps; --codebook rademacher or --construction shared-space only (default 1e-3)")
    p.add_argument("--codebook-seed", type=_positive_int("--codebook-seed"), default=None, help="seed of random codes; --codebook rademacher only (default 0)")
    p.add_argument("--d", type=_positive_int("--d", minimum=1), default=None, help="shared-space dimension; --construction shared-space only (default: the proven sufficient d)")
    p.add_argument("--maps-seed", type=_positive_int("--maps-seed"), default=None, help="seed of the maps M_r; --construction shared-space only (default 0)")
    p.add_argument("--hops", type=_positive_int("--hops", minimum=1), default=1, help="chain length k (max depth under --cot); k > 1 needs --construction chains or associative, or --cot")
    p.add_argument("--chains", choices=("exact", "up_to"), default=None, help="no-CoT chains: exact (length k) or up_to (1..k); --construction chains only (default exact)")
    p.add_argument("--cot", action="store_true", help="chain-of-thought construction answering every depth <= --hops")
    p.add_argument("--cot-steps", type=_positive_int("--cot-steps", minimum=1), default=None, help="with --cot: emit T tokens of ceil(k/T) hops each (partial CoT)")


def refuse_inapplicable_options(args, name: str) -> None:
    """An option the chosen construction does not read is refused, naming it, never silently ignored."""
    readers = {
        "precision": args.codebook == "multilevel",
        "delta": args.codebook == "rademacher" or name == "shared-space",
        "codebook_seed": args.codebook == "rademacher",
        "d": name == "shared-space",
        "maps_seed": name == "shared-space",
        "chains": name == "chains",
    }
    for option, applies in readers.items():
        if getattr(args, option) is not None and not applies:
            flag = "--" + option.replace("_", "-")
            raise BadInput(f"{flag} does not apply to --construction {name} with --codebook {args.codebook}")
    for option, default in CONSTRUCTION_OPTION_DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, default)


def make_parser() -> Parser:
    parser = Parser(prog="georecall", description="Build and verify geometric factual-recall constructions.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    build = sub.add_parser("build", help="build a construction and write its weights file")
    add_construction_options(build)
    build.add_argument("--out", required=True, help="path of the .npz weights file to write (written atomically)")
    build.add_argument("--force", action="store_true", help="replace --out if it exists")
    build.add_argument("--json", action="store_true", help="print the spec as one JSON object")

    verify = sub.add_parser("verify", help="check exact recall of a weights file on every query")
    verify.add_argument("file", help="a weights file: .npz (docs/FORMAT.md) or safetensors, ours or a TransformerLens export (docs/interop.md)")
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    verify.add_argument("--memory-budget-mb", type=float, default=DEFAULT_MEMORY_BUDGET_BYTES / 2**20, help="memory budget of one chunk (default 256)")
    verify.add_argument("--max-listed", type=_positive_int("--max-listed"), default=10, help="failing queries to list (default 10)")
    verify.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")
    verify.add_argument("--hops", type=_positive_int("--hops"), default=None, help="CoT files: check only this depth (default: every depth)")
    verify.add_argument("--max-queries", type=_positive_int("--max-queries", minimum=1), default=1_000_000, help="multi-hop/CoT: sample this many queries when there are more (default 1,000,000)")
    verify.add_argument("--seed", type=_positive_int("--seed"), default=0, help="seed of the query sample (default 0)")
    verify.add_argument("--path", choices=PATHS, default="auto",
                        help="auto (default: the certificate where it applies, else fast brute force, else the reference), "
                             "certify, fast, reference, torch, or exact (every query decided by ball arithmetic alone: the oracle, "
                             "slow, for small files); details.path names the one that ran")
    verify.add_argument("--backend", choices=("numpy", "torch"), default="numpy", help="torch: the same as --path torch")
    verify.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="with --path torch: cpu (default) or cuda")
    verify.add_argument("--certify", action="store_true", help="the same as --path certify (docs/theorems/certificate.md)")
    verify.add_argument("--max-exact", type=_positive_int("--max-exact"), default=DEFAULT_MAX_EXACT,
                        help=f"queries re-decided in ball arithmetic when float64 cannot tell; past it they are unproven (default {DEFAULT_MAX_EXACT:,})")

    export = sub.add_parser("export", help="write a weights file in another container: npz, safetensors or a TransformerLens state dict")
    export.add_argument("file", help="a weights file in any container georecall reads")
    export.add_argument("--to", choices=CONTAINERS, required=True,
                        help="npz (docs/FORMAT.md), safetensors (the same arrays), or transformer-lens (a safetensors TransformerLens "
                             "native state dict with its config; docs/interop.md)")
    export.add_argument("out", help="the file to write (atomically)")
    export.add_argument("--force", action="store_true", help="replace OUT if it exists")

    check = sub.add_parser("check", help="build and verify every construction at default sizes; print a table")
    check.add_argument("--json", action="store_true", help="print one JSON object")

    bounds = sub.add_parser("bounds", help="lower bounds for N subjects, R relations, k hops at p bits")
    bounds.add_argument("--N", type=_positive_int("--N"), required=True, help="number of subjects, >= 2")
    bounds.add_argument("--R", type=_positive_int("--R"), required=True, help="number of relations, >= 1")
    bounds.add_argument("--hops", type=_positive_int("--hops"), default=1, help="chain length k, >= 1 (default 1)")
    bounds.add_argument("--precision", type=_positive_int("--precision"), default=1, help="bits per stored number p, >= 1 (default 1)")
    bounds.add_argument("--cot", action="store_true", help="the model may emit intermediate answers (chain-of-thought)")
    bounds.add_argument("--chains", choices=("exact", "up_to"), default="exact", help="'exact' (chains of length k) or 'up_to' (length 1..k)")
    bounds.add_argument("--hops-per-step", type=_positive_int("--hops-per-step", minimum=1), default=None,
                        help="with --cot: hops answered per emitted token h (partial chain-of-thought; default 1)")
    bounds.add_argument("--delta", type=float, default=1.0, help="success probability on a random instance, in (0, 1] (default 1)")
    bounds.add_argument("--d", type=_positive_int("--d"), default=None, help="also report the largest N allowed at this subject dimension")
    bounds.add_argument("--json", action="store_true", help="print one JSON object")

    compare = sub.add_parser("compare", help="a construction (weights .npz or spec .json) against the lower bounds")
    compare.add_argument("file", help="a .npz weights file, or a .json ConstructionSpec")
    compare.add_argument("--precision", type=_positive_int("--precision"), default=None, help="bits per stored number p (default: the spec's bits per coordinate)")
    compare.add_argument("--json", action="store_true", help="print one JSON object")

    trade = sub.add_parser("tradeoff", help="capacity-depth tradeoff: largest N per construction and bound, k = 1..6")
    trade.add_argument("--d", type=_positive_int("--d"), required=True, help="residual width d_model, >= 1")
    trade.add_argument("--R", type=_positive_int("--R"), required=True, help="number of relations, >= 1")
    trade.add_argument("--precision", type=_positive_int("--precision"), default=1, help="bits per coordinate p (default 1)")
    trade.add_argument("--max-hops", type=_positive_int("--max-hops"), default=6, help="largest k (default 6)")
    trade.add_argument("--plot", default=None, help="write a PNG of log2 N_max against k (and a .json beside it)")
    trade.add_argument("--force", action="store_true", help="replace the PNG and the JSON if they exist")
    trade.add_argument("--json", action="store_true", help="print one JSON object")

    sizes = sub.add_parser("sizes", help="d_model, d_mlp and parameter counts of every codebook at given N and R")
    sizes.add_argument("--N", type=_positive_int("--N"), nargs="+", default=[2**8, 2**12, 2**16], help="subject counts (default 256 4096 65536)")
    sizes.add_argument("--R", type=_positive_int("--R"), nargs="+", default=[1, 4, 8], help="relation counts (default 1 4 8)")
    sizes.add_argument("--delta", type=float, default=1e-3, help="failure probability for random codes and maps (default 1e-3)")
    sizes.add_argument("--json", action="store_true", help="print one JSON object")

    threshold = sub.add_parser("threshold", help="shared-space: Theorem 3's sufficient d next to the least d measured exact")
    threshold.add_argument("--N", type=_positive_int("--N"), nargs="+", default=[64, 256], help="subject counts (default 64 256)")
    threshold.add_argument("--R", type=_positive_int("--R"), nargs="+", default=[1, 2, 4], help="relation counts (default 1 2 4)")
    threshold.add_argument("--seeds", type=_positive_int("--seeds", minimum=1), default=3, help="map seeds that must all be exact (default 3)")
    threshold.add_argument("--delta", type=float, default=0.01, help="the theorem's failure probability (default 0.01)")
    threshold.add_argument("--json", action="store_true", help="print one JSON object")
    report = sub.add_parser("report", help="check every theorem, compare with the bounds, plot, summarise training: md, html, png, json")
    report.add_argument("--out", default="georecall-report", help="output folder (default georecall-report)")
    report.add_argument("--quick", action="store_true", help="small sizes: under a minute on 2 cores")
    report.add_argument("--no-training", action="store_true", help="leave out the gradient-descent section")
    report.add_argument("--json", action="store_true", help="print results.json to stdout")
    train_cli.add_parsers(sub, _positive_int)
    return parser


def progress_printer(label: str, force: bool):
    if not (force or sys.stderr.isatty()):
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.2:
            return
        last[0] = now
        filled = int(30 * done / max(total, 1))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} queries")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def construction_kwargs(args) -> dict:
    return dict(
        codebook=args.codebook,
        precision=args.precision,
        delta=args.delta,
        codebook_seed=args.codebook_seed,
        d=args.d,
        maps_seed=args.maps_seed,
        hops=args.hops,
        chains=args.chains,
        cot_steps=args.cot_steps,
    )


def cmd_build(args) -> int:
    name = "cot" if args.cot else args.construction
    if args.cot_steps is not None and not args.cot:
        raise BadInput("--cot-steps needs --cot")
    if args.cot and args.construction != "block":
        raise BadInput(f"--cot builds its own construction; --construction {args.construction} does not apply")
    refuse_inapplicable_options(args, name)
    if os.path.exists(args.out) and not args.force:
        raise BadInput(f"--out {args.out} exists; pass --force to replace it")
    instance = Instance.random(args.N, args.R, args.seed)
    if args.hops > 1 and name in ("block", "planar", "shared-space"):
        raise BadInput(f"--hops {args.hops} needs --construction chains or associative, or --cot")
    model = build_construction(name, instance, **construction_kwargs(args))
    save_model(args.out, model.weights, instance, model.spec)
    if args.json:
        print(json.dumps({"file": args.out, "spec": model.spec.to_json_dict()}))
    else:
        s = model.spec
        print(f"wrote {args.out}: {s.name}, N={s.N}, R={s.R}, d_model={s.d_model}, d_mlp={s.d_mlp}, "
              f"subject params {s.subject_params:,}, shared params {s.shared_params:,}")
    return EXIT_OK


def cmd_export(args) -> int:
    if os.path.exists(args.out) and not args.force:
        raise BadInput(f"OUT {args.out} exists; pass --force to replace it")
    loaded = load_model(args.file)
    save_model_as(args.out, args.to, loaded.weights, loaded.instance, loaded.spec)
    print(f"wrote {args.out}: {args.to}, N={loaded.weights.meta.N}, R={loaded.weights.meta.R}, d_model={loaded.weights.d_model}")
    return EXIT_OK


def cmd_verify(args) -> int:
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
    forward = train_cli.torch_forward(loaded.weights, args.device) if path == "torch" else None
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


def cmd_check(args) -> int:
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


def cmd_report(args) -> int:
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


def cmd_tradeoff(args) -> int:
    from georecall.tradeoff import SERIES, plot_tradeoff, tradeoff

    if args.plot:
        for path in (args.plot, os.path.splitext(args.plot)[0] + ".json"):
            if os.path.exists(path) and not args.force:
                raise BadInput(f"{path} exists (--plot writes it); pass --force to replace it")
    rows = tradeoff(args.d, args.R, args.precision, args.max_hops)
    result = {"d": args.d, "R": args.R, "precision": args.precision, "series": SERIES, "rows": rows}
    if args.plot:
        plot_tradeoff(rows, args.plot, f"d = {args.d}, R = {args.R}, p = {args.precision}")
        with open(os.path.splitext(args.plot)[0] + ".json", "w") as handle:
            json.dump(result, handle, indent=1)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"log2 of the largest N at d = {args.d}, R = {args.R}, p = {args.precision} (blank: not even d0 = 1 fits)")
        print(format_table([{k: ("" if v is None else v) for k, v in row.items()} for row in rows], [("k", "k")] + [(key, key) for key in SERIES]))
        reduced = [row["k"] for row in rows if not row["bound_no_cot_full_R"]]
        if reduced:
            print(f"bound_no_cot at k = {', '.join(map(str, reduced))}: N_max < 1 + R + ... + R^(k-1), so the count drops relations "
                  f"and the cap does not follow 2^(dp/R^k) (docs/theorems/bounds.md, Theorem B6)")
    return EXIT_OK


def cmd_sizes(args) -> int:
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


def cmd_threshold(args) -> int:
    rows = []
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
            if not args.json:
                sys.stderr.write(f"N={N} R={R}: proven d {proven}, measured {measured['threshold_d']}\n")
    if args.json:
        print(json.dumps({"delta": args.delta, "seeds": args.seeds, "rows": rows}))
    else:
        print(format_table(rows, [(k, k) for k in rows[0]]))
    return EXIT_OK


def cmd_bounds(args) -> int:
    from georecall.bounds import bounds_summary, max_N

    if args.hops_per_step is not None and not args.cot:
        raise BadInput("--hops-per-step needs --cot")
    h = args.hops_per_step or 1
    summary = bounds_summary(args.N, args.R, args.hops, args.precision, args.cot, args.chains, args.delta, h)
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


def load_comparable(path: str):
    if path.endswith(".json"):
        try:
            with open(path) as handle:
                return ConstructionSpec.from_json_dict(json.load(handle))
        except FileNotFoundError:
            raise BadInput(f"spec file {path} does not exist") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise BadInput(f"{path} is not a ConstructionSpec JSON object ({exc})") from None
    return load_model(path)


def cmd_compare(args) -> int:
    from georecall.bounds import compare

    result = compare(load_comparable(args.file), args.precision)
    if args.json:
        print(json.dumps(result.to_json_dict()))
    else:
        print(result.summary())
        print(format_table(result.bounds, [("name", "bound"), ("needed_bits", "needed bits"), ("spent_bits", "spent bits"),
                                           ("ratio", "ratio"), ("ratio_d_model", "ratio on d_model"), ("holds", "respected"),
                                           ("statement", "statement")]))
        for note in result.notes:
            print(f"note: {note}")
    return EXIT_FAILED if result.verdict == "impossible" else EXIT_OK


COMMANDS = {"tradeoff": cmd_tradeoff, "bounds": cmd_bounds, "compare": cmd_compare, "build": cmd_build, "verify": cmd_verify, "export": cmd_export, "check": cmd_check, "sizes": cmd_sizes, "threshold": cmd_threshold,
            "report": cmd_report, "train": train_cli.cmd_train, "sweep": train_cli.cmd_sweep}


def main(argv: list[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (BadInput, InputError, OSError, train_cli.NeedsTorch) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"georecall: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("georecall: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a verdict: never exit 0 or 1 for it
        print(f"georecall: internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              f"please report it with the command that caused it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
