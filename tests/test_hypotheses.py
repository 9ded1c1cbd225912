"""Every hypothesis a theorem states is needed: break it and watch the conclusion fail
(docs/theorems/single_hop.md, multi_hop.md)."""

import math

import numpy as np
import pytest

from georecall.constructions.associative import build_associative_multi_hop
from georecall.constructions.chains import build_multi_hop_chains
from georecall.constructions.codebooks import binary_codebook, rademacher_codebook, rademacher_d0
from georecall.constructions.layout import Subspace
from georecall.constructions.routing import Route, attention_leak_bound, routing_attention
from georecall.theory import Instance
from georecall.theory.model import attention


def _float64_margin(p: int) -> float:
    """Theorem 1's margin between adjacent top levels, evaluated as the float64 forward pass does."""
    top = float(2**p - 1)
    y = np.array([top, top])  # the target's code, one digit at the top level
    target, rival = np.array([top, top]), np.array([top - 2, top])
    logit = lambda u: float(u @ y) - float(u @ u) / 2  # noqa: E731
    return logit(target) - logit(rival)


def test_theorem1_float64_remark_needs_d0_times_level_squared_below_2_to_53():
    assert _float64_margin(16) == 2.0  # the code caps p at 16: every quantity is an exact float64 integer
    assert _float64_margin(26) == 2.0
    for p in (27, 28, 30):  # (2^p - 1)^2 > 2^53: the products round, and the margin is no longer the exact 2
        assert _float64_margin(p) != 2.0  # 0 (a tie) or 8, by the order the BLAS sums in (numpy 2.4: 0, 8, 0)


def test_theorem2_code_length_is_the_least_that_keeps_collisions_below_delta():
    N, delta, trials = 64, 0.01, 20_000
    d0 = rademacher_d0(N, delta)
    pairs = N * (N - 1) / 2
    assert pairs * 2.0**-d0 <= delta < pairs * 2.0 ** -(d0 - 1)  # d0 is the least length the union bound allows

    def collision_rate(length: int) -> float:
        return sum(not rademacher_codebook(N, delta, seed, d0=length).all_distinct() for seed in range(trials)) / trials

    at_d0, below = collision_rate(d0), collision_rate(d0 - 1)
    # exact birthday probabilities: 0.0077 at d0 = 18 and 0.0153 at 17; binomial sd about 0.0009
    assert at_d0 <= delta - 0.001
    assert below >= delta + 0.003  # one coordinate fewer breaks the guarantee P(collision) <= delta


@pytest.mark.parametrize("gap", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_lemma_4_0_bounds_the_leak_at_every_gap_and_the_leak_is_real(gap):
    n_ctx, D = 5, 5 + 3
    pos = Subspace("pos", 0, n_ctx)
    values = Subspace("v", n_ctx, 3)
    route = Route({4: 2}, values, values)  # the last position reads position 2
    attn = routing_attention(D, pos, [route], gap)
    rng = np.random.default_rng(0)
    x = np.zeros((1, n_ctx, D))
    x[0, :, :n_ctx] = np.eye(n_ctx)
    x[0, :, n_ctx:] = rng.uniform(-1, 1, (n_ctx, 3))
    out = attention(attn, x, 1.0, last_only=True)[0, 0, n_ctx:]
    deviation = np.max(np.abs(out - x[0, 2, n_ctx:]))
    bound = attention_leak_bound(n_ctx, 1.0, gap)
    assert deviation <= bound
    assert deviation >= 0.02 * bound  # the bound is within a small factor of what happens


def _chains(gap):
    instance = Instance.random(16, 2, 0)
    return build_multi_hop_chains(instance, binary_codebook(16), 2, score_gap=gap)


def test_theorem4_holds_while_epsilon_is_below_one_and_fails_past_it():
    for gap in (64.0, 12.0, 8.0, 6.0):
        model = _chains(gap)
        report = model.verify()
        assert report.exact_recall and report.min_margin >= model.spec.guaranteed_margin > 0
    # gap 2: lambda = 2 (n_ctx - 1) e^-2 = 0.54 and eps = (1 + B k R) lambda = 4.9 >= 1
    model = _chains(2.0)
    B, k, R = 2.0, 2, 2
    epsilon = (1 + B * k * R) * attention_leak_bound(3, 1.0, 2.0)
    assert epsilon >= 1 and model.spec.guaranteed_margin == 0.0  # the theorem promises nothing
    assert not model.verify().exact_recall  # and recall does fail


def test_theorem6_needs_the_propagated_leak_below_one():
    instance, book = Instance.random(16, 2, 0), binary_codebook(16)
    d0 = book.d0
    for gap in (64.0, 8.0):
        model = build_associative_multi_hop(instance, book, 2, score_gap=gap)
        assert model.verify().min_margin >= model.spec.guaranteed_margin > 0
    model = build_associative_multi_hop(instance, book, 2, score_gap=2.0)
    assert (2 * d0 + 1) * attention_leak_bound(3, 1.0, 2.0) >= 1 and model.spec.guaranteed_margin == 0.0
    assert not model.verify().exact_recall
    assert math.isclose(attention_leak_bound(3, 1.0, 64.0), 4 * math.exp(-64))


def test_theorem3_uniform_version_needs_a_union_over_every_answer_tuple():
    from georecall.constructions.shared_space import shared_space_sufficient_d, union_bound_t

    # one instance fixed before the maps: N (N - 1) R events; every instance at once: N^R (N - 1) R
    N, R, d0, delta = 256, 4, 8, 0.01
    assert float(union_bound_t(N, R, delta, uniform=True) - union_bound_t(N, R, delta)) == pytest.approx((R - 1) * math.log(N))
    fixed, uniform = shared_space_sufficient_d(N, R, d0, 1, delta), shared_space_sufficient_d(N, R, d0, 1, delta, uniform=True)
    assert uniform > fixed
    # d grows like t: R^2 log N against R log N, so the ratio tends to R as N grows
    big = [shared_space_sufficient_d(2**m, R, m, 1, delta, uniform=True) / shared_space_sufficient_d(2**m, R, m, 1, delta) for m in (8, 32)]
    assert big[0] < big[1] < R


def test_theorem3_guarantee_is_per_instance_an_instance_chosen_after_the_maps_can_fail():
    """Drop Theorem 3's hypothesis (the instance fixed independently of the maps): with one draw of
    maps at d = 26 the instance drawn beforehand is exact, yet an instance built after the maps,
    giving one subject the answer tuple those maps treat worst, fails. Covering every instance
    at once is Theorem 3''s union over answer tuples."""
    from georecall.constructions.shared_space import build_shared_space, random_maps

    N, R, d, seed = 16, 2, 26, 2
    book = binary_codebook(N)
    fixed = Instance.random(N, R, 123)
    assert build_shared_space(fixed, book, d, seed).verify().exact_recall
    maps, codes = random_maps(R, d, book.d0, seed), book.codes
    squares = 0.5 * np.sum(codes**2, axis=1)

    def margin(answers, r):  # the asked relation's readout M_r^T e_s against every code
        logits = codes @ (maps[r].T @ sum(maps[q] @ codes[a] for q, a in enumerate(answers))) - squares
        return logits[answers[r]] - np.max(np.delete(logits, answers[r]))

    worst = min(((a, b) for a in range(N) for b in range(N)), key=lambda t: min(margin(t, r) for r in range(R)))
    assert min(margin(worst, r) for r in range(R)) < 0
    facts = np.array([(np.arange(N) + worst[r]) % N for r in range(R)])  # subject 0 answers worst[r] under relation r
    chosen = Instance.from_arrays(facts)
    report = build_shared_space(chosen, book, d, seed).verify(max_listed=100)
    assert not report.exact_recall and 0 in {f["subject"] for f in report.first_failures}


def test_lemma_4_0_needs_one_hot_positions_two_positions_sharing_a_code_break_the_bound():
    n_ctx, D = 5, 5 + 3
    pos = Subspace("pos", 0, n_ctx)
    values = Subspace("v", n_ctx, 3)
    attn = routing_attention(D, pos, [Route({4: 2}, values, values)], 8.0)
    x = np.zeros((1, n_ctx, D))
    x[0, :, :n_ctx] = np.eye(n_ctx)
    x[0, 3, :n_ctx] = x[0, 2, :n_ctx]  # position 3 carries position 2's code: the hypothesis dropped
    x[0, :, n_ctx:] = np.random.default_rng(0).uniform(-1, 1, (n_ctx, 3))
    out = attention(attn, x, 1.0, last_only=True)[0, 0, n_ctx:]
    deviation = np.max(np.abs(out - x[0, 2, n_ctx:]))
    assert deviation > 100 * attention_leak_bound(n_ctx, 1.0, 8.0)  # about half the gap between the two values
