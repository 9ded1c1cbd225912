"""Bounds: sympy closed forms against 60-digit numbers, integer cross-checks, brute-force counts."""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, strategies as st

from georecall.bounds import (
    any_model_min_params,
    compare,
    generic_min_d,
    information_bits,
    internal_nodes,
    log2_factorial,
    log2_realisable_tuples_lower,
    max_N,
    realisable_tuples_lower,
    robbins_log2_factorial_bounds,
)
from georecall.bounds.any_model import ANY_MODEL_MIN_PARAMS_EXPR, any_model_min_bits
from georecall.bounds.brute_force import count_realisable_tuples, count_realisable_tuples_by_extension
from georecall.bounds.generic import GENERIC_KHOP_EXACT_LOG2_EXPR, GENERIC_SINGLE_HOP_MIN_D_EXPR, INTERNAL_NODES_EXPR, generic_min_bits
from georecall.bounds.information import INFORMATION_BITS_EXPR, ROBBINS_LOWER_EXPR, ROBBINS_UPPER_EXPR
from georecall.theory.spec import ConstructionSpec

from georecall.bounds.symbols import N, R, k, p, success
from georecall.theory.queries import chain_tuples


@pytest.fixture(autouse=True)
def sixty_digits():
    """Comparisons of 60-digit values must themselves run at 60 digits."""
    with mpmath.workdps(60):
        yield


def seeded_points(count, seed=0):
    rng = np.random.default_rng(seed)
    # N <= 20,000: sympy evaluates log(factorial(N)) through the exact integer N!
    return [(int(rng.integers(2, 20_000)), int(rng.integers(1, 40)), int(rng.integers(1, 17))) for _ in range(count)]


# --- sympy closed forms agree with the high-precision numbers ------------------------------------


def test_information_expression_matches_log_gamma_numbers():
    for n, r, _ in seeded_points(20):
        symbolic = sp.N(INFORMATION_BITS_EXPR.subs({N: n, R: r}), 50)
        assert abs(mpmath.mpf(str(symbolic)) - information_bits(n, r)) < mpmath.mpf(10) ** -30 * information_bits(n, r)


def test_min_params_and_min_d_expressions_match():
    # Evaluate the argument of each ceiling at 60 digits (sympy's exact ceiling of log(N!) is
    # very slow); the ceiling itself is checked against integers in the tests below.
    for n, r, prec in seeded_points(20, seed=1):
        inner = ANY_MODEL_MIN_PARAMS_EXPR.args[0].subs({N: n, R: r, p: prec, success: 1})
        value = mpmath.mpf(str(sp.N(inner, 60)))
        assert abs(value - any_model_min_bits(n, r) / prec) < 1e-40 * value
        assert int(mpmath.ceil(value)) == any_model_min_params(n, r, prec)
        inner = GENERIC_SINGLE_HOP_MIN_D_EXPR.args[0].subs({N: n, R: r, p: prec, success: sp.Rational(1, 1000)})
        value = mpmath.mpf(str(sp.N(inner, 60)))
        assert abs(value - generic_min_bits(n, r, success=mpmath.mpf(1) / 1000) / prec) < 1e-40 * abs(value)
        assert int(mpmath.ceil(value)) == generic_min_d(n, r, prec, success=mpmath.mpf(1) / 1000)


def test_khop_expressions_match():
    for n, r, _ in seeded_points(15, seed=2):
        r = 2 + r % 4
        for hops in (2, 3):
            assert INTERNAL_NODES_EXPR.subs({R: r, k: hops}) == internal_nodes(r, hops)
            if n < internal_nodes(r, hops) + r**hops:
                continue
            symbolic = sp.N(GENERIC_KHOP_EXACT_LOG2_EXPR.subs({N: n, R: r, k: hops}), 50)
            assert abs(mpmath.mpf(str(symbolic)) - log2_realisable_tuples_lower(n, r, hops)) < 1e-25 * symbolic


# --- Robbins' two-sided bounds, checked against exact integers ------------------------------------


@pytest.mark.parametrize("n", list(range(1, 60)) + [100, 257, 1000, 4096])
def test_robbins_bounds_strictly_bracket_log2_factorial_of_exact_integers(n):
    with mpmath.workdps(80):
        exact = mpmath.log(mpmath.mpf(math.factorial(n)), 2)
        lower, upper = robbins_log2_factorial_bounds(n)
        assert lower < exact < upper
        symbolic_lower = mpmath.mpf(str(sp.N(ROBBINS_LOWER_EXPR.subs(N, n), 60)))
        symbolic_upper = mpmath.mpf(str(sp.N(ROBBINS_UPPER_EXPR.subs(N, n), 60)))
        assert abs(symbolic_lower - lower) < 1e-40 and abs(symbolic_upper - upper) < 1e-40
        assert abs((upper - lower) - 1 / (12 * n * (12 * n + 1) * mpmath.log(2))) < 1e-40
        assert abs(log2_factorial(n) - exact) <= 1e-45 * exact


# --- integer cross-checks of the minimum sizes ----------------------------------------------------


@given(st.integers(2, 60), st.integers(1, 6), st.integers(1, 8))
def test_any_model_min_params_is_the_least_integer_meeting_the_counting_bound(n, r, prec):
    params = any_model_min_params(n, r, prec)
    instances = math.factorial(n) ** r
    assert 2 ** (params * prec) >= instances > 2 ** ((params - 1) * prec)


@given(st.integers(2, 5000), st.integers(1, 16), st.integers(1, 8))
def test_generic_min_d_is_the_least_integer_meeting_the_tuple_count(n, r, prec):
    d = generic_min_d(n, r, prec)
    assert 2 ** (d * prec) >= n**r > 2 ** ((d - 1) * prec)
    assert generic_min_d(n, r, prec, cot=True, hops=4) == d


def test_random_instance_version_loosens_by_log_one_over_the_success_probability():
    assert generic_min_d(2**10, 4, 1, success=2**-8) == 40 - 8
    assert any_model_min_params(8, 1, 1, success=0.5) == math.ceil(math.log2(math.factorial(8)) - 1)
    with pytest.raises(ValueError, match="success must be in"):
        generic_min_d(16, 2, 1, success=0)
    with pytest.raises(ValueError, match="proved where one subject.s answers are uniform"):
        generic_min_d(16, 2, 1, hops=2, success=0.5)


# --- brute-force counts of realisable answer tuples -----------------------------------------------

TINY = [(n, r, h, ch) for n in (2, 3, 4) for r in (1, 2) for h in (1, 2, 3) for ch in ("exact", "up_to")] + [
    (5, 2, 2, "exact"), (5, 2, 2, "up_to"), (5, 1, 3, "exact"), (4, 3, 1, "exact"), (4, 3, 2, "exact"),
]


@pytest.mark.parametrize("n, r, hops, chains", TINY)
def test_lemma_b4_against_enumeration_of_every_instance(n, r, hops, chains):
    count = count_realisable_tuples(n, r, hops, chains)
    assert realisable_tuples_lower(n, r, hops, chains) <= count <= n ** len(chain_tuples(r, hops, chains))
    assert count_realisable_tuples_by_extension(n, r, hops, chains) == count
    if hops == 1:
        assert count == n**r  # the single-hop count is exact


@pytest.mark.parametrize("n, r, hops, chains", [(3, 2, 2, "exact"), (3, 2, 2, "up_to"), (4, 2, 2, "exact"), (4, 3, 2, "up_to"),
                                                (7, 2, 2, "exact"), (8, 2, 2, "exact"), (9, 2, 2, "exact"), (7, 2, 2, "up_to"), (8, 2, 2, "up_to"), (6, 1, 4, "exact"), (7, 1, 5, "up_to")])
def test_lemma_b4_where_the_falling_factorial_is_not_vacuous(n, r, hops, chains):
    lower = realisable_tuples_lower(n, r, hops, chains)
    assert lower > 0
    count = count_realisable_tuples_by_extension(n, r, hops, chains)
    assert lower <= count <= n ** len(chain_tuples(r, hops, chains))


# --- monotonicity ----------------------------------------------------------------------------------


@given(st.integers(2, 10**6), st.integers(1, 12), st.integers(1, 4), st.sampled_from(["exact", "up_to"]))
def test_bounds_are_monotone_in_N_R_and_k(n, r, hops, chains):
    bits = generic_min_bits(n, r, hops, chains=chains)
    assert generic_min_bits(n + 1, r, hops, chains=chains) >= bits
    assert information_bits(n + 1, r) > information_bits(n, r) and information_bits(n, r + 1) > information_bits(n, r)
    assert any_model_min_params(n + 1, r, 1) >= any_model_min_params(n, r, 1)
    assert generic_min_bits(n, r + 1, hops, chains=chains) >= bits  # Lemma B4: max over R' <= R
    if depth_monotone_condition(n, r, hops):
        assert generic_min_bits(n, r, hops + 1, chains=chains) >= bits  # Lemma B4'


def depth_monotone_condition(n, r, hops):
    """Lemma B4': R >= 2 and N - (1 + R + ... + R^{k+1}) + 1 >= sqrt(N)."""
    return r >= 2 and n - sum(r**j for j in range(hops + 2)) + 1 >= math.sqrt(n)


def test_the_true_count_is_not_monotone_in_depth_so_lemma_b4_prime_needs_its_condition():
    assert [count_realisable_tuples(2, 1, hops) for hops in (1, 2, 3)] == [2, 1, 2]  # f^2 fixes s when N = 2


# --- capacity-depth tradeoff -------------------------------------------------------------------------


@given(st.integers(1, 400), st.integers(1, 8), st.integers(1, 8))
def test_max_N_with_cot_is_the_exact_integer_root(d, prec, r):
    n = max_N(d, prec, r, hops=3, cot=True)
    assert n**r <= 2 ** (d * prec) < (n + 1) ** r


@given(st.integers(8, 600), st.integers(2, 4), st.integers(2, 4))
def test_max_N_without_cot_is_the_boundary_and_shrinks_with_depth(d, r, hops):
    n = max_N(d, 1, r, hops)
    assume(n > 1)
    assert realisable_tuples_lower(n, r, hops) <= 2**d < realisable_tuples_lower(n + 1, r, hops)
    assert max_N(d + 1, 1, r, hops) >= n
    if depth_monotone_condition(n, r, hops - 1):  # then depth hops - 1 allows this N too (Lemma B4')
        assert max_N(d, 1, r, hops - 1) >= n


# --- compare ----------------------------------------------------------------------------------------


def hand_made_spec(**changes):
    fields = dict(
        name="claimed", N=2**20, R=8, d_model=100, d_mlp=100, n_layers=1, n_heads=1, d_head=10,
        subject_embedding_dim=120, subject_params=100 * 2**20, shared_params=10_000, shared_params_nonzero=1_000,
        bits_per_coordinate=1.0, guaranteed_margin=1.0,
    )
    fields.update(changes)
    return ConstructionSpec(**fields)


def test_a_claim_below_the_generic_bound_is_impossible():
    result = compare(hand_made_spec(subject_embedding_dim=159), precision=1)  # needs 8 * 20 = 160
    assert result.verdict == "impossible" and result.bound == "generic" and result.ratio < 1
    assert any("hidden precision assumption" in note for note in result.notes)
    assert compare(hand_made_spec(subject_embedding_dim=160), precision=1).verdict == "tight"
    assert compare(hand_made_spec(subject_embedding_dim=321), precision=1).verdict == "slack"


def test_fact_dependent_shared_weights_meet_only_the_any_model_bound():
    result = compare(hand_made_spec(fact_independent_shared=False, subject_embedding_dim=4, N=1024, R=2, shared_params=30_000), precision=1)
    assert [b["name"] for b in result.bounds] == ["any_model"]
    assert any("any-model bound only" in note for note in result.notes)
    needed = float(information_bits(1024, 2))
    assert result.bounds[0]["needed_bits"] == pytest.approx(needed)
    assert result.verdict == ("tight" if (4 * 1024 + 30_000) <= 2 * needed else "slack")


def test_generic_min_d_and_max_N_are_exact_at_astronomical_N():
    # log-gamma at 60 digits cannot tell log2(2^256 + 1) from 256; the integer path can.
    from georecall.bounds import max_N
    from georecall.bounds.generic import generic_min_d

    assert generic_min_d(2**256, 1, 1) == 256 and generic_min_d(2**256 + 1, 1, 1) == 257
    for d, bits, relations, hops in [(64, 4, 1, 2), (256, 1, 1, 2), (256, 4, 4, 2), (256, 1, 4, 1)]:
        n = max_N(d, bits, relations, hops)
        assert generic_min_d(n, relations, bits, hops) <= d < generic_min_d(n + 1, relations, bits, hops)
