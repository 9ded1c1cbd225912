import numpy as np
import pytest
from hypothesis import given, strategies as st

from georecall.constructions import binary_codebook, build_block_superposition, build_construction
from georecall.strategies import instances
from helpers import plain_single_hop_margins, random_weights
from georecall.theory import Instance
from georecall.verify import verify_single_hop
from georecall.verify.run import answer_margins, chunk_size_for
from georecall.theory.weights import MLPWeights, TransformerWeights


@given(instances(max_N=40, max_R=4), st.integers(1, 50))
def test_chunked_verifier_equals_plain_reference_on_random_models(instance, chunk_size):
    weights = random_weights(instance.N, instance.R, layers=1, seed=instance.N)
    margins = plain_single_hop_margins(weights, instance)
    report = verify_single_hop(weights, instance, chunk_size=chunk_size)
    assert report.failures == int(np.sum(margins <= 0))
    assert report.min_margin == pytest.approx(margins.min(), abs=1e-9)
    assert report.exact_recall == bool(np.all(margins > 0))
    assert report.exhaustive and report.queries == instance.N * instance.R


def test_chunked_verifier_equals_plain_reference_on_a_construction():
    inst = Instance.random(37, 3, seed=2)
    model = build_block_superposition(inst, binary_codebook(37))
    margins = plain_single_hop_margins(model.weights, inst)
    for chunk_size in (1, 5, 111, 10_000):
        report = verify_single_hop(model.weights, inst, chunk_size=chunk_size)
        assert report.exact_recall and report.failures == 0
        assert report.min_margin == margins.min() == 2.0


def test_verifier_fails_when_one_subject_embedding_is_perturbed():
    inst = Instance.random(64, 3, seed=0)
    model = build_block_superposition(inst, binary_codebook(64))
    d0 = 6
    s, r = 10, 2
    wrong = (inst.facts[r, s] + 1) % 64
    rows = model.weights.W_E[:64].copy()
    rows[s, r * d0 : (r + 1) * d0] = binary_codebook(64).codes[wrong]
    report = verify_single_hop(model.weights.with_subject_embeddings(rows), inst)
    assert not report.exact_recall
    assert report.failures == 1
    assert report.first_failures[0]["subject"] == s and report.first_failures[0]["relation"] == r
    assert report.first_failures[0]["predicted"] == wrong
    assert report.first_failures[0]["margin"] < 0


def test_verifier_fails_when_a_gate_is_lowered_and_counts_ties_as_failures():
    """Open relation 0's gate for every query: y = u_t + u_{f_0(s)}, a tie whenever they differ."""
    inst = Instance.random(32, 3, seed=1)
    model = build_block_superposition(inst, binary_codebook(32))
    block = model.weights.blocks[0]
    d0 = 5
    b_in = block.mlp.b_in.copy()
    b_in[: 2 * d0] = 0.0  # units of relation 0 come first: gate constant B lowered to 0
    broken = TransformerWeights(
        model.weights.W_E,
        (type(block)(block.attn, MLPWeights(block.mlp.W_in, b_in, block.mlp.W_out, block.mlp.b_out)),),
        model.weights.W_U, model.weights.b_U, model.weights.meta,
    )
    report = verify_single_hop(broken, inst, max_listed=1000)
    expected = sum(int(inst.facts[r, s] != inst.facts[0, s]) for s in range(32) for r in (1, 2))
    assert expected > 0
    assert report.failures == expected
    assert report.min_margin == 0.0
    assert all(f["tie"] for f in report.first_failures)


def test_memory_budget_bounds_the_chunk():
    inst = Instance.random(1024, 4, 0)
    model = build_construction("block", inst)
    small = chunk_size_for(model.weights, 2, 2 * 2**20)
    large = chunk_size_for(model.weights, 2, 512 * 2**20)
    assert small >= 1 and small < large
    assert small * 2 * 1024 * 8 <= 2 * 2**20  # the logits and the argmax pass fit the budget
    report = verify_single_hop(model.weights, inst, memory_budget_bytes=2 * 2**20)
    assert report.chunk_size == small and report.exact_recall


def test_answer_margins_by_definition():
    logits = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0]])
    margins, best = answer_margins(logits.copy(), np.array([1, 0]))
    assert margins.tolist() == [1.0, 0.0]
    assert best.tolist() == [2, 1]


def test_verifier_rejects_mismatched_sizes_and_bad_chunk():
    inst = Instance.random(8, 2, seed=0)
    model = build_construction("block", inst)
    with pytest.raises(ValueError, match="instance has N=9"):
        verify_single_hop(model.weights, Instance.random(9, 2, seed=0))
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        verify_single_hop(model.weights, inst, chunk_size=0)


def test_progress_callback_reaches_the_total():
    inst = Instance.random(20, 2, seed=0)
    seen = []
    verify_single_hop(build_construction("block", inst).weights, inst, chunk_size=7, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (40, 40) and len(seen) == 6
