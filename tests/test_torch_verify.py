"""The torch verification backend equals the reference verifier on the same inputs."""

import numpy as np
import pytest

from georecall.constructions import build_construction
from georecall.verify.torch_path import verify_model_torch
from georecall.theory.instance import Instance
from georecall.verify.run import verify_model


def assert_same_report(fast, reference):
    assert fast.exact_recall == reference.exact_recall
    assert fast.failures == reference.failures and fast.queries == reference.queries
    assert (fast.fragile, fast.unproven, fast.robust) == (reference.fragile, reference.unproven, reference.robust)
    assert fast.min_margin == pytest.approx(reference.min_margin, abs=1e-9)
    assert [f["query"] for f in fast.first_failures] == [f["query"] for f in reference.first_failures]


@pytest.mark.parametrize(
    "name, options",
    [("block", {}), ("block", {"codebook": "rademacher"}), ("shared-space", {"d": 60}), ("chains", {"hops": 2}),
     ("associative", {"hops": 2}), ("cot", {"hops": 2})],
)
def test_torch_backend_matches_the_reference(name, options):
    instance = Instance.random(32, 2, seed=1)
    model = build_construction(name, instance, **options)
    assert_same_report(verify_model_torch(model.weights, instance), verify_model(model.weights, instance))


def test_torch_backend_reports_the_same_failures_on_a_broken_model():
    instance = Instance.random(64, 3, seed=2)
    weights = build_construction("block", instance).weights
    broken = weights.with_subject_embeddings(weights.W_E[:64] + np.random.default_rng(0).normal(0, 0.6, (64, weights.d_model)))
    reference = verify_model(broken, instance)
    assert not reference.exact_recall and reference.failures > 0
    fast = verify_model_torch(broken, instance, memory_budget_bytes=20_000)
    assert_same_report(fast, reference)
    assert fast.details["path"] == "torch_cpu_float64"


def test_georecall_verify_backend_torch_agrees_with_numpy(tmp_path, capsys):
    import json

    from georecall.cli import main

    path = str(tmp_path / "m.npz")
    assert main(["build", "--N", "64", "--R", "3", "--out", path]) == 0
    capsys.readouterr()
    assert main(["verify", path, "--json"]) == 0
    reference = json.loads(capsys.readouterr().out)
    assert main(["verify", path, "--json", "--backend", "torch"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert fast["details"]["path"] == "torch_cpu_float64"
    assert (fast["exact_recall"], fast["failures"]) == (reference["exact_recall"], reference["failures"])
    assert abs(fast["min_margin"] - reference["min_margin"]) < 1e-9
    assert main(["verify", path, "--backend", "jax"]) == 2
