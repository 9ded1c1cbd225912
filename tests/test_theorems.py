"""Each theorem of docs/theorems/single_hop.md, checked on instances that meet its hypotheses."""

import itertools
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, strategies as st

from georecall.constructions import build_block_superposition, build_construction, empirical_threshold_d, multilevel_codebook, rademacher_codebook
from georecall.constructions.shared_space import (
    chi_square_deviation,
    shared_space_margin_bound,
    shared_space_sufficient_d,
    union_bound_t,
)
from georecall.strategies import instances, precisions, seeds
from georecall.theory import Instance


# --- Theorem 1: block superposition, 2^p-level codes -------------------------------------------


@given(instances(max_N=2000, max_R=8), precisions(6))
def test_theorem1_exact_recall_with_min_margin_exactly_two(instance, p):
    model = build_construction("block", instance, codebook="multilevel", precision=p)
    report = model.verify()
    assert report.exact_recall and report.exhaustive
    assert report.min_margin == 2.0 == model.spec.guaranteed_margin
    d0 = math.ceil(math.log2(instance.N) / p - 1e-12)
    assert model.spec.d_model == instance.R * d0 + instance.R + d0


@pytest.mark.parametrize("p", [1, 2])
def test_theorem1_exhaustively_over_every_instance_with_N3_R2(p):
    perms = list(itertools.permutations(range(3)))
    for rows in itertools.product(perms, repeat=2):
        report = build_construction("block", Instance.from_arrays(rows), codebook="multilevel", precision=p).verify()
        assert report.exact_recall and report.min_margin == 2.0


def test_theorem1_every_query_margin_is_half_the_nearest_code_distance():
    instance = Instance.random(50, 2, seed=3)
    book = multilevel_codebook(50, 2)
    model = build_block_superposition(instance, book)
    from helpers import plain_single_hop_margins

    margins = plain_single_hop_margins(model.weights, instance)
    codes = book.codes
    for q, margin in enumerate(margins):
        s, r = divmod(q, 2)
        t = instance.facts[r, s]
        dist = ((codes - codes[t]) ** 2).sum(axis=1)
        dist[t] = np.inf
        assert margin == 0.5 * dist.min()


# --- Theorem 2: random Rademacher codes --------------------------------------------------------


@given(instances(max_N=1000, max_R=6), st.sampled_from([1e-2, 1e-4]), seeds())
def test_theorem2_distinct_codes_give_exact_recall_with_margin_two_hamming(instance, delta, seed):
    book = rademacher_codebook(instance.N, delta, seed)
    report = build_block_superposition(instance, book).verify()
    if book.all_distinct():  # the theorem's event, of probability >= 1 - delta
        assert report.exact_recall and report.min_margin >= 2.0
        assert report.min_margin % 2 == 0  # 2 * Hamming distance
    else:
        assert not report.exact_recall


def test_theorem2_collision_probability_is_at_most_delta():
    """d0(N, delta) keeps P(some codes collide) <= delta: counted over 400 seeds."""
    N, delta, trials = 64, 0.2, 400
    collisions = sum(not rademacher_codebook(N, delta, seed).all_distinct() for seed in range(trials))
    # binomial(400, <= 0.2): the mean is <= 80, and 4 standard deviations add 32
    assert collisions <= delta * trials + 4 * math.sqrt(trials * delta * (1 - delta))
    assert collisions > 0  # the test can see collisions at all


# --- Theorem 3: shared-space superposition -----------------------------------------------------


@given(instances(min_N=2, max_N=48, max_R=2, explicit_max_N=16), seeds())
def test_theorem3_exact_recall_at_the_proven_d(instance, seed):
    delta = 0.01
    model = build_construction("shared-space", instance, codebook="binary", delta=delta, maps_seed=seed)
    d = model.spec.extra["d"]
    assert d == shared_space_sufficient_d(instance.N, instance.R, model.spec.extra["d0"], 1, delta)
    report = model.verify()
    assert report.exact_recall
    assert report.min_margin >= model.spec.guaranteed_margin > 0


def test_theorem3_sufficient_d_is_the_least_d_meeting_the_hypothesis():
    rng = np.random.default_rng(0)
    for _ in range(25):
        N, R = int(rng.integers(2, 10**6)), int(rng.integers(1, 33))
        d0 = int(rng.integers(1, 40))
        h_min = int(rng.integers(1, d0 + 1))
        delta = float(10 ** rng.uniform(-9, -0.1))
        d = shared_space_sufficient_d(N, R, d0, h_min, delta)
        t = union_bound_t(N, R, delta)
        q = mpmath.sqrt(mpmath.mpf(h_min) / (R * d0))
        assert chi_square_deviation(d, t) < q <= chi_square_deviation(d - 1, t)
        assert shared_space_margin_bound(N, R, d0, h_min, d, delta) > 0
        assert shared_space_margin_bound(N, R, d0, h_min, d - 1, delta) <= 1e-12
        # Corollary 3.1: with h_min >= d0/4, d = 64 R t + 1 always suffices
        d_corollary = shared_space_sufficient_d(N, R, d0, max(1, math.ceil(d0 / 4)), delta)
        assert d_corollary <= 64 * R * float(t) + 1


def test_theorem3_is_sound_but_not_tight_measured_threshold_below_proven_d():
    instance = Instance.random(64, 2, seed=0)
    book = multilevel_codebook(64, 1)
    proven = shared_space_sufficient_d(64, 2, book.d0, 1, 0.01)
    measured = empirical_threshold_d(instance, book, seeds=(0, 1, 2), d_high=proven)
    assert measured["threshold_d"] <= proven
    assert measured["failing_d_below"] is not None  # some smaller d really fails
    below = measured["failing_d_below"]
    assert not all(build_construction("shared-space", instance, d=below, maps_seed=s).verify().exact_recall for s in (0, 1, 2))
