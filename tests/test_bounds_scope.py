"""Bounds applied only where their proofs reach (docs/theorems/bounds.md B2', B4, B5', B6, B7):
exact ceilings at any size, the exact-length and partial-CoT counts, vacuous bounds, the delta
form for random constructions, both ratios, and refusals of out-of-reach sizes."""

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from georecall.bounds import compare, max_N
from georecall.bounds.any_model import any_model_min_bits, any_model_min_params
from georecall.bounds.generic import generic_min_bits, generic_min_d, internal_nodes, realisable_tuples_lower, tuple_count
from georecall.bounds.information import information_bits
from georecall.cli import main
from georecall.constructions import build_construction
from georecall.theory import Instance
from georecall.theory.checks import InputError
from georecall.theory.queries import chain_tuples
from georecall.theory.spec import ConstructionSpec


def test_ceilings_are_exact_where_a_tolerance_would_snap():
    # R log2 N at N = 2^1310 + 1, R = 101 exceeds 132310 by about 2^-1303: a 1e-40 tolerance said 132310
    assert generic_min_d(2**1310 + 1, 101, 1) == 132311
    assert generic_min_d(2**1310, 101, 1) == 132310
    assert generic_min_d(2**1310 + 1, 101, 7) == math.ceil(132311 / 7)
    assert any_model_min_params(2, 5, 1) == 5 and any_model_min_params(2, 5, 1, success=0.25) == 3  # (2!)^5 / 4 = 2^3
    assert any_model_min_params(3, 1, 1) == 3  # log2 6 = 2.58
    # (2)_2 = 2 is the one falling factorial of length >= 2 that is a power of two
    assert tuple_count(3, 1, 2).log2_if_integer() == 1 and realisable_tuples_lower(3, 1, 2) == 2


def _answer_functions(N, R, k):
    """Distinct maps (s, chain of length k) -> answer over every instance, by enumeration."""
    perms = list(itertools.permutations(range(N)))
    chains = chain_tuples(R, k, "exact")
    seen = set()
    for choice in itertools.product(perms, repeat=R):
        table = []
        for s in range(N):
            for chain in chains:
                value = s
                for r in chain:
                    value = choice[r][value]
                table.append(value)
        seen.add(tuple(table))
    return len(seen)


@pytest.mark.parametrize("N, R, k, functions", [(3, 1, 2, 3), (4, 2, 2, 458), (3, 2, 2, None), (4, 1, 3, None)])
def test_lemma_b2_prime_counts_exact_length_chains_where_b2_overcounts(N, R, k, functions):
    count = _answer_functions(N, R, k)
    if functions is not None:
        assert count == functions  # the numbers the issue found
    assert 2 ** float(information_bits(N, R)) > count  # B2 (R log2 N!) would claim too much here
    needed = any_model_min_bits(N, R, hops=k, chains="exact")
    assert 2 ** float(needed) <= count + 1e-9  # Lemma B2' does not
    assert any_model_min_params(N, R, 1, hops=k) <= math.ceil(math.log2(count))
    # chains of every length include the single hops, so B2 applies there as stated
    assert any_model_min_bits(N, R, hops=k, chains="up_to") == information_bits(N, R)


def test_partial_chain_of_thought_is_compared_with_its_own_count_and_found_tight():
    model = build_construction("cot", Instance.random(64, 2, 0), hops=4, cot_steps=2)
    result = compare(model.spec, precision=1)
    assert result.verdict == "tight" and result.bound == "generic"
    needed = result.bounds[-1]["needed_bits"]
    assert needed == pytest.approx(math.log2(63**3 * 62**3))  # (N - 1)_{R} [(N - 1)_R]^R at h = 2
    assert 35.5 < needed <= 36 == result.bounds[-1]["spent_bits"]
    # the full-CoT count would say the same construction is 3 times too big
    assert float(generic_min_bits(64, 2, 4, cot=True)) == pytest.approx(12)


def test_a_bound_that_proves_nothing_gives_the_verdict_unbounded():
    spec = ConstructionSpec(name="deep", N=3, R=1, d_model=4, d_mlp=4, n_layers=1, n_heads=1, d_head=1, subject_embedding_dim=1,
                            subject_params=12, shared_params=10, shared_params_nonzero=10, bits_per_coordinate=1.0,
                            guaranteed_margin=1.0, hops=5)
    result = compare(spec, precision=1)
    assert result.verdict == "unbounded" and result.bound is None and result.ratio is None
    assert all(b["vacuous"] for b in result.bounds)
    assert sum("vacuous" in note for note in result.notes) == 2


def test_random_constructions_meet_the_delta_form_and_both_ratios_are_reported():
    model = build_construction("block", Instance.random(256, 4, 0), codebook="rademacher", delta=0.25)
    result = compare(model.spec, precision=1)
    generic = result.bounds[-1]
    assert generic["success"] == 0.75 and generic["needed_bits"] == pytest.approx(32 - math.log2(1 / 0.75))
    assert generic["ratio_d_model"] == pytest.approx(model.spec.d_model / generic["needed_bits"])
    assert result.ratio_d_model == generic["ratio_d_model"] > result.ratio
    # exact-length chains have no proved delta form: a random chain construction meets no bound
    chains = build_construction("chains", Instance.random(64, 2, 0), hops=2, codebook="rademacher", delta=0.25)
    result = compare(chains.spec, precision=1)
    assert result.verdict == "unbounded" and any("no random-instance" in note for note in result.notes)


def test_the_verdict_follows_the_stricter_ratio():
    spec = build_construction("block", Instance.random(256, 4, 0)).spec
    assert compare(spec, precision=1).verdict == "tight"  # 32 subject coordinates, d_model 44, bound 32
    assert compare(spec, precision=1, tight_factor=1.2).verdict == "slack"  # 44 / 32 = 1.375 > 1.2 although 32 / 32 = 1


@given(st.integers(8, 2000), st.integers(1, 4), st.integers(2, 4), st.sampled_from(["exact", "up_to"]))
def test_theorem_b6_window_brackets_the_cap(d, R, k, chains):
    n = max_N(d, 1, R, k, chains=chains)
    assert realisable_tuples_lower(n + 1, R, k, chains) > 2**d >= realisable_tuples_lower(n, R, k, chains)  # N_max + 1 is ruled out
    internal = internal_nodes(R, k)
    assume(n >= internal)
    answers = R**k if chains == "exact" else internal_nodes(R, k + 1) - 1
    assert (n + 1) ** answers > 2**d >= (n - internal + 1) ** answers  # 2^{d/M} - 1 < N_max <= 2^{d/M} + I - 1


def test_the_no_cot_cap_never_rises_with_depth_where_it_uses_all_relations():
    from georecall.capacity_depth import tradeoff

    rows = tradeoff(256, 4)
    full = [row["log2_N_max_bound_no_cot"] for row in rows if row["bound_no_cot_theorem_b6"]]
    assert full == sorted(full, reverse=True) and len(full) == 3
    assert [row["k"] for row in rows if not row["bound_no_cot_theorem_b6"]] == [4, 5, 6]


@pytest.mark.parametrize("R", [1, 2, 3, 4])
def test_the_theorem_b6_label_is_exactly_n_max_at_least_I_over_many_widths(R):
    """The label follows Theorem B6's hypothesis N_max >= I = 1 + R + ... + R^(k-1), not N_max + 1 >= I
    (issue 20: at d = 16, R = 2 the caps 8, 14, 30, 62 sit at I - 1 for k = 3..6 and are outside it)."""
    from georecall.bounds import max_N
    from georecall.bounds.generic import internal_nodes
    from georecall.capacity_depth import tradeoff

    for d in (8, 12, 16, 24, 32, 64, 128, 256):
        for row in tradeoff(d, R, max_hops=6):
            k, cap = row["k"], max_N(d, 1, R, row["k"])
            assert row["bound_no_cot_theorem_b6"] == (k == 1 or cap >= internal_nodes(R, k)), (d, R, k, cap)
            assert row["log2_N_max_bound_no_cot"] == pytest.approx(math.log2(cap))
    if R == 2:  # the example: caps 8, 14, 30, 62 against I = 7, 15, 31, 63
        labels = {row["k"]: row["bound_no_cot_theorem_b6"] for row in tradeoff(16, 2)}
        assert [labels[k] for k in (3, 4, 5, 6)] == [True, False, False, False]


@pytest.mark.parametrize("argv, message", [
    (["bounds", "--N", "4096", "--R", "4", "--d", str(10**30)], "beyond 1,048,576"),
    (["tradeoff", "--d", str(10**30), "--R", "4"], "beyond 1,048,576"),
    (["bounds", "--N", "8", "--R", "2", "--hops", "3", "--d", str(10**5)], "beyond 16,384"),
    (["bounds", "--N", "8", "--R", "2", "--hops-per-step", "2"], "--hops-per-step needs --cot"),
])
def test_out_of_reach_bounds_are_refused_at_once(capsys, argv, message):
    started = time.perf_counter()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert time.perf_counter() - started < 30  # generous: the refusal itself does no work


@pytest.mark.parametrize("argv", [
    ["bounds", "--N", "4", "--R", "2", "--hops", "100000", "--json"],
    ["bounds", "--N", "4", "--R", "2", "--hops", "100000", "--chains", "up_to", "--json"],
    ["bounds", "--N", "4096", "--R", str(10**30), "--json"],
    ["tradeoff", "--d", "256", "--R", str(10**30), "--max-hops", "2", "--json"],
])
def test_huge_but_reachable_inputs_answer(capsys, argv):
    import json

    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    if argv[0] == "bounds" and "100000" in argv:
        assert data["generic_vacuous"] is True and data["generic_min_d"] == 0
    if argv[0] == "bounds" and str(10**30) in argv:
        assert data["generic_min_d"] == 12 * 10**30  # R log2 4096 = 12 R exactly


def test_lemma_b4_counts_dominate_the_earlier_all_distinct_counts():
    for N, R, k in [(40, 2, 3), (100, 3, 2), (1000, 2, 5)]:
        internal = internal_nodes(R, k)
        old = math.perm(N - internal, R**k)  # every leaf distinct from every node
        assert realisable_tuples_lower(N, R, k) >= old
        assert np.isfinite(float(tuple_count(N, R, k).log2()))
    with pytest.raises(InputError, match="success < 1"):
        generic_min_d(64, 2, 1, hops=4, cot=True, hops_per_step=2, success=0.5)
