"""What ``georecall train`` and ``georecall sweep`` run: glue between the CLI and the experiments."""

from __future__ import annotations

import os
import shutil

from georecall.experiments.sweep import SweepResult, run_sweep, write_sweep


def run_and_write_sweep(points, base, seeds, d_max, out, progress) -> SweepResult:
    result = run_sweep(points, base, seeds, d_max, progress)
    write_sweep(result, out, base, seeds, d_max)
    return result


def analyse(run, transfer_steps: int = 2000, seed: int = 0) -> dict:
    """Every structure metric and the transfer test for one trained run (JSON-ready)."""
    from georecall.experiments.analysis import causal_swap, gating_selectivity, probe_accuracy, superposition_fit
    from georecall.experiments.transfer import transfer_experiment

    weights, instance = run.weights, run.instance
    fit = superposition_fit(weights, instance, seed=seed)
    probes = probe_accuracy(weights, instance, seed=seed)
    gating = gating_selectivity(weights, instance)
    swap = causal_swap(weights, instance, fit["maps"], seed=seed)
    transfer = transfer_experiment(weights, instance, run.config, steps=transfer_steps, seed=seed, fit=fit)
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


def train_and_analyse(config, out, transfer_steps: int, with_analysis: bool, force_progress: bool, instances: int = 1) -> dict:
    """``georecall train``: one run (``instances`` > 1: shared weights trained on that many
    instances, analysed on the first), its analyses, and summary.json in ``out``."""
    import sys

    from georecall.experiments.train import train

    progress = None
    if force_progress or sys.stderr.isatty():
        def progress(step, steps):
            sys.stderr.write(f"\rtrain step {step:,}/{steps:,}")
            sys.stderr.flush()
    from georecall.formats.files import replace_folder, staging_folder

    staged = staging_folder(out) if out is not None else None  # the folder is replaced as a whole, at the end
    try:
        summary = _train_into(config, out, staged, transfer_steps, with_analysis, progress, train, instances)
        if staged is not None:
            replace_folder(staged, out)
    except BaseException:
        if staged is not None and os.path.isdir(staged):
            shutil.rmtree(staged)
        raise
    return summary


def _train_into(config, out, staged, transfer_steps, with_analysis, progress, train, instances: int = 1) -> dict:
    import json
    import sys
    from pathlib import Path

    if instances > 1:
        run = _train_multi(config, instances, staged, progress)
    else:
        run = train(config, out=staged, progress=progress)
    if progress is not None:
        sys.stderr.write("\n")
    summary = {"N": config.N, "R": config.R, "d_model": config.d_model, "d_mlp": config.d_mlp, **run.to_json_dict()}
    if with_analysis:
        if progress is not None:
            sys.stderr.write("analysing structure and transfer...\n")
        summary.update(analyse(run, transfer_steps, seed=config.seed))
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
