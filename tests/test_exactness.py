"""Lemma S8 (docs/theorems/soundness.md): exact float64 evaluation, proven, and only where it holds."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from georecall.constructions import build_construction
from georecall.strategies import codebook_from_codes, edge_floats, without_exactness_proof
from georecall.constructions.block_superposition import build_block_superposition
from georecall.theory import Instance
from georecall.verify.conforming import conforming_logits
from georecall.verify.exactness import NO_FLOOR, exponent_floor, single_hop_is_exact
from georecall.verify.fast import single_hop_residuals
from georecall.theory.model import forward
from georecall.theory.queries import SingleHopQueries
from georecall.verify.rationals import rational_logits
from georecall.verify.run import verify_model


def _floor_by_fractions(values) -> int:
    floors = []
    for v in values:
        if v == 0:
            continue
        f, e = Fraction(v), 0
        while f.denominator > 1:
            f, e = f * 2, e - 1
        n = f.numerator
        while n % 2 == 0:
            n, e = n // 2, e + 1
        floors.append(e)
    return min(floors) if floors else NO_FLOOR


@settings(max_examples=60)
@given(st.lists(edge_floats(), min_size=1, max_size=12))
def test_exponent_floor_is_the_largest_power_of_two_dividing_every_entry(values):
    assert exponent_floor(np.array(values)) == _floor_by_fractions(values)


def test_exponent_floor_reads_past_its_prefix():
    values = np.ones(200_000)
    values[150_000] = 0.75  # 3 * 2^-2, far past the prefix read bit by bit
    assert exponent_floor(values) == -2 and exponent_floor(np.ones(200_000) * 8) == 3


@pytest.mark.parametrize("name,options,N,R", [
    ("block", {}, 64, 3), ("planar", {}, 64, 3), ("block", {"codebook": "multilevel", "precision": 16}, 300, 4),
    ("planar", {"codebook": "multilevel", "precision": 16}, 1000, 16), ("planar", {"codebook": "multilevel", "precision": 8}, 1000, 33),
    ("planar", {}, 4, 129), ("block", {"codebook": "rademacher"}, 64, 2),
])
def test_integer_constructions_are_proven_exact_and_verify_exact_with_no_fragile_query(name, options, N, R):
    instance = Instance.random(N, R, 0)
    weights = build_construction(name, instance, **options).weights
    assert single_hop_is_exact(weights)
    for path in ("auto", "fast", "reference"):
        report = verify_model(weights, instance, path=path)
        assert report.exact_recall and report.robust == N * R and report.min_margin >= 2.0, (path, report.summary())


def test_exact_means_every_evaluation_computes_the_rational_logits_bit_for_bit():
    """Where the lemma claims exactness, §3's order, the fast path's association and random
    conforming evaluations all give the exact rational logits."""
    instance = Instance.random(8, 2, 0)
    weights = build_construction("planar", instance, codebook="multilevel", precision=4).weights
    assert single_hop_is_exact(weights)
    chunk = SingleHopQueries(instance).take(np.arange(16))
    reference = forward(weights, chunk.tokens)
    residuals = single_hop_residuals(weights, np.arange(8))
    rng = np.random.default_rng(0)
    for q, tokens in enumerate(chunk.tokens):
        exact = [Fraction(int(v.p), int(v.q)) for v in rational_logits(weights, tokens)]
        assert [Fraction(v) for v in reference[q]] == exact
        assert [Fraction(v) for v in residuals[q] @ weights.W_U + weights.b_U] == exact
        for _ in range(3):
            assert [Fraction(v) for v in conforming_logits(weights, tokens, rng)] == exact


def test_codes_whose_logits_pass_2_to_the_53_are_not_claimed_exact():
    """Unit gaps at 2^e: the logits u . x - ||u||^2 / 2 are integers of about 2^(2e), exact below
    e = 26 and not above (a power-of-two scale alone would keep them exact: multiples of 2^2e)."""
    instance = Instance.random(8, 1, 0)
    for exponent, exact in ((20, True), (25, True), (27, False)):
        codes = 2.0**exponent + np.arange(8.0)[:, None]
        weights = build_block_superposition(instance, codebook_from_codes(codes)).weights
        assert single_hop_is_exact(weights) == exact


def test_attention_the_lemma_cannot_prove_uniform_is_not_claimed_exact_but_still_verifies():
    instance = Instance.random(16, 2, 0)
    weights = without_exactness_proof(build_construction("block", instance).weights)
    assert not single_hop_is_exact(weights)
    assert verify_model(weights, instance).exact_recall  # the general error model proves it robust instead


def test_a_query_weight_reading_only_coordinates_no_token_uses_is_still_structurally_zero():
    instance = Instance.random(16, 2, 0)
    weights = without_exactness_proof(build_construction("block", instance).weights)
    from dataclasses import replace

    W_E = weights.W_E.copy()
    W_E[:, -1] = 0.0  # the coordinate W_Q and W_K read is now 0 for every token
    assert single_hop_is_exact(replace(weights, W_E=W_E))
