"""Every construction respects every applicable lower bound, and the block codes are tight."""

import math

import pytest

from hypothesis import given, strategies as st

from georecall.bounds import compare, generic_min_d
from georecall.constructions import build_construction
from georecall.strategies import codebook_options, instances, seeds
from georecall.theory import Instance


@given(instances(max_N=2000, max_R=8, explicit_max_N=0), codebook_options(max_precision=6))
def test_block_constructions_respect_every_bound_and_are_tight_up_to_the_ceiling(instance, options):
    spec = build_construction("block", instance, **options).spec
    p = int(spec.bits_per_coordinate)
    result = compare(spec, precision=p)
    assert result.verdict != "impossible"
    assert all(b["holds"] for b in result.bounds)
    assert spec.subject_embedding_dim >= generic_min_d(instance.N, instance.R, p)
    if options["codebook"] != "rademacher":
        # Theorem 1 spends R ceil(log2 N / p) p bits: ratio <= 1 + p / log2 N (docs B3)
        assert result.ratio <= 1 + p / math.log2(instance.N) + 1e-12
        # d_model = R d0 + R + d0 (docs/theorems/single_hop.md): its ratio adds (R + d0) p / needed
        d0 = spec.subject_embedding_dim // instance.R
        needed = result.bounds[-1]["needed_bits"]
        assert result.ratio_d_model == pytest.approx((instance.R * d0 + instance.R + d0) * p / needed)
        assert result.verdict == ("tight" if max(result.ratio, result.ratio_d_model) <= 2 else "slack")


@given(instances(min_N=2, max_N=40, max_R=2, explicit_max_N=0), seeds())
def test_shared_space_respects_every_bound_at_its_declared_precision(instance, seed):
    spec = build_construction("shared-space", instance, maps_seed=seed, d=50).spec
    result = compare(spec, precision=int(math.ceil(spec.bits_per_coordinate)))
    assert result.verdict != "impossible" and all(b["holds"] for b in result.bounds)


@given(st.integers(2, 2000), st.integers(1, 8), st.integers(2, 6))
def test_multilevel_at_fewer_bits_than_it_needs_is_flagged_impossible(N, R, p):
    spec = build_construction("block", Instance.random(N, R, 0), codebook="multilevel", precision=p).spec
    result = compare(spec, precision=1)
    spent, needed = spec.subject_embedding_dim, R * math.log2(N)
    assert (result.verdict == "impossible") == (spent < needed - 1e-9)


@given(instances(min_N=8, max_N=200, max_R=3, explicit_max_N=0), st.integers(1, 3), st.sampled_from(["chains", "cot", "associative"]))
def test_multi_hop_constructions_respect_their_bounds(instance, hops, name):
    spec = build_construction(name, instance, hops=hops).spec
    result = compare(spec, precision=1)
    assert result.verdict != "impossible" and all(b["holds"] for b in result.bounds)
    if name == "associative":
        assert [b["name"] for b in result.bounds] == ["any_model"]  # fact-dependent shared weights
    if name == "cot":
        assert spec.subject_embedding_dim >= generic_min_d(instance.N, instance.R, 1, hops=hops, cot=True)
