"""The issue-14 experiment scripts: their bookkeeping, and one tiny end-to-end run."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_selector_width_rule_is_2_R_ceil_log2_N():
    sweep = load("multi_instance_sweep")
    assert sweep.mlp_width("2RlogN", 256, 4) == 64
    assert sweep.mlp_width("2RlogN", 1000, 2) == 40
    assert sweep.mlp_width("256", 1000, 2) == 256


def _row(setting, lr, fitted, random, scratch, untrained=None):
    return {"setting": setting, "lr": lr, "superposition_r2": 0.5, "fitted_map_steps_to_exact": fitted,
            "random_steps_to_exact": random, "scratch_steps_to_exact": scratch, "untrained_shared_steps_to_exact": untrained}


def test_retrain_speed_compares_best_against_best():
    speed = load("retrain_speed")
    rows = [_row("a", 0.01, 200, None, 100), _row("a", 0.1, 90, 120, 40),  # scratch's best (40) beats embedding's (90)
            # embedding's best (30) beats scratch's (50), but untrained shared weights (25) beat 30
            _row("b", 0.01, None, 30, 60, 25), _row("b", 0.1, None, None, 50),
            _row("c", 0.01, None, None, 60),  # embedding-only never exact
            _row("d", 0.01, 80, None, None)]  # scratch never exact within the budget
    summary = {s["setting"]: s for s in speed.summarise(rows)}
    assert (summary["a"]["best_fitted_map_steps"], summary["a"]["at_lr"], summary["a"]["best_scratch_steps"]) == (90, 0.1, 40)
    assert [summary[k]["embedding_only_faster"] for k in "abcd"] == [False, True, False, True]
    assert [summary[k]["faster_than_untrained_shared"] for k in "abcd"] == [True, False, False, True]


def test_retrain_speed_runs_end_to_end_and_writes_its_files(tmp_path, monkeypatch):
    speed = load("retrain_speed")
    setting = json.dumps({"N": 32, "d_model": 16, "d_mlp": 32, "M": 2, "tie_unembed": True})
    monkeypatch.setattr(sys, "argv", ["retrain_speed.py", "--settings", setting, "--lrs", "0.03", "--budget", "60", "--out", str(tmp_path)])
    assert speed.main() == 0
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert len(rows) == 1 and rows[0]["all_instances_exact"] == "True" and rows[0]["tie_unembed"] == "True"
    assert {p.name for p in tmp_path.iterdir()} == {"runs.csv", "summary.csv", "config.json", "retrain_speed.png"}
