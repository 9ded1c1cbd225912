"""Running ``georecall report``: every check, the bounds table, the tradeoff plot and the training summary, into one folder."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from georecall.formats.files import check_run_folder, staged_run_folder
from georecall.report.checks import TheoremCheck, bounds_rows, default_checks
from georecall.report.render import render_html, render_markdown
from georecall.capacity_depth import plot_tradeoff, tradeoff

ARCHIVED_SWEEP = Path(__file__).resolve().parents[2] / "results" / "training" / "threshold_sweep" / "sweep.json"


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


def run_report(out, quick: bool = False, checks: list[TheoremCheck] | None = None, progress=None, with_training: bool = True,
               force: bool = False) -> dict:
    """Run every check and write the report folder ``out`` as a whole (staged beside it, then
    swapped in; an existing ``out`` only with ``force`` and only if it holds a previous report);
    returns the results.json content."""
    check_run_folder(out, force, "report")
    with staged_run_folder(out, "report") as staged:
        return _run_into(Path(staged), quick, checks, progress, with_training)


def _run_into(folder: Path, quick: bool, checks, progress, with_training: bool) -> dict:
    started = time.perf_counter()
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
               "elapsed_s": round(time.perf_counter() - started, 1),
               "files": ["report.md", "report.html", "results.json", "tradeoff.png"]}
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    (folder / "report.md").write_text(render_markdown(results))
    (folder / "report.html").write_text(render_html(results, folder))
    return results


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)
