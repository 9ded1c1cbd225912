"""The certified path and the fast residual against the float64 reference, on the same inputs."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from georecall.constructions import build_construction
from georecall.strategies import codebook_options, instances, seeds
from helpers import random_weights
from georecall.theory import Instance
from georecall.verify import verify_single_hop
from georecall.verify.certify import certify_single_hop, code_distance_lower_bound
from georecall.verify.fast import single_hop_residuals
from georecall.theory.model import final_residual
from georecall.theory.queries import SingleHopQueries


def assert_same_report(fast, reference):
    assert fast.exact_recall == reference.exact_recall
    assert fast.failures == reference.failures
    assert fast.min_margin == pytest.approx(reference.min_margin, rel=1e-6, abs=1e-6)
    assert [f["query"] for f in fast.first_failures] == [f["query"] for f in reference.first_failures]
    assert fast.exhaustive and fast.queries == reference.queries


@given(instances(max_N=300, max_R=5, explicit_max_N=0), codebook_options())
def test_certificate_equals_reference_on_block_constructions(instance, options):
    model = build_construction("block", instance, **options)
    fast = certify_single_hop(model.weights, instance)
    assert_same_report(fast, verify_single_hop(model.weights, instance))
    codes = model.weights.W_U.T
    distinct = len(np.unique(codes, axis=0)) == len(codes)
    # Every query is certified, unless random codes collided (Theorem 2 allows it with probability
    # <= delta): then the code distance is 0 and the certificate must decline every query.
    assert fast.details["certified"] == (instance.N * instance.R if distinct else 0)


@given(instances(min_N=8, max_N=80, max_R=3, explicit_max_N=0), seeds())
def test_certificate_declines_exactly_where_the_residual_is_too_far_and_still_matches(instance, seed):
    model = build_construction("shared-space", instance, d=12, maps_seed=seed)  # far below the threshold
    fast = certify_single_hop(model.weights, instance)
    assert_same_report(fast, verify_single_hop(model.weights, instance))
    queries = SingleHopQueries(instance)
    chunk = queries.take(np.arange(queries.total))
    support = np.flatnonzero(np.any(model.weights.W_U != 0, axis=1))
    x = final_residual(model.weights, chunk.tokens)[:, support]
    r = np.linalg.norm(x - model.weights.W_U[support].T[chunk.answers], axis=1)
    distance = fast.details["code_distance_bound"]
    assert 2.0 * (1 - 1e-12) <= distance <= 2.0  # the exact 2, shrunk by its proven rounding allowance
    clear = np.sum(r < distance / 2 - 1e-6)  # the certificate's own float allowance is far smaller
    assert clear <= fast.details["certified"] <= np.sum(r < distance / 2)


def test_certificate_declines_without_nearest_code_bias_or_with_duplicate_codes():
    instance = Instance.random(40, 3, 2)
    model = build_construction("block", instance)
    # A bias defect B below D^2 / 8 = 1/2 is carried by the bound (Theorem C2'); at 1/2 the certificate declines.
    for shift, certified in ((0.25, instance.N * instance.R), (0.5, 0), (-3.0, 0)):
        shifted = replace(model.weights, b_U=model.weights.b_U + shift)
        report = certify_single_hop(shifted, instance)
        assert report.details["nearest_code_unembedding"] is (certified > 0) and report.details["certified"] == certified
        assert_same_report(report, verify_single_hop(shifted, instance))
    W_U = model.weights.W_U.copy()
    W_U[:, 1] = W_U[:, 0]  # attributes 0 and 1 share a code: every query about them ties
    twin = replace(model.weights, W_U=W_U)
    report = certify_single_hop(twin, instance)
    assert report.details["code_distance_bound"] == 0.0 and not report.exact_recall
    assert_same_report(report, verify_single_hop(twin, instance))


def test_certificate_catches_a_perturbed_subject_embedding():
    instance = Instance.random(64, 4, 0)
    model = build_construction("block", instance, codebook="multilevel", precision=2)
    rows = model.weights.W_E[:64].copy()
    rows[9, :3] += 3.0
    broken = model.weights.with_subject_embeddings(rows)
    assert_same_report(certify_single_hop(broken, instance), verify_single_hop(broken, instance))
    assert not certify_single_hop(broken, instance).exact_recall


def test_code_distance_bound_is_exact_small_and_valid_large():
    codes = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.5]])
    bound = code_distance_lower_bound(codes)
    assert bound >= 1.5 * (1 - 1e-14) and bound <= 1.5
    assert code_distance_lower_bound(np.vstack([codes, codes[:1]])) == 0.0
    big = build_construction("block", Instance.random(5000, 1, 0), codebook="multilevel", precision=3).weights.W_U
    assert 2.0 * (1 - 1e-14) <= code_distance_lower_bound(big[np.any(big != 0, axis=1)].T) <= 2.0


@pytest.mark.parametrize("heads, with_pos", [(1, False), (3, True)])
def test_fast_residual_equals_reference_on_random_weights(heads, with_pos):
    weights = random_weights(N=11, R=4, layers=1, heads=heads, n_ctx=2, seed=heads)
    if not with_pos:
        weights = replace(weights, W_pos=None)
    instance = Instance.random(11, 4, 0)
    queries = SingleHopQueries(instance)
    reference = final_residual(weights, queries.take(np.arange(queries.total)).tokens)
    np.testing.assert_allclose(single_hop_residuals(weights, np.arange(11)), reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(single_hop_residuals(weights, np.arange(3, 7), columns=np.array([0, 5])), reference[12:28][:, [0, 5]], rtol=1e-12, atol=1e-12)


def test_memory_budget_bounds_the_certificate_chunks():
    instance = Instance.random(3000, 4, 1)
    model = build_construction("block", instance)
    small = certify_single_hop(model.weights, instance, memory_budget_bytes=2 * 2**20)
    assert small.chunk_size * 2 * 3000 * 8 <= 2 * 2**20 and small.exact_recall


@given(instances(max_N=200, max_R=4, explicit_max_N=0), seeds())
def test_fast_brute_force_equals_reference(instance, seed):
    from georecall.verify.fast import verify_single_hop_fast

    for model in (build_construction("block", instance), build_construction("shared-space", instance, d=10, maps_seed=seed)):
        reference = verify_single_hop(model.weights, instance)
        fast = verify_single_hop_fast(model.weights, instance, memory_budget_bytes=2**20)
        assert_same_report(fast, reference)
        assert [f["predicted"] for f in fast.first_failures] == [f["predicted"] for f in reference.first_failures]


@given(st.integers(1, 40), st.integers(2, 70), st.integers(1, 9), st.integers(1, 80), st.booleans(), seeds())
def test_blocked_margins_equal_whole_row_margins_including_ties(rows, vocab, d, column_block, bias, seed):
    # Small integer entries make exact ties common: both paths must agree on them, margin 0 included.
    from georecall.verify.margins import blocked_margins
    from georecall.verify.run import answer_margins

    rng = np.random.default_rng(seed)
    residuals = rng.integers(-2, 3, (rows, d)).astype(float)
    W_U = rng.integers(-2, 3, (d, vocab)).astype(float)
    b_U = rng.integers(-1, 2, vocab).astype(float) if bias else None
    answers = rng.integers(0, vocab, rows)
    logits = residuals @ W_U + (0 if b_U is None else b_U)
    expected, expected_other = answer_margins(logits, answers)
    margins, other = blocked_margins(residuals, W_U, b_U, answers, column_block)
    np.testing.assert_array_equal(margins, expected)
    np.testing.assert_array_equal(other, expected_other)


def test_fast_brute_force_spans_several_column_blocks_on_both_paths():
    from georecall.verify.fast import verify_single_hop_fast
    from georecall.verify.margins import COLUMN_BLOCK, LOGIT_BLOCK_BYTES

    instance = Instance.random(COLUMN_BLOCK * 2 + 100, 2, 3)
    weights = build_construction("block", instance).weights
    broken = weights.with_subject_embeddings(weights.W_E[: instance.N] + np.random.default_rng(1).normal(0, 0.5, (instance.N, weights.d_model)))
    reference = verify_single_hop(broken, instance)
    assert reference.failures > 0
    small = verify_single_hop_fast(broken, instance, memory_budget_bytes=2**20)  # all residual rows do not fit
    assert not small.details["deduplicated"] and small.chunk_size * COLUMN_BLOCK * 8 <= LOGIT_BLOCK_BYTES
    large = verify_single_hop_fast(broken, instance, memory_budget_bytes=2**28)
    assert large.details["deduplicated"]
    for fast in (small, large):
        assert_same_report(fast, reference)
        assert [f["predicted"] for f in fast.first_failures] == [f["predicted"] for f in reference.first_failures]


@given(st.integers(1, 30), st.integers(2, 40), st.integers(1, 6), st.integers(1, 50), st.booleans(), seeds())
def test_top_two_and_deduplicated_margins_equal_whole_row_results_including_ties(rows, vocab, d, column_block, bias, seed):
    from georecall.verify.margins import blocked_top2, deduplicated_margins
    from georecall.verify.run import answer_margins

    rng = np.random.default_rng(seed)
    distinct = rng.integers(-1, 2, (max(1, rows // 3), d)).astype(float)
    residuals = distinct[rng.integers(0, len(distinct), rows)]  # repeated rows, as in a construction
    W_U = rng.integers(-1, 2, (d, vocab)).astype(float)
    b_U = rng.integers(-1, 2, vocab).astype(float) if bias else None
    logits = residuals @ W_U + (0 if b_U is None else b_U)
    t1, i1, t2, i2 = blocked_top2(residuals, W_U, b_U, column_block)
    np.testing.assert_array_equal(i1, logits.argmax(axis=1))
    np.testing.assert_array_equal(t1, logits.max(axis=1))
    masked = logits.copy()
    masked[np.arange(rows), i1] = -np.inf
    np.testing.assert_array_equal(i2, masked.argmax(axis=1))
    np.testing.assert_array_equal(t2, masked.max(axis=1))
    answers = rng.integers(0, vocab, rows)
    expected, expected_other = answer_margins(logits.copy(), answers)
    margins, other = deduplicated_margins(residuals, W_U, b_U, answers, column_block)
    np.testing.assert_allclose(margins, expected, rtol=0, atol=1e-12)
    assert np.array_equal(margins > 0, expected > 0)
    np.testing.assert_array_equal(other, expected_other)


def test_a_folded_readout_is_certified_and_still_catches_a_wrong_embedding():
    """Lemma C3: K1' reads the sum of its subject blocks; the certificate folds them and agrees with
    the reference, also on a perturbed subject, and declines when one copy of the code block differs."""
    from dataclasses import replace

    from georecall.constructions import build_construction
    from georecall.theory import Instance
    from georecall.verify.certify import nearest_code_structure
    from georecall.verify.run import verify_model

    instance = Instance.random(512, 4, 0)
    model = build_construction("planar", instance, codebook="multilevel", precision=2)
    structure = nearest_code_structure(model.weights)
    assert structure is not None and structure.folds == 4 and structure.codes.shape == (512, model.spec.extra["d0"])
    certified = verify_model(model.weights, instance, path="certify")
    assert certified.exact_recall and certified.details["certified"] == 2048 and certified.min_margin == 2.0
    rows = model.weights.W_E[:512].copy()
    rows[7, 0] += 2.5  # subject 7's relation-0 code moves past the midpoint to a neighbouring level
    broken = model.weights.with_subject_embeddings(rows)
    reference, folded = verify_model(broken, instance, path="reference"), verify_model(broken, instance, path="certify")
    assert not folded.exact_recall and folded.failures == reference.failures > 0
    W_U = model.weights.W_U.copy()
    W_U[0, 0] += 1.0  # one copy differs: no fold, and the bias defect is far too large to certify
    unfolded = nearest_code_structure(replace(model.weights, W_U=W_U))
    assert unfolded is None or unfolded.folds == 1


def test_duplicate_rows_are_found_exactly_as_a_full_sort_finds_them():
    from georecall.verify.certify import _has_duplicate_rows

    def by_full_sort(codes):
        rows = np.ascontiguousarray(codes + 0.0)
        keys = np.sort(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel())
        return bool(np.any(keys[1:] == keys[:-1]))

    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(400):
        codes = rng.integers(-2, 3, size=(int(rng.integers(1, 40)), int(rng.integers(1, 5)))).astype(float)
        codes[codes == 0] = rng.choice([0.0, -0.0], size=int((codes == 0).sum()))  # -0.0 equals 0.0
        found = _has_duplicate_rows(codes)
        assert found == by_full_sort(codes)
        seen.add(found)
    assert seen == {True, False}
    assert _has_duplicate_rows(np.array([[0.0, 1.0], [-0.0, 1.0]]))
    assert not _has_duplicate_rows(np.array([[np.nextafter(1.0, 2.0), 1.0], [1.0, 1.0]]))


@pytest.mark.parametrize("kind", ["exact", "noisy", "random"])
def test_leaving_out_units_no_subject_can_open_changes_no_row(kind, monkeypatch):
    """verify.fast skips, per relation and chunk, the hidden units whose pre-activation is proven <= 0
    for every subject; the rows must be those of the full computation, and units must be skipped."""
    import georecall.verify.fast as fast
    from helpers import random_weights

    model = build_construction("block", Instance.random(200, 4, 3))
    weights = model.weights
    if kind == "noisy":
        rng = np.random.default_rng(1)
        mlp = weights.blocks[0].mlp
        weights = replace(weights, blocks=(replace(weights.blocks[0], mlp=replace(mlp, W_in=mlp.W_in + 1e-3 * rng.standard_normal(mlp.W_in.shape))),))
    elif kind == "random":
        weights = random_weights(200, 4, layers=1, d_mlp=40, seed=2)
    subjects = np.arange(weights.meta.N)
    skipped = []
    choose = fast._units_that_may_open
    monkeypatch.setattr(fast, "_units_that_may_open", lambda *a: skipped.extend(choose(*a)) or skipped[-weights.meta.R :])
    kept = fast.bounded_single_hop_residuals(weights, subjects)
    monkeypatch.setattr(fast, "_units_that_may_open", lambda *a: [None] * weights.meta.R)
    full = fast.bounded_single_hop_residuals(weights, subjects)
    assert np.allclose(kept.center, full.center, rtol=1e-13, atol=1e-300)
    assert np.allclose(kept.radius_norm, full.radius_norm, rtol=1e-9) and np.array_equal(kept.safe, full.safe)
    if kind != "random":  # a selector opens about 1/R of its units per relation
        opened = [np.arange(weights.blocks[0].mlp.d_mlp)[units] for units in skipped if units is not None]  # slices or indices
        assert len(opened) == len(skipped) and all(len(units) <= weights.blocks[0].mlp.d_mlp // 2 for units in opened)
    if kind == "exact":
        assert np.array_equal(kept.center, full.center)


def test_the_least_bound_kept_by_the_chunks_is_the_one_the_search_would_find(monkeypatch):
    """certify_single_hop tracks the first certified query of least bound while its chunks finish (in
    their threads); it must be the one margin_search._lowest_certified finds over the whole array."""
    from georecall.verify import certify, margin_search

    seen = []
    search = certify.search_min_margin

    def spy(lower, certified, best, margins_of, chunk, checked, budget=None, lowest=None):
        seen.append((lowest, margin_search._lowest_certified(lower, certified)))
        return search(lower, certified, best, margins_of, chunk, checked, budget, lowest)

    monkeypatch.setattr(certify, "search_min_margin", spy)
    instance = Instance.random(512, 4, 5)
    weights = build_construction("block", instance).weights
    rng = np.random.default_rng(0)
    noisy = replace(weights, W_E=weights.W_E + 1e-3 * rng.standard_normal(weights.W_E.shape))  # distinct bounds, some ties broken
    for model in (weights, noisy):
        report = certify.certify_single_hop(model, instance, memory_budget_bytes=2**20)  # many chunks
        assert report.exact_recall
    assert len(seen) == 2 and all(kept == found for kept, found in seen)
