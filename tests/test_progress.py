"""Progress on long commands: lines in a file, nothing under --quiet, nothing for short runs."""

from __future__ import annotations

import io

import pytest

import georecall.cli.progress as progress
from georecall.cli import main


class File(io.StringIO):
    def isatty(self):
        return False


def test_a_file_gets_whole_lines_with_done_total_time_left_and_rate(monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    stream = File()
    update = progress.counter("verify", "queries", stream=stream)
    for done in range(0, 1001, 250):
        update(done, 1000)
    lines = stream.getvalue().splitlines()
    assert lines and all("\r" not in line and "\x1b" not in line for line in lines)
    assert lines[-1].startswith("verify: 1000/1000 queries (100%)") and "left" in lines[-1] and " queries/s" in lines[-1]


def test_a_short_run_prints_nothing_and_quiet_prints_nothing_ever(monkeypatch):
    stream = File()
    update = progress.counter("verify", "queries", stream=stream)  # the first line waits LINE_EVERY_S (5 s)
    update(10, 10)
    assert stream.getvalue() == ""
    assert progress.counter("verify", "queries", quiet=True) is None and progress.say(True) is None


def test_a_bar_that_stops_early_ends_at_its_step_and_a_new_phase_starts_a_new_bar(monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    stream = File()
    update = progress.counter("train", "steps", stream=stream)
    update(100, 3000)
    update(275, 275)  # stopped at its margin
    update(5, 50)  # a second phase
    update(50, 50)
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("train: 275/275 steps (100%)") for line in lines)
    assert lines[-1].startswith("train: 50/50 steps (100%)")


def test_verify_and_train_show_progress_in_a_file_and_quiet_silences_them(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    path = str(tmp_path / "m.npz")
    assert main(["build", "--N", "64", "--R", "2", "--out", path]) == 0
    capsys.readouterr()
    assert main(["verify", path, "--path", "reference"]) == 0
    assert "verify: 128/128 queries (100%)" in capsys.readouterr().err
    assert main(["verify", path, "--path", "reference", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["verify", path, "--progress"]) == 0
    assert "--progress is deprecated" in capsys.readouterr().err
    pytest.importorskip("torch")
    assert main(["train", "--N", "16", "--R", "1", "--d", "8", "--steps", "50", "--stop-margin", "0", "--no-analysis"]) in (0, 1)
    assert "train: 50/50 steps (100%)" in capsys.readouterr().err


def test_build_export_and_compare_report_their_steps(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    path = str(tmp_path / "m.npz")
    assert main(["build", "--N", "16", "--R", "2", "--out", path]) == 0
    assert "build: 3/3 steps (100%)" in capsys.readouterr().err
    assert main(["export", path, "--to", "safetensors", str(tmp_path / "m.st")]) == 0
    assert "export: 2/2 steps (100%)" in capsys.readouterr().err
    assert main(["compare", path, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
