"""Construction K1' (docs/theorems/single_hop.md, Theorem 1'): single hop at d_model = R d0 + 2."""

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given

from georecall.bounds import compare
from georecall.constructions import build_construction
from georecall.constructions.planar import circle_points, planar_relation_codes
from georecall.strategies import codebook_options, instances
from georecall.theory import Instance
from georecall.theory.weights import Block, MLPWeights


@given(instances(max_N=600, max_R=12, explicit_max_N=24), codebook_options(max_precision=4))
def test_theorem1_prime_exact_recall_at_d_model_R_d0_plus_2(instance, options):
    model = build_construction("planar", instance, **options)
    spec, d0 = model.spec, model.spec.extra["d0"]
    assert spec.d_model == instance.R * d0 + 2 and spec.d_mlp == 2 * (instance.R + 1) * d0
    report = model.verify()
    if options["codebook"] == "rademacher" and len(np.unique(model.weights.W_U.T, axis=0)) < instance.N:
        assert not report.exact_recall  # outside Theorem 2's event two codes collide
        return
    assert report.exact_recall and report.robust == report.queries == instance.N * instance.R
    assert report.min_margin >= 2.0


def test_retargeting_keeps_every_shared_array():
    model = build_construction("planar", Instance.random(256, 5, 0))
    other = model.retarget(Instance.random(256, 5, 1))
    assert other.verify().exact_recall
    for name, array in model.weights.shared_arrays().items():
        assert np.array_equal(other.weights.shared_arrays()[name], array), name


@pytest.mark.parametrize("R", [1, 2, 4, 5, 8, 9, 33, 200])
def test_relation_codes_are_distinct_points_of_one_circle_with_integer_gaps(R):
    codes, n = planar_relation_codes(R)
    assert len(np.unique(codes, axis=0)) == R
    assert np.all(np.einsum("ij,ij->i", codes, codes) == n)
    gram = codes @ codes.T
    off = gram[~np.eye(R, dtype=bool)]
    assert np.all(off <= n - 1) and np.all(off == np.round(off))  # the gate shuts other relations by >= B
    assert len(circle_points(5 * 13)) == 16


def _with_mlp(model, **changes):
    mlp = replace(model.weights.blocks[0].mlp, **changes)
    return replace(model.weights, blocks=(Block(model.weights.blocks[0].attn, MLPWeights(mlp.W_in, mlp.b_in, mlp.W_out, mlp.b_out)),))


def test_the_verifier_catches_a_gate_below_the_code_range_and_missing_cancel_units():
    from georecall.verify.run import verify_model

    instance = Instance.random(256, 4, 0)
    model = build_construction("planar", instance, codebook="multilevel", precision=2)  # codes in {-3, -1, 1, 3}, B = 4
    d0, R = model.spec.extra["d0"], instance.R
    mlp = model.weights.blocks[0].mlp
    # B = 2 < L - 1 = 3: an unasked relation's unit leaks when its code entry is 3 and the gap is 1
    weak = mlp.W_in.copy()
    weak[-2:, : 2 * R * d0] /= 2.0
    broken = _with_mlp(model, W_in=weak, b_in=np.concatenate([mlp.b_in[: 2 * R * d0] / 2.0, mlp.b_in[2 * R * d0 :]]))
    assert not verify_model(broken, instance).exact_recall
    # without the cancel units W_U reads the sum of every block, not the asked one
    W_out = mlp.W_out.copy()
    W_out[2 * R * d0 :] = 0.0
    assert not verify_model(_with_mlp(model, W_out=W_out), instance).exact_recall


def test_planar_is_tight_on_d_model_where_the_slot_construction_was_not():
    instance = Instance.random(256, 4, 0)
    planar, slot = (compare(build_construction(name, instance).spec, precision=1) for name in ("planar", "block"))
    assert planar.ratio_d_model == pytest.approx(34 / 32) and slot.ratio_d_model == pytest.approx(44 / 32)
    # R ceil(log2 N / p) + 2 at N = 2^20, R = 8, p = 1: 162 against the bound 160
    spec = build_construction("planar", Instance.random(2**10, 8, 0)).spec
    assert spec.d_model == 8 * math.ceil(10 / 1) + 2
