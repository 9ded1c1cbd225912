"""Issue 20's data-loss cases: every command that writes checks --out before the work, replaces only
what georecall wrote, never goes through or over a link, FIFO or device, and cleans up when killed."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from georecall.cli import main
from georecall.formats.files import MARKER, check_new_file, check_run_folder
from georecall.theory.checks import InputError

TRAIN = ["train", "--steps", "5", "--no-analysis", "--N", "8", "--R", "1", "--d", "8", "--d-mlp", "8"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".part") or ".part" in name)


def test_train_never_deletes_a_folder_it_did_not_write(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    for force in ([], ["--force"]):
        code, _, err = run(capsys, *TRAIN, "--out", str(folder), *force)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert ("--force" in err) if not force else (MARKER in err)
        assert (folder / "keep.txt").read_text() == "x"
    assert leftovers(tmp_path) == []


def test_train_replaces_its_own_run_with_force_and_keeps_a_readable_folder(tmp_path, capsys):
    folder = tmp_path / "run"
    pytest.importorskip("torch")
    assert run(capsys, *TRAIN, "--out", str(folder))[0] in (0, 1)
    assert json.loads((folder / MARKER).read_text())["command"] == "train"
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(folder).st_mode & 0o777 == 0o777 & ~umask  # not left private (0700) by the staging
    code, _, err = run(capsys, *TRAIN, "--out", str(folder))
    assert code == 2 and "--force" in err
    assert run(capsys, *TRAIN, "--out", str(folder), "--force")[0] in (0, 1)
    assert {"config.json", "summary.json", MARKER} <= set(os.listdir(folder))
    # a sweep folder is not a train run: --force does not let train replace it
    (folder / MARKER).write_text(json.dumps({"command": "sweep"}))
    code, _, err = run(capsys, *TRAIN, "--out", str(folder), "--force")
    assert code == 2 and "holds no georecall train run" in err
    assert leftovers(tmp_path) == []


def test_out_as_a_symlink_is_refused_and_the_link_survives(tmp_path, capsys):
    target = tmp_path / "real"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    link = tmp_path / "link_dir"
    link.symlink_to(target)
    for argv in (TRAIN + ["--out", str(link), "--force"], ["sweep", "--N", "8", "--R", "--seeds", "0", "--d-max", "4",
                                                             "--out", str(link), "--force"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "symbolic link" in err
    assert link.is_symlink() and (target / "keep.txt").read_text() == "x"
    assert leftovers(tmp_path) == []


def test_out_naming_a_file_is_refused_before_any_training(tmp_path, capsys):
    path = tmp_path / "f"
    path.write_text("x")
    started = time.perf_counter()
    code, _, err = run(capsys, "train", "--steps", "100000000", "--N", "64", "--out", str(path), "--force")
    assert code == 2 and "not a folder" in err and path.read_text() == "x"
    assert time.perf_counter() - started < 5  # 10^8 steps were never started


def test_sweep_never_touches_a_folder_it_did_not_write_and_needs_force_for_another_protocol(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "runs.csv").write_text("mine")
    argv = ["sweep", "--N", "8", "--R", "--seeds", "0", "--d-max", "8", "--steps", "5", "--out", str(folder)]
    for force in ([], ["--force"]):
        code, _, err = run(capsys, *argv, *force)
        assert code == 2 and "holds no georecall sweep run" in err and (folder / "runs.csv").read_text() == "mine"
    (folder / "runs.csv").unlink()
    folder.rmdir()
    assert run(capsys, *argv)[0] == 0
    first = (folder / "runs.csv").read_text()
    assert json.loads((folder / MARKER).read_text())["command"] == "sweep"
    assert run(capsys, *argv)[0] == 0 and (folder / "runs.csv").read_text() == first  # same protocol: resumed, nothing re-run
    other = argv[:-2] + ["--lr", "0.02", "--out", str(folder)]
    code, _, err = run(capsys, *other)
    assert code == 2 and "another training protocol" in err and "--force" in err and (folder / "runs.csv").read_text() == first

    import georecall.experiments.cli_support as support

    def broken(*args, **kwargs):
        raise OSError("disk full while writing")

    monkeypatch.setattr(support, "write_sweep_summary", broken)
    code, _, err = run(capsys, *other, "--force")
    assert code == 2 and "disk full" in err
    assert (folder / "runs.csv").read_text() == first  # another protocol is staged: the old sweep is untouched
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    assert run(capsys, *other, "--force")[0] == 0
    assert json.loads((folder / "config.json").read_text())["base_config"]["lr"] == 0.02


def test_tradeoff_refuses_a_sidecar_link_and_a_wrong_plot_name_before_computing(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "t.json").symlink_to(victim)
    code, _, err = run(capsys, "tradeoff", "--d", "16", "--R", "2", "--plot", str(tmp_path / "t.png"), "--force")
    assert code == 2 and "t.json" in err and "symbolic link" in err
    assert victim.read_text() == "precious" and not (tmp_path / "t.png").exists()
    started = time.perf_counter()
    code, _, err = run(capsys, "tradeoff", "--d", "10" + "0" * 900, "--R", "2", "--plot", str(tmp_path / "u.json"))
    assert code == 2 and "--plot" in err and ".png" in err and time.perf_counter() - started < 2


def test_force_never_replaces_a_fifo_or_a_device(tmp_path, capsys):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    source = str(tmp_path / "m.npz")
    assert run(capsys, "build", "--N", "16", "--R", "2", "--out", source)[0] == 0
    for argv in (["build", "--N", "16", "--R", "2", "--out", str(fifo), "--force"],
                 ["export", source, "--to", "npz", str(fifo), "--force"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "FIFO" in err
        assert os.path.exists(fifo) and not os.path.isfile(fifo)
    # The device case is checked on the check itself: a regression must not be able to replace /dev/null.
    with pytest.raises(InputError, match="character device"):
        check_new_file(os.devnull, force=True)
    with pytest.raises(InputError, match="character device"):
        check_run_folder(os.devnull, force=True, command="train")
    assert leftovers(tmp_path) == []


def test_build_and_export_need_force_for_a_regular_file(tmp_path, capsys):
    path = tmp_path / "m.npz"
    path.write_bytes(b"mine")
    code, _, err = run(capsys, "build", "--N", "16", "--R", "2", "--out", str(path))
    assert code == 2 and "--force" in err and path.read_bytes() == b"mine"
    assert run(capsys, "build", "--N", "16", "--R", "2", "--out", str(path), "--force")[0] == 0
    with np.load(path) as data:
        assert "W_E" in data.files


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_train_leaves_no_staging_folder(tmp_path, sig):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "georecall.cli", "train", "--steps", "100000000", "--stop-margin", "1e6",
                                "--no-analysis", "--N", "16", "--R", "2", "--d", "8", "--out", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not leftovers(tmp_path) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert leftovers(tmp_path), "the run never staged its folder"
    time.sleep(0.3)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + sig, err
    assert b"Traceback" not in err
    assert leftovers(tmp_path) == [] and not out.exists()
