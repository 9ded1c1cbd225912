"""Sound verdicts (docs/theorems/soundness.md): adversarial weights, every path, ball-arithmetic confirmation.

Each test could fail: a verifier that trusted float64 (as the certificate and the reference once
did) calls the hostile cases EXACT, or disagrees across paths.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from georecall.constructions import build_construction
from georecall.constructions.block_superposition import build_block_superposition
from georecall.strategies import (
    codebook_from_codes,
    gram_cancellation_pairs,
    large_magnitude_codes,
    near_tie_offsets,
    with_near_tie,
    with_overflow,
    without_exactness_proof,
)
from georecall.theory import Instance
from georecall.verify.certify import code_distance_lower_bound
from georecall.verify.exact import ExactDecider
from georecall.theory.queries import SingleHopQueries
from georecall.verify.verdict import FAILURE, FRAGILE, ROBUST, combine
from georecall.verify.run import verify_model

PATHS = ("certify", "fast", "reference", "torch")


def classes(report) -> tuple:
    return report.robust, report.fragile, report.unproven, report.failures


def verify_all_paths(weights, instance, **options) -> dict:
    reports = {}
    for path in PATHS:
        forward = None
        if path == "torch":
            pytest.importorskip("torch")
            from georecall.verify.torch_path import TorchForward

            forward = TorchForward(weights)
        reports[path] = verify_model(weights, instance, path=path, forward=forward, **options)
    return reports


def confirm_by_ball_arithmetic(weights, instance, report, sample: int = 25) -> None:
    """Any exact_recall: true must survive ball arithmetic on the stored weights."""
    if not report.exact_recall:
        return
    decider = ExactDecider(weights)
    queries = SingleHopQueries(instance)
    picks = np.unique(np.linspace(0, queries.total - 1, min(sample, queries.total)).astype(np.int64))
    chunk = queries.take(picks)
    for tokens, answer in zip(chunk.tokens, chunk.answers):
        assert decider.decide(tokens, int(answer)) in (ROBUST, FRAGILE)


def hostile_block(seed: int = 0):
    """The issue's case: codes 0..2049, 3000 at 2^29 + 2^16 j, 1000 at 2^27 + j; one subject moved by 0.4."""
    codes = np.concatenate([np.arange(2050.0), 2.0**29 + 2.0**16 * np.arange(3000), 2.0**27 + np.arange(1000)])[:, None]
    instance = Instance.random(len(codes), 1, seed)
    model = build_block_superposition(instance, codebook_from_codes(codes))
    rows = model.weights.W_E[: instance.N].copy()
    subject = int(np.flatnonzero(instance.facts[0] == 5050 + 500)[0])
    rows[subject, 0] += 0.4
    return model.weights.with_subject_embeddings(rows), instance


def test_the_hostile_custom_codes_are_not_exact_on_any_path_and_every_path_agrees():
    weights, instance = hostile_block()
    reports = verify_all_paths(weights, instance)
    assert all(not r.exact_recall for r in reports.values())
    assert len({classes(r) for r in reports.values()}) == 1, {p: classes(r) for p, r in reports.items()}
    report = reports["reference"]
    # the 1,000 codes at 2^27 + j: float64 cannot tell them apart; the stored b_U = fl(-u^2/2) makes
    # half of them exact ties or losses, the rest correct but not float64-robust
    assert report.failures + report.fragile == 1000 and report.failures > 0 and report.fragile > 0
    assert report.unproven == 0
    assert report.robust == instance.N - 1000


def test_code_distance_from_differences_never_rounds_up_on_a_gram_cancellation_pair():
    codes = np.array([[2.0**28 + 4, 5.0], [2.0**28 + 2, 4.0]])
    bound = code_distance_lower_bound(codes)
    assert np.sqrt(5.0) * (1 - 1e-12) <= bound <= np.sqrt(5.0)


@settings(max_examples=30)
@given(gram_cancellation_pairs())
def test_code_distance_bound_is_below_the_exact_distance(codes):
    from fractions import Fraction

    exact_squared = sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(codes[0], codes[1]))
    bound = code_distance_lower_bound(codes)
    assert Fraction(bound) ** 2 <= exact_squared
    assert bound >= float(exact_squared) ** 0.5 * (1 - 1e-12)


@settings(max_examples=8)
@given(large_magnitude_codes(), st.integers(0, 3), st.floats(0.05, 0.45))
def test_large_magnitude_codes_every_path_agrees_and_exact_is_confirmed(codes, seed, shift):
    instance = Instance.random(len(codes), 1, seed)
    weights = build_block_superposition(instance, codebook_from_codes(codes)).weights
    rows = weights.W_E[: instance.N].copy()
    rows[seed % instance.N, 0] += shift
    weights = weights.with_subject_embeddings(rows)
    reports = verify_all_paths(weights, instance)
    assert len({classes(r) for r in reports.values()}) == 1, {p: classes(r) for p, r in reports.items()}
    for report in reports.values():
        confirm_by_ball_arithmetic(weights, instance, report)
    # unit gaps at 2^26 or more: the run's logits round by more than its margins
    assert not reports["reference"].exact_recall


@settings(max_examples=10)
@given(near_tie_offsets(), st.integers(0, 15), st.integers(0, 1))
def test_margins_a_few_ulps_from_zero_are_decided_exactly(ulps, subject, relation):
    """Without Lemma S8 (attention it cannot prove uniform), a margin of a few 2^-48 lies inside
    the error bound: ball arithmetic decides it, every path alike."""
    instance = Instance.random(16, 2, 0)
    weights, _ = with_near_tie(build_construction("block", instance).weights, instance, ulps, subject, relation)
    weights = without_exactness_proof(weights)
    reports = verify_all_paths(weights, instance, max_listed=64)
    assert len({classes(r) for r in reports.values()}) == 1
    for report in reports.values():
        assert not report.exact_recall and report.unproven == 0
        query = subject * instance.R + relation
        fragile = [o for o in report.first_fragile if o["query"] == query]
        failing = [o for o in report.first_failures if o["query"] == query]
        # correct by a few units of 2^-48: proven correct, not float64-robust; a tie or a loss: proven failing
        assert (fragile, failing) != ([], []) and (bool(fragile) == (ulps > 0)) and (bool(failing) == (ulps <= 0))
        offender = (fragile + failing)[0]
        assert abs(offender["margin"]) <= offender["error_bound"]  # float64 alone could not have told


def test_overflow_in_one_subjects_path_fails_exactly_its_queries_on_every_path():
    instance = Instance.random(16, 2, 0)
    weights = with_overflow(build_construction("block", instance).weights, subject=3)
    for report in verify_all_paths(weights, instance).values():
        assert report.failures == 2 and report.robust == 30
        assert sorted(f["subject"] for f in report.first_failures) == [3, 3]
        assert all(f["finite"] is False for f in report.first_failures)


def test_a_short_W_pos_is_refused_by_every_path():
    instance = Instance.random(8, 2, 0)
    weights = build_construction("block", instance).weights
    short = replace(weights, W_pos=np.zeros((1, weights.d_model)))
    for path in PATHS:
        forward = None
        if path == "torch":
            pytest.importorskip("torch")
            from georecall.verify.torch_path import TorchForward

            forward = TorchForward(short)
        with pytest.raises(ValueError, match="W_pos"):
            verify_model(short, instance, path=path, forward=forward)


def test_every_declared_query_kind_is_checked_with_per_kind_counts():
    instance = Instance.random(16, 2, 0)
    chains = build_construction("chains", instance, hops=2).weights
    both = replace(chains, meta=replace(chains.meta, query_kinds=("single_hop", "multi_hop")))
    report = verify_model(both, instance)
    kinds = report.details["kinds"]
    assert set(kinds) == {"single_hop", "multi_hop"}
    assert kinds["multi_hop"]["exact_recall"] and kinds["multi_hop"]["queries"] == 16 * 4
    assert not kinds["single_hop"]["exact_recall"] and kinds["single_hop"]["failures"] > 0
    assert not report.exact_recall and report.queries == 16 * 4 + 16 * 2


def test_combined_reports_obey_max_listed():
    instance = Instance.random(32, 2, 0)
    weights = build_construction("block", instance).weights
    broken = weights.with_subject_embeddings(weights.W_E[:32] * 0.0)
    parts = [verify_model(broken, instance, max_listed=3) for _ in range(3)]
    merged = combine(parts, "single_hop", 0.0, {"parts": 3}, max_listed=4)
    assert len(merged.first_failures) == 4 and merged.failures == 3 * parts[0].failures


def test_exact_decider_settles_a_uniform_three_way_tie_in_rationals():
    # three positions of uniform attention divide by 3: Arb cannot close the ball, fmpq can
    instance = Instance.random(8, 2, 0)
    model = build_construction("chains", instance, hops=2)
    decider = ExactDecider(model.weights)
    queries = __import__("georecall.theory.queries", fromlist=["MultiHopQueries"]).MultiHopQueries(instance, 2)
    chunk = queries.take(np.arange(4))
    for tokens, answer in zip(chunk.tokens, chunk.answers):
        assert decider.decide(tokens, int(answer)) in (ROBUST, FRAGILE)
        wrong = (int(answer) + 1) % 8
        assert decider.decide(tokens, wrong) == FAILURE


def test_cli_verify_json_has_the_classes_and_internal_errors_exit_3(tmp_path, capsys, monkeypatch):
    from georecall import cli

    path = str(tmp_path / "m.npz")
    assert cli.main(["build", "--N", "32", "--R", "2", "--out", path]) == 0
    capsys.readouterr()
    assert cli.main(["verify", path, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("exact_recall", "robust", "fragile", "unproven", "failures", "first_fragile", "first_unproven"):
        assert key in data
    assert data["details"]["path"] == "fast_brute_force" and data["robust"] == 64  # small N: brute force is fastest
    for forced, name in (("certify", "certify"), ("fast", "fast_brute_force"), ("reference", "reference")):
        assert cli.main(["verify", path, "--json", "--path", forced]) == 0
        assert json.loads(capsys.readouterr().out)["details"]["path"] == name
    assert cli.main(["threshold", "--N", "16", "--R", "1", "--seeds", "0"]) == 2
    assert "threshold: --seeds must be in 1..1,000, got 0" in capsys.readouterr().err

    def broken(args):
        raise RuntimeError("a planted bug")

    monkeypatch.setitem(cli.COMMANDS, "verify", broken)
    assert cli.main(["verify", path]) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "report" in err and len(err.strip().splitlines()) == 1


def test_compare_checks_the_spec_the_file_claims(tmp_path, capsys):
    from georecall.cli import main
    from georecall.formats.containers import load_model, save_model

    path = str(tmp_path / "m.npz")
    assert main(["build", "--N", "64", "--R", "2", "--out", path]) == 0
    loaded = load_model(path)
    lying = replace(loaded.spec, subject_embedding_dim=1, d_model=loaded.spec.d_model + 1)
    save_model(path, loaded.weights, loaded.instance, lying)
    capsys.readouterr()
    assert main(["compare", path]) == 2
    assert "meta.extra.spec.d_model" in capsys.readouterr().err


def test_a_complex_array_is_refused_naming_it(tmp_path):
    from georecall.formats.containers import load_model

    path = tmp_path / "m.npz"
    instance = Instance.random(8, 1, 0)
    weights = build_construction("block", instance).weights
    from georecall.formats.containers import save_model

    save_model(path, weights, instance)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["W_E"] = arrays["W_E"].astype(np.complex128) + 1j
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="W_E has dtype complex128"):
        load_model(path)


def test_auto_picks_the_certificate_for_large_nearest_code_models_and_brute_force_otherwise():
    from georecall.verify.certify import nearest_code_structure
    from georecall.verify.run import CERTIFY_ABOVE_N, choose_single_hop_path

    small = build_construction("block", Instance.random(64, 2, 0)).weights
    assert choose_single_hop_path(small, nearest_code_structure(small)) == "fast"
    large = build_construction("block", Instance.random(CERTIFY_ABOVE_N + 1, 1, 0)).weights
    assert choose_single_hop_path(large, nearest_code_structure(large)) == "certify"
    shifted = replace(large, b_U=large.b_U + np.arange(large.meta.N))  # not nearest-code: no certificate
    assert nearest_code_structure(shifted) is None and choose_single_hop_path(shifted, None) == "fast"
