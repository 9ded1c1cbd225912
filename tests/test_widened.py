"""W_E and W_U kept in their stored dtype (theory/arrays.py): exact float64 wherever they are read,
the same verdicts as arrays widened up front, and a quarter of the memory for float16 files."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from georecall.constructions import build_construction
from georecall.formats.containers import load_model, save_model
from georecall.theory.arrays import Widened, all_finite_bits, nonzero_rows, widen
from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.verify.certify import nearest_code_structure
from georecall.verify.run import verify_model

EVERY_HALF = np.arange(1 << 16, dtype=np.uint16).view(np.float16)


def test_widening_is_exact_on_every_float16_bit_pattern():
    wide = widen(EVERY_HALF)
    plain = EVERY_HALF.astype(np.float64)
    assert np.array_equal(wide.view(np.uint64), plain.view(np.uint64))  # NaN payloads, -0.0 and subnormals included


def test_a_widened_array_reads_as_float64_everywhere():
    stored = np.array([[1.5, -0.0, 6e-8], [65504, -2.0, 0.25]], dtype=np.float16)
    array, plain = Widened(stored), stored.astype(np.float64)
    assert array.dtype == np.float64 and array.shape == (2, 3) and len(array) == 2 and array.nbytes == stored.nbytes
    for key in (0, (1, 2), slice(0, 1), np.array([1, 0]), (np.array([0, 1]), slice(1, 3)), (slice(None), 1)):
        assert np.array_equal(array[key], plain[key]) and np.asarray(array[key]).dtype == np.float64
    vector = np.arange(3.0)
    assert np.array_equal(array @ vector, plain @ vector) and np.array_equal(vector[:2] @ array, vector[:2] @ plain)
    assert np.array_equal(np.abs(array), np.abs(plain)) and np.array_equal(array != 0, plain != 0)
    assert np.array_equal(array.T, plain.T) and np.array_equal(array.copy(), plain) and array.astype(np.float32).dtype == np.float32
    assert array.sum() == plain.sum() and np.array_equal(array.reshape(-1), plain.reshape(-1)) and array.max(axis=0).shape == (3,)
    with pytest.raises(TypeError, match="read-only"):
        np.add(plain, 1.0, out=array)
    with pytest.raises(InputError, match="float16 or float32"):
        Widened(plain)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.sampled_from([np.float16, np.float32, np.float64]), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_nonzero_rows_reads_the_bits_as_a_comparison_would(dtype, rows, cols, seed):
    rng = np.random.default_rng(seed)
    values = rng.choice(np.array([0.0, -0.0, 1.0, 5e-324, 6e-8, -2.0, np.nan, np.inf]), size=(rows, cols))
    values[rng.random(rows) < 0.5] = rng.choice([0.0, -0.0])
    array = values.astype(dtype)
    expected = np.flatnonzero(np.any(array != 0, axis=1))
    assert np.array_equal(nonzero_rows(array), expected)
    if dtype != np.float64:
        assert np.array_equal(nonzero_rows(Widened(array)), expected)
        assert all_finite_bits(array) == bool(np.all(np.isfinite(array)))


def test_a_file_keeps_its_narrow_arrays_and_gives_the_same_verdicts(tmp_path):
    model = build_construction("block", Instance.random(300, 4, 1))
    path = tmp_path / "m.npz"
    save_model(path, model.weights, model.instance, model.spec)
    loaded = load_model(path)
    for name in ("W_E", "W_U"):
        array = getattr(loaded.weights, name)
        assert isinstance(array, Widened) and array.stored.dtype == np.float16
        assert array.nbytes * 4 == np.asarray(array).nbytes
        assert np.array_equal(np.asarray(array), getattr(model.weights, name))
    wide = replace(loaded.weights, W_E=np.asarray(loaded.weights.W_E).copy(), W_U=np.asarray(loaded.weights.W_U).copy())
    a, b = nearest_code_structure(loaded.weights), nearest_code_structure(wide)
    assert isinstance(a.codes, Widened) and np.array_equal(np.asarray(a.codes), b.codes)
    assert (a.distance, a.bias_gap, a.folds) == (b.distance, b.bias_gap, b.folds)
    for path_name in ("certify", "fast", "reference"):
        narrow, full = (verify_model(w, loaded.instance, path=path_name) for w in (loaded.weights, wide))
        assert (narrow.robust, narrow.failures, narrow.min_margin) == (full.robust, full.failures, full.min_margin), path_name


def test_a_float16_file_with_an_infinity_is_refused_naming_the_array(tmp_path):
    model = build_construction("block", Instance.random(64, 2, 1))
    path = tmp_path / "m.npz"
    save_model(path, model.weights, model.instance, model.spec)
    arrays = dict(np.load(path))
    assert arrays["W_U"].dtype == np.float16
    arrays["W_U"][3, 5] = np.inf
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=r"W_U holds a non-finite value \(inf\) at index \(3, 5\)"):
        load_model(tmp_path / "bad.npz")


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.integers(2, 60), st.integers(1, 7), st.integers(0, 2**32 - 1))
def test_narrow_codes_find_the_same_duplicates_and_distinct_values(n, d, seed):
    from georecall.verify import certify

    rng = np.random.default_rng(seed)
    codes = rng.choice(np.array([0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 6e-8], dtype=np.float16), size=(n, d))
    wide = codes.astype(np.float64)
    block = certify.CODE_BLOCK
    try:
        for certify.CODE_BLOCK in (block, 7):  # one block, and several (the rows read a block at a time)
            assert certify._has_duplicate_rows(Widened(codes)) == (len(np.unique(wide + 0.0, axis=0)) < n) == certify._has_duplicate_rows(wide)
            for narrow, plain, i in zip(certify._distinct_columns(Widened(codes)), certify._distinct_columns(wide), range(d)):
                assert np.array_equal(narrow, np.unique(wide[:, i])) and np.array_equal(plain, np.unique(wide[:, i]))
    finally:
        certify.CODE_BLOCK = block


def test_an_exactness_answer_decided_ahead_is_taken_once_and_forgotten():
    from georecall.verify import exactness

    weights = build_construction("block", Instance.random(64, 2, 1)).weights
    exactness.decide_ahead(weights)
    assert id(weights) in exactness._AHEAD and exactness.single_hop_is_exact(weights)
    assert id(weights) not in exactness._AHEAD  # taken: a later call decides afresh
    exactness.decide_ahead(weights)
    exactness.forget_ahead(weights)
    weights.W_E[0, 0] = 0.3  # not a dyadic of the construction's floor: the lemma no longer holds
    assert not exactness.single_hop_is_exact(weights)


def test_stored_members_are_read_in_place_and_their_crc_is_checked(tmp_path):
    from georecall.formats.npz import mapped_members

    rng = np.random.default_rng(0)
    arrays = {"W_E": rng.standard_normal((300, 7)).astype(np.float16), "W_U": np.asfortranarray(rng.standard_normal((7, 300)).astype(np.float32)),
              "b_U": rng.standard_normal(300)}
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)  # members stored, not deflated
    mapped = mapped_members(path, ["W_E", "W_U", "b_U", "absent"], above_bytes=0)
    assert sorted(mapped) == ["W_E", "W_U"]  # float64 is read by np.load, as is everything absent
    for name, values in mapped.items():
        assert isinstance(values, Widened) and values.finite  # proven finite in the pass that checked the CRC
        assert isinstance(values.stored.base, np.memmap) or isinstance(values.stored, np.memmap)
        assert values.stored.dtype == arrays[name].dtype and np.array_equal(values.stored, arrays[name])
    assert mapped_members(path, ["W_E"]) == {}  # small members are read the ordinary way
    damaged = bytearray(path.read_bytes())
    damaged[damaged.index(arrays["W_E"].tobytes()[:64]) + 10] ^= 0x40
    (tmp_path / "bad.npz").write_bytes(bytes(damaged))
    with pytest.raises(InputError, match="W_E.npy' fails its CRC-32 check"):
        mapped_members(tmp_path / "bad.npz", ["W_E"], above_bytes=0)


def test_a_large_file_is_mapped_and_gives_the_same_verdict(tmp_path, monkeypatch):
    import georecall.formats.npz as npz

    model = build_construction("block", Instance.random(500, 4, 2))
    path = tmp_path / "m.npz"
    monkeypatch.setattr(npz, "STORED_ABOVE_BYTES", 1000)  # store and map members above 1,000 bytes
    save_model(path, model.weights, model.instance, model.spec)
    loaded = load_model(path)
    assert isinstance(loaded.weights.W_E.stored, np.memmap) or isinstance(loaded.weights.W_E.stored.base, np.memmap)
    report = verify_model(loaded.weights, loaded.instance, path="certify")
    assert report.exact_recall and report.robust == 500 * 4


def test_every_finite_float16_reads_as_the_same_float32_from_its_bits():
    from georecall.theory.arrays import as_single

    finite = EVERY_HALF[np.isfinite(EVERY_HALF)]
    assert np.array_equal(as_single(finite).view(np.uint32), finite.astype(np.float32).view(np.uint32))  # -0.0, subnormals
    plain = np.arange(4.0)
    assert as_single(plain) is plain


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(list(EVERY_HALF[np.isfinite(EVERY_HALF)].astype(float))), min_size=1, max_size=300),
       st.integers(0, 2**32 - 1))
def test_the_exponent_floor_of_float16_values_read_as_float32_is_the_float64_one(values, seed):
    """Lemma S8's floor from float32 (the subject envelope's path) agrees with the float64 reading,
    past the bit-by-bit prefix too (the vectorised test at a guessed floor, and its fallback)."""
    from georecall.theory.arrays import as_single
    from georecall.verify import exactness

    halves = np.random.default_rng(seed).permutation(np.array(values, dtype=np.float16))
    prefix = exactness._PREFIX
    try:
        for exactness._PREFIX in (prefix, 3):
            floor = exactness.exponent_floor(halves.astype(np.float64))
            assert exactness.exponent_floor(as_single(halves)) == floor
            for at_most in (floor, floor - 1, floor + 1, -24, 0, 15, exactness.NO_FLOOR):  # a floor found already, block by block
                assert exactness.exponent_floor(as_single(halves), at_most=at_most) == min(at_most, floor)
    finally:
        exactness._PREFIX = prefix
