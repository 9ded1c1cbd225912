"""Testing your own construction with the georecall pytest plugin (installed with the package).

Run:  python -m pytest examples/own_construction
The fixtures (georecall_make_instance, georecall_instance, georecall_assert_exact_recall,
georecall_assert_respects_bounds) come from
the plugin; the Hypothesis strategies from georecall.strategies.
"""

import pytest
from hypothesis import given, settings

from georecall.strategies import instances
from lookup_table import lookup_table
from georecall.theory.spec import ConstructionSpec


def test_the_lookup_table_recalls_every_fact(georecall_instance, georecall_assert_exact_recall):
    report = georecall_assert_exact_recall(lookup_table(georecall_instance), georecall_instance, min_margin=0.5)
    assert report.exhaustive and report.min_margin == 1.0


@settings(max_examples=15, deadline=None)
@given(instances(max_N=40, max_R=4))
def test_on_random_sizes_and_bijections(instance):
    from georecall.testing import assert_exact_recall

    assert_exact_recall(lookup_table(instance), instance)


def test_the_planted_bug_is_caught(georecall_make_instance, georecall_assert_exact_recall):
    instance = georecall_make_instance(32, 3, seed=1)
    with pytest.raises(AssertionError, match="expected .* predicted .* margin"):
        georecall_assert_exact_recall(lookup_table(instance, broken=True), instance)


def test_wasteful_is_allowed_but_too_good_to_be_true_is_not(georecall_assert_respects_bounds):
    honest = dict(name="lookup", N=1024, R=4, d_model=5124, d_mlp=4096, n_layers=1, n_heads=1, d_head=5124,
                  subject_embedding_dim=4096, subject_params=1024 * 5124, shared_params=10**8, shared_params_nonzero=10**4,
                  bits_per_coordinate=1.0, guaranteed_margin=1.0, fact_independent_shared=True)
    comparison = georecall_assert_respects_bounds(ConstructionSpec(**honest), precision=1)
    assert comparison.verdict == "slack"
    claim = ConstructionSpec(**{**honest, "subject_embedding_dim": 8})  # 8 bits cannot name 4 of 1024 attributes
    with pytest.raises(AssertionError, match="claims fewer bits"):
        georecall_assert_respects_bounds(claim, precision=1)
