"""Sound at the edges of float64 (docs/theorems/soundness.md): issue 19's cases on every path, the
oracle checked against an independent 600-bit evaluation, and differential fuzzing.

Each case is a file on which some path used to give a false EXACT or a false failure. Now every
path gives the class the oracle proves, and no path is more confident than the oracle.
"""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import hostile_cases
from edge_checks import assert_no_path_beats_the_oracle, classes_by_path, query_set
from georecall.strategies import edge_models, edge_rescaled_constructions
from georecall.verify.verdict import FAILURE, FRAGILE, ROBUST
from georecall.verify.run import verify_model

pytest.importorskip("torch")

# what every path must say of each query (the oracle's class)
EXPECTED = {
    "score_underflow": [FAILURE, FRAGILE],  # query 1: scale * W_K = 2^1073 in an allowed association
    "value_underflow": [FAILURE, FRAGILE],  # query 1: its zero subject meets no underflow, but Lemma S1's G cannot see zeros
    "unembedding_norm_underflow": [FAILURE, FRAGILE],  # query 1: correct; the residual's relative bound is too wide to prove it
    "residual_norm_underflow": [FAILURE, FRAGILE],
    "off_support_overflow": [FRAGILE, FRAGILE],  # correct in exact arithmetic; every evaluation may overflow the unread coordinate
    "association_overflow": [FRAGILE, FRAGILE],
    "huge_unembedding": [ROBUST, ROBUST],
}


def independent_margins(weights, instance, bits: int = 600) -> list:
    """Exact margins at ``bits`` bits (mpmath, written from docs/FORMAT.md §3 alone), one per query."""
    mpmath.mp.prec = bits
    M = lambda a: mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in np.atleast_2d(a)])  # noqa: E731
    margins = []
    queries = query_set(weights, instance)
    chunk = queries.take(np.arange(queries.total))
    for tokens, answer in zip(chunk.tokens, chunk.answers):
        a, m = weights.blocks[0].attn, weights.blocks[0].mlp
        xs = [M(weights.W_E[t]) for t in tokens]
        i = len(tokens) - 1
        z = xs[i]
        for h in range(a.n_heads):
            q = xs[i] * M(a.W_Q[h])
            scores = [mpmath.mpf(weights.meta.attn_scale) * (q * (x * M(a.W_K[h])).T)[0, 0] for x in xs]
            top = max(scores)
            exps = [mpmath.exp(s - top) for s in scores]
            mix = sum((e / sum(exps) * (x * M(a.W_V[h])) for e, x in zip(exps, xs)), mpmath.zeros(1, a.d_head))
            z = z + mix * M(a.W_O[h])
        pre = z * M(m.W_in) + M(m.b_in)
        hidden = mpmath.matrix([[max(pre[0, c], 0) for c in range(pre.cols)]])
        logits = (z + hidden * M(m.W_out) + M(m.b_out)) * M(weights.W_U) + M(weights.b_U)
        rivals = [logits[0, r] for r in range(logits.cols) if r != answer]
        margins.append(float(logits[0, int(answer)] - max(rivals)))
    return margins


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_path_gives_the_oracles_class_on_each_case(name):
    weights, instance, truth = hostile_cases.CASES[name]()
    classes = classes_by_path(weights, instance)
    for path, found in classes.items():
        assert found.tolist() == EXPECTED[name], f"{name}: path {path} says {found.tolist()}"
    assert_no_path_beats_the_oracle(weights, instance, classes)
    margins = independent_margins(weights, instance)
    for query, claimed in truth.items():
        if claimed != "overflow":
            assert margins[query] == pytest.approx(claimed, rel=1e-9)
        # the oracle's correctness agrees with 600 bits written without the project's code
        assert (classes["exact"][query] == FAILURE) == (margins[query] <= 0 and EXPECTED[name][query] == FAILURE)


def test_the_certificate_no_longer_certifies_a_residual_its_radius_misplaced():
    weights, instance, _ = hostile_cases.certificate_fed_a_wrong_radius(N=64)
    classes = classes_by_path(weights, instance)
    assert len({tuple(c) for c in classes.values()}) == 1, {p: c.tolist() for p, c in classes.items()}
    assert (classes["certify"] == FAILURE).sum() > 0 and not (classes["certify"] == ROBUST).any()
    assert_no_path_beats_the_oracle(weights, instance, classes, draws=1)


def test_the_default_path_at_4097_subjects_picks_the_certificate_and_is_not_fooled():
    weights, instance, _ = hostile_cases.certificate_fed_a_wrong_radius(N=4097)
    report = verify_model(weights, instance, max_exact=40)  # the oracle settles 40; the rest stay unproven, never robust
    assert report.details["path"] == "certify" and report.details["certified"] == 0
    assert not report.exact_recall and report.robust == 0 and report.failures > 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(edge_models())
def test_fuzz_no_path_is_more_confident_than_the_oracle(model):
    weights, instance = model
    with np.errstate(all="ignore"):
        classes = classes_by_path(weights, instance)
    assert_no_path_beats_the_oracle(weights, instance, classes, draws=2)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_rescaled_constructions())
def test_fuzz_rescaled_constructions_against_the_oracle(model):
    weights, instance = model
    with np.errstate(all="ignore"):
        classes = classes_by_path(weights, instance)
    assert_no_path_beats_the_oracle(weights, instance, classes, draws=2)


def test_the_differential_check_can_fail_without_the_underflow_term(monkeypatch):
    """Mutation: with Lemma S1's underflow term dropped (the old TINY-only rule) the float paths
    call case 1's wrong query robust, and the differential check catches them."""
    import georecall.verify.fast_radius as fast_radius
    import georecall.verify.reference as reference

    weights, instance, _ = hostile_cases.score_underflow()
    for module in (reference, fast_radius):
        monkeypatch.setattr(module, "chain_underflow", lambda G, nodes, width: np.zeros(np.shape(G)))
        monkeypatch.setattr(module, "in_range", lambda G, ops=None: G == G)  # and no envelope either
    classes = classes_by_path(weights, instance, paths=("reference", "exact"))
    assert classes["reference"][0] == ROBUST and classes["exact"][0] == FAILURE
    with pytest.raises(AssertionError, match="oracle says failure"):
        assert_no_path_beats_the_oracle(weights, instance, classes)


def test_cli_runs_the_exact_path_and_names_it(tmp_path, capsys):
    from georecall.cli import main

    path = str(tmp_path / "m.npz")
    assert main(["build", "--N", "16", "--R", "2", "--out", path]) == 0
    capsys.readouterr()
    assert main(["verify", path, "--path", "exact", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["details"]["path"] == "exact" and data["robust"] == 32


def test_the_exact_path_refuses_work_out_of_reach_with_the_estimate(tmp_path, capsys):
    from georecall.cli import main

    path = str(tmp_path / "m.npz")
    assert main(["build", "--N", "65536", "--R", "8", "--out", path]) == 0
    capsys.readouterr()
    assert main(["verify", path, "--path", "exact"]) == 2
    err = capsys.readouterr().err
    assert "ball operations" in err and "limit" in err and len(err.strip().splitlines()) == 1


def test_norm_up_bounds_every_row_norm_over_the_whole_range_and_never_vanishes():
    """Lemma S5 on rows mixing zeros, subnormals and 2^1000 (the doubtful rows alone are rescaled)."""
    from fractions import Fraction

    from georecall.verify.error_model import norm_up

    rng = np.random.default_rng(11)
    for _ in range(300):
        rows = rng.standard_normal((int(rng.integers(1, 9)), int(rng.integers(1, 6))))
        rows *= np.exp2(rng.choice([-1074, -1060, -700, -450, 0, 450, 1000], size=rows.shape))
        rows[rng.random(rows.shape) < 0.35] = 0.0
        if rng.random() < 0.2:
            rows[rng.integers(len(rows))] = 0.0
        bounds = norm_up(rows)
        for row, bound in zip(rows, bounds):
            exact_square = sum(Fraction(float(v)) ** 2 for v in row)
            assert np.isfinite(bound) and Fraction(float(bound)) ** 2 >= exact_square
            assert bound > 0  # never 0, not even for a zero row (it carries 2^-1074)
