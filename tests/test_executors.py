"""Sweeps whose runs execute elsewhere: the search scheduler, streamed rows, resume, and Ray."""

from __future__ import annotations

import csv
import os

import pytest

from georecall.cli import main
from georecall.experiments.executors import RUN_FIELDS, RUN_TYPES, run_key, run_searches
from georecall.experiments.records import RowAppender, read_rows
from georecall.theory.search import drive, smallest_passing_search

pytest.importorskip("torch")

SWEEP = ["sweep", "--N", "8", "16", "--R", "--seeds", "0", "1", "--d-max", "8", "--steps", "200", "--quiet"]


class Config:
    def __init__(self, N, d):
        self.N, self.R, self.seed, self.d_model, self.d_mlp = N, 1, 0, d, 4

    def to_json_dict(self):
        return {"N": self.N, "d_model": self.d_model}


class FakeExecutor:
    """Finishes tasks in reverse order of submission: a scheduler must not depend on the order."""

    def __init__(self, thresholds):
        self.thresholds, self.submitted = thresholds, []

    def submit(self, task, config_json):
        config = Config(config_json["N"], config_json["d_model"])
        self.submitted.append(run_key(config))
        return (len(self.submitted), config)

    def wait(self, handles):
        return max(handles)

    def result(self, handle):
        config = handle[1]
        return {"exact": config.d_model >= self.thresholds[config.N]}


def test_searches_advanced_side_by_side_find_what_one_by_one_finds_and_reuse_cached_runs():
    thresholds = {8: 3, 16: 6, 32: 50, 64: 1}
    cells = lambda: [(smallest_passing_search(20), (lambda d, N=N: Config(N, d))) for N in thresholds]  # noqa: E731
    executor = FakeExecutor(thresholds)
    found = run_searches(cells(), executor)
    assert found == [drive(smallest_passing_search(20), lambda d, N=N: d >= t) for N, t in thresholds.items()]
    assert found == [(3, 2), (6, 5), (None, 20), (1, 0)]
    assert len(executor.submitted) == len(set(executor.submitted))  # no run trained twice
    cached = {key: {"exact": key[3] >= thresholds[key[0]]} for key in executor.submitted[:5]}
    again = FakeExecutor(thresholds)
    seen = []
    assert run_searches(cells(), again, on_row=lambda config, row, from_cache: seen.append(from_cache), cached=cached) == found
    assert len(again.submitted) == len(executor.submitted) - 5 and seen.count(True) == 5


def test_appended_rows_survive_a_torn_last_line_and_read_back_typed(tmp_path):
    path = tmp_path / "runs.csv"
    row = {"N": 8, "R": 2, "seed": 0, "d_model": 4, "d_mlp": 64, "exact": True, "train_accuracy": 1.0, "min_margin": 1.5,
           "steps_to_exact": None, "steps_run": 200, "elapsed_s": 0.2}
    appender = RowAppender(path, RUN_FIELDS)
    appender.append(row)
    appender.close()
    with open(path, "a") as handle:
        handle.write("8,2,1,4,64,Tr")  # a kill in the middle of a row
    appender = RowAppender(path, RUN_FIELDS)
    appender.append({**row, "seed": 2})
    appender.close()
    rows = read_rows(path, RUN_FIELDS, RUN_TYPES)
    assert rows == [row, {**row, "seed": 2}]
    assert read_rows(path, RUN_FIELDS[:-1], RUN_TYPES) == []  # another table's columns: nothing is reused


def rows_of(folder):
    with open(os.path.join(folder, "runs.csv"), newline="") as handle:
        return sorted(tuple(row[c] for c in RUN_FIELDS if c != "elapsed_s") for row in csv.DictReader(handle))


def test_a_stopped_sweep_resumes_from_its_rows_and_ends_as_an_uninterrupted_one(tmp_path, capsys, monkeypatch):
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert main(SWEEP + ["--out", str(whole)]) == 0
    import georecall.experiments.executors as executors

    trained = []
    real = executors.training_task

    def stop_after_three(config_json):
        if len(trained) == 3:
            raise KeyboardInterrupt
        trained.append(config_json)
        return real(config_json)

    monkeypatch.setattr(executors, "training_task", stop_after_three)
    assert main(SWEEP + ["--out", str(stopped)]) == 130
    assert len(rows_of(stopped)) == 3 and not (stopped / "sweep.json").exists()
    trained.clear()
    monkeypatch.setattr(executors, "training_task", lambda config_json: trained.append(1) or real(config_json))
    assert main(SWEEP + ["--out", str(stopped)]) == 0
    assert len(trained) == len(rows_of(whole)) - 3  # only the runs not yet in runs.csv
    assert rows_of(stopped) == rows_of(whole)
    assert (stopped / "thresholds.csv").read_text() == (whole / "thresholds.csv").read_text()


def test_executor_options_are_checked_before_any_run(tmp_path, capsys, monkeypatch):
    for extra, message in ((["--workers", "2"], "need --executor ray"), (["--address", "auto"], "need --executor ray"),
                           (["--executor", "ray", "--workers", "0"], "--workers must be in 1..4096"),
                           (["--cpus-per-task", "0"], "--cpus-per-task must be in 1..1024")):
        assert main(SWEEP + ["--out", str(tmp_path / "s"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists() or not (tmp_path / "s" / "runs.csv").exists()
    import builtins

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "ray"
                        else real_import(name, *a, **k))
    assert main(SWEEP + ["--out", str(tmp_path / "r"), "--executor", "ray"]) == 2
    assert 'needs Ray, from the [cluster] extra: pip install -e ".[cluster]"' in capsys.readouterr().err


def test_a_sweep_on_a_local_ray_instance_with_two_workers_writes_the_local_rows(tmp_path):
    pytest.importorskip("ray")
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert main(SWEEP + ["--out", str(local)]) == 0
    assert main(SWEEP + ["--out", str(ray), "--executor", "ray", "--workers", "2"]) == 0
    assert rows_of(ray) == rows_of(local) and len(rows_of(local)) >= 8
    assert (ray / "thresholds.csv").read_text() == (local / "thresholds.csv").read_text()


def square_after(delay: float, value: int) -> int:
    import time

    time.sleep(delay)
    return value * value


def test_map_unordered_gives_every_cell_once_with_its_index():
    from georecall.experiments.executors import LocalExecutor, map_unordered

    results = dict(map_unordered(LocalExecutor(), square_after, [(0.0, v) for v in range(5)]))
    assert results == {i: i * i for i in range(5)}
