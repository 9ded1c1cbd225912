"""The fast sequence path for chains and chain-of-thought (verify/sequence.py, docs/theorems/soundness.md, Lemma S9).

It is held to the bounded reference on the constructions (the same class for every query, the same
failures on broken ones), to the oracle on issue 19's hostile cases posed as one-hop chains, and it
must fail the differential check when its radius rule is broken.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import hostile_cases
from edge_checks import assert_no_path_beats_the_oracle, classes_by_path, query_classes
from helpers import random_weights, swapped_hop_flips, swapped_hop_heads
from georecall.constructions import build_construction
from georecall.theory.instance import Instance
from georecall.theory.queries import ChainOfThoughtStepQueries, MultiHopQueries, cot_parameters
from georecall.theory.weights import AttentionWeights, Block
from georecall.verify.error_model import norm_up
from georecall.verify.reference import BoundedForward, unembedding_support
from georecall.verify.run import verify_model
from georecall.verify.sequence import SequenceForward
from georecall.verify.verdict import FAILURE, ROBUST
from test_edges import EXPECTED

CASES = [("chains", {"chains": "exact"}, 2), ("chains", {"chains": "up_to"}, 3), ("cot", {}, 3), ("cot", {"cot_steps": 2}, 4)]


def as_one_hop_chains(weights):
    """The same file declaring 'multi_hop' queries of one hop: the prompts [s, N + r] go through the sequence path."""
    return replace(weights, meta=replace(weights.meta, query_kinds=("multi_hop",), extra={"hops": 1, "chains": "exact"}))


def with_noise(weights, seed: int, scale: float = 1e-3):
    """Every attention and MLP array moved a little, and W_pos added: radii and scores no construction has."""
    rng = np.random.default_rng(seed)
    a, m = weights.blocks[0].attn, weights.blocks[0].mlp
    moved = lambda x: x + scale * rng.standard_normal(x.shape)  # noqa: E731
    attn = AttentionWeights(moved(a.W_Q), moved(a.W_K), moved(a.W_V), moved(a.W_O))
    mlp = replace(m, W_in=moved(m.W_in), b_in=moved(m.b_in))
    W_pos = moved(weights.W_pos) if weights.W_pos is not None else None
    return replace(weights, blocks=(Block(attn, mlp),), W_pos=W_pos)


def step_query_sets(weights, instance):
    meta = weights.meta
    if "cot" in meta.query_kinds:
        K, h = cot_parameters(meta)
        sep, pad = meta.special_tokens["SEP"], meta.special_tokens["PAD"]
        return [ChainOfThoughtStepQueries(instance, k, K, h, t, sep, pad) for k in range(1, K + 1) for t in range(1, -(-k // h) + 1)]
    return [MultiHopQueries(instance, meta.extra["hops"])]


@pytest.mark.parametrize("name, options, hops", CASES)
def test_the_fast_residual_lies_within_its_radius_of_the_references(name, options, hops):
    """Both contain the exact residual: their centers are never further apart than the two radii."""
    model = build_construction(name, Instance.random(12, 3, 5), hops=hops, **options)
    for weights in (model.weights, with_noise(model.weights, 1)):
        support = unembedding_support(weights)
        fast, reference = SequenceForward(weights, support), BoundedForward(weights)
        for queries in step_query_sets(weights, model.instance):
            chunk = queries.take(np.arange(queries.total))
            rows = fast.final_residual(chunk.tokens)
            x, rx, safe = reference.final_residual(chunk.tokens)
            gap = norm_up(rows.center - x[:, support])
            assert np.all(gap <= rows.radius_norm + norm_up(rx[:, support])), queries.kind
            assert rows.safe.all() and safe.all()
            assert np.all(rows.radius_norm < 1e-6)  # and the radius is small enough to prove recall


@pytest.mark.parametrize("name, options, hops", CASES)
def test_fast_and_reference_paths_give_every_query_the_same_class(name, options, hops):
    model = build_construction(name, Instance.random(16, 3, 2), hops=hops, **options)
    weights = with_noise(model.weights, 3, scale=0.1)  # enough to break some queries and leave others robust
    reports = {path: verify_model(weights, model.instance, path=path, max_listed=10**6) for path in ("fast", "reference")}
    assert reports["fast"].details["path"] == "fast_sequence" and reports["reference"].details["path"] == "reference"
    for kind in ("queries", "robust", "fragile", "unproven", "failures", "exhaustive"):
        assert getattr(reports["fast"], kind) == getattr(reports["reference"], kind), kind
    assert reports["fast"].exhaustive and 0 < reports["fast"].robust < reports["fast"].queries


def test_a_broken_chain_construction_fails_on_the_fast_path_exactly_where_the_reference_does():
    instance = Instance.random(16, 3, 4)
    broken = swapped_hop_heads(build_construction("chains", instance, hops=2).weights)
    fast = verify_model(broken, instance, path="fast", max_listed=10**6)
    reference = verify_model(broken, instance, path="reference", max_listed=10**6)
    assert fast.details["path"] == "fast_sequence" and swapped_hop_flips(instance) > 0
    assert fast.failures == reference.failures == swapped_hop_flips(instance)
    assert sorted(f["query"] for f in fast.first_failures) == sorted(f["query"] for f in reference.first_failures)


@pytest.mark.parametrize("seed", range(4))
def test_random_one_layer_models_get_the_references_class_on_every_chain(seed):
    """No construction: dense random weights with W_pos and two heads; most queries fail, and the two paths agree on each."""
    weights = random_weights(6, 2, layers=1, n_ctx=4, seed=seed)
    weights = replace(weights, meta=replace(weights.meta, query_kinds=("multi_hop",), extra={"hops": 3, "chains": "up_to"}))
    instance = Instance.random(6, 2, seed)
    reports = {path: verify_model(weights, instance, path=path, max_listed=10**6) for path in ("fast", "reference")}
    classes = {path: query_classes(report, report.queries) for path, report in reports.items()}
    assert reports["fast"].details["path"] == "fast_sequence" and reports["fast"].queries == 6 * (2 + 4 + 8)
    assert classes["fast"].tolist() == classes["reference"].tolist()


def test_the_certificate_decides_the_constructions_and_the_margin_search_finds_the_least_margin():
    model = build_construction("cot", Instance.random(40, 3, 0), hops=3)
    report = verify_model(model.weights, model.instance, path="fast")
    reference = verify_model(model.weights, model.instance, path="reference")
    assert report.exact_recall and report.exhaustive
    assert report.details["certified"] == sum(40 * 3**k * k for k in (1, 2, 3))  # every emitted token of every depth
    assert report.min_margin == pytest.approx(reference.min_margin, rel=1e-9)
    assert 0 < report.details["min_margin_lower_bound"] <= report.min_margin


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_hostile_case_posed_as_one_hop_chains_gets_the_oracles_class(name):
    weights, instance, _ = hostile_cases.CASES[name]()
    chains = as_one_hop_chains(weights)
    classes = classes_by_path(chains, instance, paths=("fast", "reference", "exact"))
    for path, found in classes.items():
        assert found.tolist() == EXPECTED[name], f"{name}: path {path} says {found.tolist()}"
    assert_no_path_beats_the_oracle(chains, instance, classes)


def test_the_differential_check_catches_the_sequence_path_without_its_underflow_terms(monkeypatch):
    """Mutation: Lemma S1's underflow term, the envelope and the twin norms' underflow allowance
    dropped from the sequence path only (its undecided queries still go to the intact reference)."""
    import georecall.verify.fast_radius as fast_radius
    import georecall.verify.sequence as sequence

    weights, instance, _ = hostile_cases.score_underflow()
    chains = as_one_hop_chains(weights)
    for module in (sequence, fast_radius):
        monkeypatch.setattr(module, "chain_underflow", lambda G, nodes, width: np.zeros(np.shape(G)))
        monkeypatch.setattr(module, "in_range", lambda G, ops=None: G == G)
    monkeypatch.setattr(sequence, "_twin_norm", lambda rows, abs_matrix: norm_up(rows @ abs_matrix))
    classes = classes_by_path(chains, instance, paths=("fast", "exact"))
    assert classes["fast"][0] == ROBUST and classes["exact"][0] == FAILURE
    with pytest.raises(AssertionError, match="oracle says failure"):
        assert_no_path_beats_the_oracle(chains, instance, classes)


def test_sampling_and_the_reference_default_still_apply(tmp_path, capsys):
    from georecall.cli import main
    from georecall.formats.containers import save_model

    model = build_construction("chains", Instance.random(40, 4, 0), hops=3)
    path = tmp_path / "chains.npz"
    save_model(path, model.weights, model.instance, model.spec)
    assert main(["verify", str(path), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["exhaustive"] and report["details"]["path"] == "fast_sequence" and report["details"]["max_queries"] == 2**24
    assert main(["verify", str(path), "--json", "--quiet", "--max-queries", "500"]) == 0
    sampled = json.loads(capsys.readouterr().out)
    assert not sampled["exhaustive"] and sampled["queries"] == 500
    assert main(["verify", str(path), "--json", "--quiet", "--path", "reference", "--max-queries", "300"]) == 0
    assert json.loads(capsys.readouterr().out)["details"]["path"] == "reference"


def test_the_fast_path_refuses_two_layer_chains():
    from georecall.theory.checks import InputError

    model = build_construction("associative", Instance.random(8, 2, 1), hops=2)
    assert model.weights.n_layers == 2
    with pytest.raises(InputError, match="one-layer"):
        verify_model(model.weights, model.instance, path="fast")
    assert verify_model(model.weights, model.instance).details["path"] == "reference"
