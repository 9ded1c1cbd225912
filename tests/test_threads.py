"""Threads are sized by the work and capped by --threads, OMP_NUM_THREADS or the cores."""

from __future__ import annotations

import pytest

from georecall.verify import threads


def test_small_work_gets_one_thread_and_large_work_is_capped(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.allowed_threads() == 3
    assert threads.threads_for(10, 100) == 1 and threads.threads_for(250, 100) == 2 and threads.threads_for(10**9, 100) == 3
    assert threads.threads_for(10**9, 100, most=2) == 2 and threads.threads_for(0, 100) == 1
    threads.set_thread_limit(1)
    try:
        assert threads.threads_for(10**9, 100) == 1  # --threads wins over OMP_NUM_THREADS
    finally:
        threads.set_thread_limit(None)
    for junk in ("", "0", "abc", "-2"):
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert threads.allowed_threads() >= 1
    with pytest.raises(ValueError):
        threads.set_thread_limit(0)


def test_training_uses_one_torch_thread_for_a_small_step_and_restores_the_setting(monkeypatch):
    torch = pytest.importorskip("torch")
    from georecall.experiments import train as train_module
    from georecall.experiments.config import TrainConfig

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    seen = []
    real = train_module._train
    monkeypatch.setattr(train_module, "_train", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    before = torch.get_num_threads()
    small = TrainConfig(N=16, R=1, d_model=4, d_mlp=8, steps=2)
    train_module.train(small)
    train_module.train(small.replace(N=1024, R=4, d_model=32, d_mlp=256))
    assert seen == [1, 2] and torch.get_num_threads() == before


def test_the_command_line_holds_blas_to_one_thread_and_takes_threads(tmp_path, capsys):
    from threadpoolctl import threadpool_info

    import georecall.cli as cli
    from georecall.cli import main

    seen = {}
    assert main(["build", "--N", "16", "--R", "1", "--out", str(tmp_path / "m.npz")]) == 0
    def spy(args):
        seen["blas"] = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        seen["allowed"] = threads.allowed_threads()
        return 0

    original = cli.COMMANDS["verify"]
    cli.COMMANDS["verify"] = spy
    try:
        assert main(["verify", str(tmp_path / "m.npz"), "--threads", "1"]) == 0
    finally:
        cli.COMMANDS["verify"] = original
    assert seen["allowed"] == 1 and all(n == 1 for n in seen["blas"])
    assert threads._LIMIT is None  # the limit ends with the command
    assert main(["verify", str(tmp_path / "m.npz"), "--threads", "0"]) == 2
    assert "--threads must be in 1..1,024, got 0" in capsys.readouterr().err
