import numpy as np
import pytest
from hypothesis import given

from georecall.constructions import build_construction, binary_codebook, build_block_superposition, multilevel_codebook, rademacher_codebook
from georecall.constructions.codebooks import Codebook, multilevel_d0, rademacher_d0
from georecall.strategies import codebook_options, instances, seeds
from georecall.theory import Instance
from georecall.verify import verify_single_hop

ALL_OPTIONS = [
    ("block", {"codebook": "binary"}),
    ("block", {"codebook": "multilevel", "precision": 3}),
    ("block", {"codebook": "rademacher", "delta": 1e-3, "codebook_seed": 5}),
    ("shared-space", {"codebook": "binary", "d": 300, "maps_seed": 2}),
]


@pytest.mark.parametrize("name, options", ALL_OPTIONS)
def test_shared_weights_do_not_depend_on_the_facts(name, options):
    a = build_construction(name, Instance.random(40, 3, seed=1), **options)
    b = build_construction(name, Instance.random(40, 3, seed=2), **options)
    assert not np.array_equal(a.weights.W_E[:40], b.weights.W_E[:40])
    shared_a, shared_b = a.weights.shared_arrays(), b.weights.shared_arrays()
    assert shared_a.keys() == shared_b.keys()
    for key in shared_a:
        assert np.array_equal(shared_a[key], shared_b[key]), key


@pytest.mark.parametrize("name, options", ALL_OPTIONS)
def test_retarget_rebuilds_only_subject_embeddings_and_stays_exact(name, options):
    model = build_construction(name, Instance.random(40, 3, seed=1), **options)
    new = Instance.random(40, 3, seed=99)
    moved = model.retarget(new)
    assert moved.instance == new
    for key, array in model.weights.shared_arrays().items():
        assert np.array_equal(array, moved.weights.shared_arrays()[key])
    assert moved.verify().exact_recall
    # the old weights do not answer the new facts: re-targeting did real work
    assert not verify_single_hop(model.weights, new).exact_recall


def test_retarget_rejects_other_sizes():
    model = build_construction("block", Instance.random(10, 2, seed=0))
    with pytest.raises(ValueError, match="N=10, R=2"):
        model.retarget(Instance.random(11, 2, seed=0))


@given(instances(max_N=300, max_R=5), codebook_options())
def test_block_spec_formulas(instance, options):
    model = build_construction("block", instance, **options)
    spec, d0 = model.spec, model.spec.extra["d0"]
    N, R = instance.N, instance.R
    assert spec.d_model == R * d0 + R + d0
    assert spec.d_mlp == 2 * R * d0
    assert spec.subject_params == N * spec.d_model
    assert spec.subject_embedding_dim == R * d0
    assert spec.shared_params == sum(a.size for a in model.weights.shared_arrays().values())
    assert spec.fact_independent_shared
    p = options.get("precision", 1)
    if options["codebook"] != "rademacher":
        assert d0 == multilevel_d0(N, p) and (1 << (p * d0)) >= N > (1 << (p * (d0 - 1)))
        assert spec.bits_per_coordinate == p
    else:
        assert d0 == rademacher_d0(N, options["delta"])


def test_codebook_values_and_distances():
    book = multilevel_codebook(100, 2)
    assert book.d0 == 4 and set(np.unique(book.codes)) == {-3.0, -1.0, 1.0, 3.0}
    assert book.all_distinct() and book.min_squared_distance() == 4.0
    assert binary_codebook(2).codes.tolist() == [[-1.0], [1.0]]
    assert rademacher_d0(1000, 1e-3) == int(np.ceil(np.log2(1000 * 999 / 2e-3)))
    assert rademacher_codebook(50, 1e-3, seed=3).codes.tolist() == rademacher_codebook(50, 1e-3, seed=3).codes.tolist()


@pytest.mark.parametrize("N, d0", [(16, 3), (100, 6), (1025, 10)])
def test_too_small_d0_fails_by_pigeonhole(N, d0):
    """2^d0 < N: two attributes share a code, so some query ties and recall must fail."""
    assert 2**d0 < N
    for codes in (binary_codebook(2**d0).codes[np.arange(N) % 2**d0], rademacher_codebook(N, 0.5, seed=1, d0=d0).codes):
        book = Codebook("binary", codes, 1.0, 1.0)
        report = build_block_superposition(Instance.random(N, 2, seed=0), book).verify()
        assert not report.exact_recall and report.failures > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"codebook": "nope"}, "codebook must be one of"),
        ({"codebook": "multilevel", "precision": 0}, "precision must be >= 1"),
        ({"codebook": "rademacher", "delta": 1.5}, r"delta must be in the open interval \(0, 1\)"),
    ],
)
def test_bad_codebook_options_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_construction("block", Instance.random(8, 2, seed=0), **kwargs)


def test_bad_construction_name_and_shared_space_codebook():
    inst = Instance.random(8, 2, seed=0)
    with pytest.raises(ValueError, match="construction must be one of block, planar, shared-space"):
        build_construction("lookup", inst)
    with pytest.raises(ValueError, match="codebook must be one of binary, rademacher for construction 'shared-space'"):
        build_construction("shared-space", inst, codebook="multilevel", precision=2, d=50)


@given(instances(max_N=64, max_R=3), seeds())
def test_shared_space_gate_closes_every_off_relation(instance, seed):
    """B bounds |<m_{r,i}, e_s>| for every subject: only the asked relation's units fire."""
    model = build_construction("shared-space", instance, d=40, maps_seed=seed)
    mlp = model.weights.blocks[0].mlp
    gate = model.weights.meta.extra["gate_constant"]
    subjects = model.weights.W_E[: instance.N]
    pre = subjects @ mlp.W_in  # relation coordinates are 0 in subject rows: this is +-<m, e_s>
    assert np.abs(pre).max() < gate
