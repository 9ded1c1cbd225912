"""What ``georecall train`` and ``georecall sweep`` run: glue between the CLI and the experiments."""

from __future__ import annotations


import json
import os

from georecall.experiments.executors import RUN_FIELDS, RUN_TYPES, row_key
from georecall.experiments.records import RowAppender, read_rows
from georecall.experiments.sweep import SweepResult, run_sweep, write_sweep_config, write_sweep_summary
from georecall.theory.checks import InputError

VARIED = ("N", "R", "d_model", "seed", "instance_seed")  # what a sweep varies; the rest is its training protocol


def protocol(config_json: dict) -> dict:
    return {key: value for key, value in config_json.items() if key not in VARIED}


def sweep_folder_mode(out, base, force: bool) -> str:
    """"new" (``out`` does not exist), "resume" (a sweep folder under the same training protocol: its
    runs.csv rows are reused and new rows appended) or "replace" (another protocol, with --force: the
    new sweep is staged beside it and swapped in at the end). Anything else is refused before any run."""
    from georecall.formats.files import check_run_folder

    if not os.path.lexists(out):
        return "new"
    check_run_folder(out, True, "sweep")  # a link, a file, a folder georecall did not write: refused, --force or not
    try:
        with open(os.path.join(out, "config.json")) as handle:
            recorded = protocol(json.load(handle)["base_config"])
    except (OSError, ValueError, KeyError, TypeError):
        recorded = None
    if recorded == protocol(base.to_json_dict()):
        return "resume"
    if not force:
        raise InputError(f"--out {out} holds a sweep under another training protocol (config.json base_config); "
                         "pass --force to replace it, or use the same training options to resume it")
    return "replace"


def run_and_write_sweep(points, base, seeds, d_max, out, progress, make_executor=None, force: bool = False) -> SweepResult:
    """The sweep, its runs streamed to ``out``/runs.csv as they finish, then the summary files
    (each atomic). A stopped sweep rerun with the same protocol resumes from runs.csv.
    ``make_executor()`` gives where the runs execute (experiments/executors.py; default here);
    it is called only once ``out`` has passed its checks, so a refused folder starts no Ray."""
    from georecall.formats.files import staged_run_folder, write_marker

    mode = sweep_folder_mode(out, base, force)
    executor = None if make_executor is None else make_executor()
    try:
        if mode == "replace":
            with staged_run_folder(out, "sweep") as staged:
                return _sweep_into(staged, {}, points, base, seeds, d_max, progress, executor)
        if mode == "new":
            os.mkdir(out)
            write_marker(out, "sweep")
        runs_csv = os.path.join(out, "runs.csv")
        cached = {row_key(row): row for row in read_rows(runs_csv, RUN_FIELDS, RUN_TYPES)}
        return _sweep_into(out, cached, points, base, seeds, d_max, progress, executor)
    finally:
        if executor is not None:
            executor.close()


def _sweep_into(folder, cached, points, base, seeds, d_max, progress, executor) -> SweepResult:
    write_sweep_config(folder, base, seeds, d_max)  # first: what a resume compares
    appender = RowAppender(os.path.join(folder, "runs.csv"), RUN_FIELDS)
    try:
        result = run_sweep(points, base, seeds, d_max, progress, executor, cached, on_row=appender.append)
    finally:
        appender.close()
    write_sweep_summary(result, folder)  # runs.csv was streamed
    return result


def analyse(run, transfer_steps: int = 2000, seed: int = 0, progress_for=None) -> dict:
    """Every structure metric and the transfer test for one trained run (JSON-ready)."""
    from georecall.experiments.analysis import causal_swap, gating_selectivity, probe_accuracy, superposition_fit
    from georecall.experiments.transfer import transfer_experiment

    weights, instance = run.weights, run.instance
    fit = superposition_fit(weights, instance, seed=seed)
    probes = probe_accuracy(weights, instance, seed=seed)
    gating = gating_selectivity(weights, instance)
    swap = causal_swap(weights, instance, fit["maps"], seed=seed)
    transfer = transfer_experiment(weights, instance, run.config, steps=transfer_steps, seed=seed, fit=fit, progress_for=progress_for)
    return {
        "superposition_r2": fit["r2_cv"],
        "superposition_r2_null": fit["r2_null_cv"],
        "superposition_r2_in_sample": fit["r2_in_sample"],
        "probe_accuracy": probes["probe_accuracy"],
        "probe_accuracy_per_relation": probes["per_relation"],
        "gating_selectivity": gating["gating_selectivity"],
        "gating": gating,
        "swap_success": swap["swap_success"],
        "swap_preservation": swap["swap_preservation"],
        "swap_samples": swap["samples"],
        "transfer_accuracy": transfer["reinits"]["fitted_map"]["zero_shot_accuracy"],
        "transfer": transfer,
    }


def train_and_analyse(config, out, transfer_steps: int, with_analysis: bool, progress_for=None, instances: int = 1) -> dict:
    """``georecall train``: one run (``instances`` > 1: shared weights trained on that many
    instances, analysed on the first), its analyses, and summary.json in ``out``.
    ``progress_for(label)`` gives a ``progress(step, steps)`` callback for each training run
    ("train", then "transfer/<method>"), or None."""
    from georecall.experiments.train import train
    from georecall.formats.files import staged_run_folder_with_live_files

    if out is None:
        return _train_into(config, None, None, None, transfer_steps, with_analysis, progress_for, train, instances)
    # metrics.jsonl grows under --out itself while the run goes; the rest appears as a whole at the end
    with staged_run_folder_with_live_files(out, "train", ("metrics.jsonl",)) as (staged, live):
        return _train_into(config, out, staged, live, transfer_steps, with_analysis, progress_for, train, instances)


def _train_into(config, out, staged, live, transfer_steps, with_analysis, progress_for, train, instances: int = 1) -> dict:
    import json
    import sys
    from pathlib import Path

    progress = None if progress_for is None else progress_for("train")
    if instances > 1:
        run = _train_multi(config, instances, staged, progress)
    else:
        if progress_for is not None and live is not None:
            print(f"train: metrics stream to {Path(live) / 'metrics.jsonl'}", file=sys.stderr, flush=True)
        run = train(config, out=staged, progress=progress, metrics_out=live)
    summary = {"N": config.N, "R": config.R, "d_model": config.d_model, "d_mlp": config.d_mlp, **run.to_json_dict()}
    if with_analysis:
        summary.update(analyse(run, transfer_steps, seed=config.seed, progress_for=progress_for))
    if out is not None:
        names = ["config.json", "model.npz", "summary.json"] + (["metrics.jsonl"] if instances == 1 else
                                                                [f"instance_{m}.npz" for m in range(1, instances)])
        summary["files"] = {name: str(Path(out) / name) for name in names}
        with open(Path(staged) / "summary.json", "w") as handle:
            json.dump(summary, handle, indent=2)
    return summary


class _FirstInstance:
    """Instance 0 of a multi-instance run, shaped like a TrainRun for ``analyse``."""

    def __init__(self, run):
        self.multi, self.config, self.instance = run, run.config, run.instances[0]
        self.weights = run.weights(0)

    def to_json_dict(self) -> dict:
        data = self.multi.to_json_dict()
        per_instance = data.pop("train_accuracy"), data.pop("min_margin")
        return {**data, "train_accuracy": min(per_instance[0]), "min_margin": min(per_instance[1]),
                "train_accuracy_per_instance": per_instance[0], "min_margin_per_instance": per_instance[1]}


def _train_multi(config, instances: int, staged, progress):
    from pathlib import Path

    from georecall.experiments.multi_instance import train_multi_instance
    from georecall.experiments.train import trained_spec
    from georecall.formats.containers import save_model

    run = _FirstInstance(train_multi_instance(config, M=instances, progress=progress))
    if staged is not None:
        config.save(Path(staged) / "config.json")
        for m in range(instances):
            weights = run.multi.weights(m)
            save_model(Path(staged) / ("model.npz" if m == 0 else f"instance_{m}.npz"), weights, run.multi.instances[m],
                       trained_spec(weights, config))
    return run


def summary_text(summary: dict) -> str:
    lines = [f"N={summary['N']} R={summary['R']} d_model={summary['d_model']} d_mlp={summary['d_mlp']}: "
             f"train accuracy {summary['train_accuracy']:.4f}, min margin {summary['min_margin']:.4g}, "
             f"{summary['steps_run']} steps ({summary['elapsed_s']:.1f} s)"]
    if "superposition_r2" in summary:
        lines += [
            f"superposition R^2 (cross-validated) {summary['superposition_r2']:.3f}, shuffled null {summary['superposition_r2_null']:.3f}",
            f"probe accuracy {summary['probe_accuracy']:.3f} (chance {1 / summary['N']:.4f})",
            f"gating selectivity {summary['gating_selectivity']:.3f} of active units single-relation",
            f"causal swap: success {summary['swap_success']:.3f}, other relations kept {summary['swap_preservation']:.3f} "
            f"(sampled {summary['swap_samples']} swaps)",
        ]
        for name, row in summary["transfer"]["reinits"].items():
            steps = row["steps_to_exact"]
            lines.append(f"transfer/{name}: zero-shot accuracy {row['zero_shot_accuracy']:.3f}, "
                         + (f"100% after {steps} embedding-only steps" if steps is not None
                            else f"not exact within {row['steps_budget']} steps (reached {row['final_accuracy']:.3f})"))
    if "files" in summary:
        lines.append(f"wrote {', '.join(summary['files'].values())}")
    return "\n".join(lines)
