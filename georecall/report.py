"""``georecall report``: check every theorem, compare every construction with the bounds, plot the
capacity-depth tradeoff and summarise the gradient-descent experiments, in one folder.

Writes report.md, a self-contained report.html (plots inlined), the PNG plots and results.json
(keys: ``passed``, ``theorems``, ``bounds_table``, ``tradeoff``, ``training``, ``quick``,
``elapsed_s``). A theorem check passes when every query is answered with at least the margin the
theorem promises (or the numeric inequality holds); any failure makes the report fail.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from georecall.bounds import compare, max_N
from georecall.bounds.brute_force import count_realisable_tuples
from georecall.bounds.generic import generic_min_d, realisable_tuples_lower
from georecall.bounds.information import log2_factorial, robbins_log2_factorial_bounds
from georecall.constructions.registry import build_construction
from georecall.tradeoff import plot_tradeoff, tradeoff
from georecall.theory.certify import certify_single_hop
from georecall.theory.instance import Instance
from georecall.theory.verify import verify_single_hop
from georecall.theory.verify import verify_model

MARGIN_TOLERANCE = 1e-9
ARCHIVED_SWEEP = Path(__file__).resolve().parent.parent / "results" / "training" / "threshold_sweep" / "sweep.json"


@dataclass
class TheoremCheck:
    """One row of the report: ``run()`` returns sizes, exhaustive, queries, min_margin, passed, detail."""

    key: str
    statement: str
    doc: str
    run: Callable[[], dict]
    spec: object = None


def construction_check(key: str, statement: str, doc: str, name: str, N: int, R: int, seed: int = 0,
                       weights_hook=None, **options) -> TheoremCheck:
    """Build ``name`` on a random instance and verify it on every query (sampled only where the
    verifier says so); passes when exact with at least the spec's guaranteed margin.
    ``weights_hook(weights)`` may alter the weights first (a test plants a broken model this way)."""
    check = TheoremCheck(key, statement, doc, run=None)

    def run() -> dict:
        instance = Instance.random(N, R, seed)
        model = build_construction(name, instance, **options)
        check.spec = model.spec
        weights = model.weights if weights_hook is None else weights_hook(model.weights)
        report = verify_model(weights, instance)
        promised = model.spec.guaranteed_margin
        margin_ok = not math.isfinite(promised) or report.min_margin >= promised - MARGIN_TOLERANCE
        sizes = ", ".join([f"N={N}", f"R={R}"] + [f"{k}={v}" for k, v in options.items()] + [f"d_model={model.spec.d_model}"])
        return {"sizes": sizes,
                "exhaustive": report.exhaustive, "queries": report.queries, "min_margin": report.min_margin,
                "guaranteed_margin": promised, "passed": bool(report.exact_recall and margin_ok),
                "detail": report.summary()}

    check.run = run
    return check


def inequality_check(key: str, statement: str, doc: str, sizes: str, evaluate: Callable[[], tuple[bool, str]]) -> TheoremCheck:
    def run() -> dict:
        passed, detail = evaluate()
        return {"sizes": sizes, "exhaustive": True, "queries": None, "min_margin": None, "passed": bool(passed), "detail": detail}

    return TheoremCheck(key, statement, doc, run)


def _certificate_check(N: int, R: int) -> TheoremCheck:
    def evaluate():
        instance = Instance.random(N, R, 0)
        weights = build_construction("block", instance).weights
        fast, plain = certify_single_hop(weights, instance), verify_single_hop(weights, instance)
        classes = [(r.robust, r.fragile, r.unproven, r.failures) for r in (fast, plain)]
        same = classes[0] == classes[1] and abs(fast.min_margin - plain.min_margin) <= 1e-6 * max(1.0, abs(plain.min_margin))
        return same and fast.exact_recall, f"certified {fast.summary()}; brute force {plain.summary()}"

    return inequality_check("Certificate", "a certified verdict equals brute force (every verdict class; margin within 1e-6, relative)",
                            "docs/theorems/certificate.md", f"N={N}, R={R}", evaluate)


def _robbins_check(Ns) -> TheoremCheck:
    def evaluate():
        bad = [N for N in Ns if not (robbins_log2_factorial_bounds(N)[0] <= log2_factorial(N) <= robbins_log2_factorial_bounds(N)[1])]
        exact = all(abs(float(log2_factorial(N)) - math.log2(math.factorial(N))) < 1e-9 * max(1, math.log2(math.factorial(N))) for N in Ns if N <= 300)
        return not bad and exact, f"log2 N! inside the Robbins bracket for N in {Ns[0]}..{Ns[-1]}; equal to the integer log2 N! where computed"

    return inequality_check("B1", "Robbins: log2 N! lies between its lower and upper Stirling bounds; H(instance) = R log2 N!",
                            "docs/theorems/bounds.md", f"N = {Ns[0]}..{Ns[-1]}", evaluate)


def _tuples_check(cases) -> TheoremCheck:
    def evaluate():
        rows = [(N, R, k, realisable_tuples_lower(N, R, k), count_realisable_tuples(N, R, k)) for N, R, k in cases]
        return all(lower <= count for *_, lower, count in rows), "; ".join(f"N={N},R={R},k={k}: {lower} <= {count}" for N, R, k, lower, count in rows)

    return inequality_check("B4", "the counted lower bound on realisable k-hop answer tuples never exceeds the enumerated count",
                            "docs/theorems/bounds.md", ", ".join(f"(N={N},R={R},k={k})" for N, R, k in cases), evaluate)


def _max_N_check(cases) -> TheoremCheck:
    def evaluate():
        rows = []
        for d, p, R, k in cases:
            n = max_N(d, p, R, k)
            rows.append(generic_min_d(n, R, p, k) <= d < generic_min_d(n + 1, R, p, k))
        return all(rows), f"{len(rows)} cases: generic_min_d(N_max) <= d < generic_min_d(N_max + 1)"

    values = [sorted({case[i] for case in cases}) for i in range(4)]
    sizes = f"{len(cases)} cases: " + ", ".join(f"{name} in {v}" for name, v in zip(("d", "p", "R", "k"), values))
    return inequality_check("B6", "N_max(d) is the largest N the generic bound allows at subject dimension d",
                            "docs/theorems/bounds.md", sizes, evaluate)


def default_checks(quick: bool) -> list[TheoremCheck]:
    big = (256, 4) if quick else (4096, 8)
    multi = (64, 2) if quick else (1024, 3)
    single = "docs/theorems/single_hop.md"
    many = "docs/theorems/multi_hop.md"
    return [
        construction_check("Theorem 1", "block superposition with binary codes: every margin >= 2", single, "block", *big, codebook="binary"),
        construction_check("Theorem 1 (p=2)", "block superposition with 4-level codes: every margin >= 2", single, "block", *big,
                           codebook="multilevel", precision=2),
        construction_check("Theorem 2", "block superposition with Rademacher codes, d0 = ceil(log2(N(N-1)/(2 delta)))", single,
                           "block", *big, codebook="rademacher"),
        construction_check("Theorem 3", "shared-space superposition at the proven sufficient d", single, "shared-space",
                           *((64, 2) if quick else (1024, 4))),
        construction_check("Theorem 4", "k-hop without chain-of-thought, one routing block per chain (k = 2)", many, "chains", *multi, hops=2),
        construction_check("Theorem 5", "chain-of-thought, every depth <= 3, one hop per emitted token", many, "cot", *multi, hops=3),
        construction_check("Theorem 6", "associative route: k layers of N R lookup units (k = 2)", many, "associative", *multi, hops=2),
        _certificate_check(*((256, 4) if quick else (4096, 8))),
        _robbins_check(list(range(2, 200 if quick else 2000))),
        _tuples_check([(3, 2, 2), (4, 2, 2)] if quick else [(3, 2, 2), (4, 2, 2), (3, 2, 3), (3, 3, 2)]),
        _max_N_check([(d, p, R, k) for d in (16, 64, 256) for p in (1, 4) for R in (1, 4) for k in (1, 2)]),
    ]


def bounds_rows(checks: list[TheoremCheck]) -> list[dict]:
    rows = []
    for check in checks:
        if check.spec is None:
            continue
        result = compare(check.spec)
        rows.append({"construction": check.spec.name, "N": check.spec.N, "R": check.spec.R, "hops": check.spec.hops,
                     "cot": check.spec.cot, "d_model": check.spec.d_model, "precision": result.precision,
                     "bound": result.bound, "ratio": result.ratio, "verdict": result.verdict})
    return rows


def training_summary(quick: bool, progress) -> dict:
    """A trained model's structure and transfer, plus the archived threshold sweep when present."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"available": False, "note": "PyTorch is not installed: pip install -e \".[train]\" to include the gradient-descent experiments"}
    from georecall.experiments.cli_support import analyse
    from georecall.experiments.config import TrainConfig
    from georecall.experiments.sweep import smallest_passing
    from georecall.experiments.train import train

    config = TrainConfig(N=64 if quick else 256, R=2, d_model=16, d_mlp=64, steps=600, embed_init_scale=0.1,
                         weight_decay=0.1, stop_margin=0)
    progress(f"training N={config.N}, R={config.R}, d={config.d_model}")
    run = train(config)
    summary = {"available": True, "config": config.to_json_dict(), "train_accuracy": run.train_accuracy, "min_margin": run.min_margin,
               **{k: v for k, v in analyse(run, transfer_steps=50 if quick else 300).items() if k not in ("gating", "transfer")}}
    if not quick:
        progress("threshold d* at N = 64, 128, 256 (R = 2, seed 0)")
        summary["threshold"] = []
        for N in (64, 128, 256):
            d_star, below = smallest_passing(lambda d: train(TrainConfig(N=N, R=2, d_model=d, d_mlp=64, steps=3000)).exact, 64)
            summary["threshold"].append({"N": N, "R": 2, "d_star": d_star, "failing_d_below": below})
    if ARCHIVED_SWEEP.exists():
        archived = json.loads(ARCHIVED_SWEEP.read_text())
        summary["archived_sweep"] = {"source": str(ARCHIVED_SWEEP.relative_to(ARCHIVED_SWEEP.parents[3])),
                                     "medians": archived["medians"], "fits": archived["fits"]}
    return summary


def run_report(out, quick: bool = False, checks: list[TheoremCheck] | None = None, progress=None, with_training: bool = True) -> dict:
    """Run every check and write the report files into ``out``; returns the results.json content."""
    started = time.perf_counter()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: None)
    checks = default_checks(quick) if checks is None else checks
    theorems = []
    for i, check in enumerate(checks, 1):
        say(f"[{i}/{len(checks)}] {check.key}: {check.statement}")
        t0 = time.perf_counter()
        try:
            row = check.run()
        except Exception as exc:  # a crashing check is a failed check, reported, not hidden
            row = {"sizes": "", "exhaustive": False, "queries": None, "min_margin": None, "passed": False,
                   "detail": f"error: {type(exc).__name__}: {exc}"}
        theorems.append({"theorem": check.key, "statement": check.statement, "doc": check.doc, **row,
                         "seconds": round(time.perf_counter() - t0, 2)})
    say("comparing constructions with the bounds")
    table = bounds_rows(checks)
    trade_rows = tradeoff(256, 4, 1, 4 if quick else 6)
    plot_tradeoff(trade_rows, str(folder / "tradeoff.png"), "capacity-depth tradeoff: d = 256, R = 4, p = 1")
    training = training_summary(quick, say) if with_training else {"available": False, "note": "skipped"}
    results = {"passed": all(t["passed"] for t in theorems), "quick": quick, "theorems": theorems, "bounds_table": table,
               "tradeoff": {"d": 256, "R": 4, "precision": 1, "rows": trade_rows}, "training": training,
               "elapsed_s": round(time.perf_counter() - started, 1)}
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    (folder / "report.md").write_text(render_markdown(results))
    (folder / "report.html").write_text(render_html(results, folder))
    return results


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[list[str]]:
    return [[title for _, title in columns]] + [[_fmt(row.get(key)) for key, _ in columns] for row in rows]


THEOREM_COLUMNS = [("theorem", "theorem"), ("statement", "statement"), ("sizes", "sizes checked"), ("exhaustive", "exhaustive"),
                   ("queries", "queries"), ("min_margin", "min margin"), ("passed", "pass"), ("doc", "proof")]
BOUND_COLUMNS = [("construction", "construction"), ("N", "N"), ("R", "R"), ("hops", "hops"), ("cot", "CoT"), ("d_model", "d_model"),
                 ("precision", "p"), ("bound", "bound"), ("ratio", "spent / needed"), ("verdict", "verdict")]
TRAIN_KEYS = ["train_accuracy", "superposition_r2", "superposition_r2_null", "probe_accuracy", "gating_selectivity",
              "swap_success", "swap_preservation", "transfer_accuracy"]


def _sections(results: dict) -> list[tuple[str, object]]:
    """(heading, content) pairs; content is text, a table (list of rows) or ('image', filename)."""
    verdict = "PASSED: every theorem check holds" if results["passed"] else "FAILED: some theorem checks fail"
    parts = [("Geometric factual recall: verification report", f"{verdict}. Mode: {'quick' if results['quick'] else 'full'}; "
              f"{results['elapsed_s']} s. Every construction check verifies every query unless 'exhaustive' says no.")]
    parts.append(("Theorems", _table(results["theorems"], THEOREM_COLUMNS)))
    parts.append(("Constructions against the bounds", _table(results["bounds_table"], BOUND_COLUMNS)))
    parts.append(("Capacity-depth tradeoff", ("image", "tradeoff.png")))
    training = results["training"]
    if not training.get("available"):
        parts.append(("Gradient descent", training.get("note", "not run")))
    else:
        c = training["config"]
        rows = [{"metric": key, "value": training.get(key)} for key in TRAIN_KEYS]
        parts.append(("Gradient descent", f"One model trained at N={c['N']}, R={c['R']}, d_model={c['d_model']}, d_mlp={c['d_mlp']}, "
                      f"init scale {c['embed_init_scale']}, weight decay {c['weight_decay']}, {c['steps']} steps."))
        parts.append(("Structure and transfer", _table(rows, [("metric", "metric"), ("value", "value")])))
        if "threshold" in training:
            parts.append(("Threshold (measured now)", _table(training["threshold"], [("N", "N"), ("R", "R"), ("d_star", "d*"),
                                                                                   ("failing_d_below", "largest failing d")])))
        if "archived_sweep" in training:
            sweep = training["archived_sweep"]
            parts.append((f"Threshold sweep (archived: {sweep['source']})",
                          _table(sweep["medians"], [("N", "N"), ("R", "R"), ("seeds", "seeds"), ("d_star_median", "d* median"),
                                                    ("d_star_min", "min"), ("d_star_max", "max")])))
    return parts


def render_markdown(results: dict) -> str:
    lines = []
    for i, (heading, content) in enumerate(_sections(results)):
        lines.append(("# " if i == 0 else "## ") + heading)
        lines.append("")
        if isinstance(content, str):
            lines.append(content)
        elif isinstance(content, tuple):
            lines.append(f"![{heading}]({content[1]})")
        else:
            lines.append("| " + " | ".join(content[0]) + " |")
            lines.append("|" + "---|" * len(content[0]))
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in content[1:]]
        lines.append("")
    return "\n".join(lines)


def render_html(results: dict, folder: Path) -> str:
    body = []
    for i, (heading, content) in enumerate(_sections(results)):
        body.append(f"<h{1 if i == 0 else 2}>{html.escape(heading)}</h{1 if i == 0 else 2}>")
        if isinstance(content, str):
            body.append(f"<p>{html.escape(content)}</p>")
        elif isinstance(content, tuple):
            data = base64.b64encode((folder / content[1]).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(heading)}" src="data:image/png;base64,{data}" style="max-width:100%">')
        else:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in content[0])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in content[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#eee}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>georecall report</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
