"""Files too large to hold (issue 21, goal 2): the streamed build writes the same bytes as the build
from memory; a mapped member is read a block at a time and its pages are released; the least
margins of 134 million queries are kept in pages."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from georecall.constructions.block_superposition import stream_block_superposition
from georecall.constructions.codebooks import MultilevelDigits, multilevel_codebook, multilevel_codes, multilevel_codes_digit
from georecall.constructions.registry import build_construction, build_streamed, streams
from georecall.formats.containers import load_model, save_arrays, save_model
from georecall.formats.npz import inspect_archive, mapped_members
from georecall.theory.arrays import RowBlocks, release, row_blocks
from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.verify.run import verify_model
from georecall.verify.verdict import LeastMargins


@pytest.mark.parametrize("N, R, precision", [(2, 1, 1), (5, 3, 2), (100, 4, 3), (4096, 8, 1), (1000, 3, 12), (300, 2, 16), (9000, 3, 7)])
def test_the_streamed_build_writes_the_bytes_of_the_build_from_memory(tmp_path, N, R, precision):
    """Every array, dtype, header, the facts, meta and the spec: byte for byte (levels past float16 included)."""
    instance = Instance.random(N, R, seed=7)
    built = build_construction("block", instance, codebook="binary" if precision == 1 else "multilevel", precision=precision)
    save_model(tmp_path / "dense.npz", built.weights, instance, built.spec)
    streamed = stream_block_superposition(instance, precision)
    save_arrays(tmp_path / "streamed.npz", streamed.arrays, instance, streamed.meta, streamed.spec)
    assert (tmp_path / "dense.npz").read_bytes() == (tmp_path / "streamed.npz").read_bytes()
    assert streamed.spec == built.spec


def test_the_cli_builds_block_streamed_and_refuses_what_would_not_fit(tmp_path):
    assert streams("block", "binary") and streams("block", "multilevel") and not streams("block", "rademacher")
    assert not streams("cot", "binary")
    with pytest.raises(InputError, match="not built streamed"):
        build_streamed("planar", Instance.random(8, 2, seed=0))
    from georecall.constructions.registry import code_size, refuse_out_of_reach

    with pytest.raises(InputError, match=r"built streamed would hold about .* GiB \(limit 8 GiB\)"):
        refuse_out_of_reach("block", 2**27, 8, code_size("binary", 2**27), {}, streamed=True)
    refuse_out_of_reach("block", 2**24, 8, code_size("binary", 2**24), {}, streamed=True)  # the size fits
    with pytest.raises(InputError, match="GiB"):
        refuse_out_of_reach("block", 2**24, 8, code_size("binary", 2**24), {})  # from memory it does not


def test_a_streamed_file_has_holes_where_w_u_is_zero_and_verifies_exactly(tmp_path):
    """N = 2^16: W_U's 136 zero rows (128 KB each) are never written; the file reads back the same and
    its members are mapped, CRC-checked and certified."""
    instance = Instance.random(2**16, 8, seed=1)
    model = build_streamed("block", instance)
    path = tmp_path / "m.npz"
    save_arrays(path, model.arrays, instance, model.meta, model.spec)
    status = os.stat(path)
    if sys.platform.startswith("linux") and hasattr(status, "st_blocks"):
        assert status.st_blocks * 512 < status.st_size - 136 * 2**17 // 2  # most of the zero rows are holes
    loaded = load_model(path)
    assert set(mapped_members(path, ["W_E", "W_U"])) == {"W_E", "W_U"}
    report = verify_model(loaded.weights, loaded.instance)
    assert report.exact_recall and report.queries == 2**16 * 8 and report.details["certified"] == report.queries


def test_a_mapped_member_counts_at_its_stored_size_against_the_load_limit(tmp_path):
    instance = Instance.random(2**16, 8, seed=1)
    model = build_streamed("block", instance)
    path = tmp_path / "m.npz"
    save_arrays(path, model.arrays, instance, model.meta, model.spec)
    headers = inspect_archive(path, limit=64 * 2**20)  # float64 would be 160 MB: W_E and W_U stay float16 and mapped
    assert headers["W_E"][1] == np.float16
    with pytest.raises(InputError, match="would need"):
        inspect_archive(path, limit=32 * 2**20)


def test_the_row_writer_refuses_blocks_that_disagree_with_the_declared_array(tmp_path):
    from georecall.formats.npz import write_npz

    good = np.zeros((2, 3), dtype=np.float16)
    for blocks, message in ((lambda: iter([good.astype(np.float32)]), "dtype"), (lambda: iter([np.zeros((2, 4), np.float16)]), "shape"),
                            (lambda: iter([good]), "rows")):
        with open(tmp_path / "x.npz", "wb") as raw, pytest.raises(ValueError, match=message if message != "rows" else "blocks gave 2 rows"):
            write_npz(raw, {"a": RowBlocks((4 if message == "rows" else 2, 3), np.float16, blocks)})


def test_releasing_a_mapped_block_drops_its_pages_and_keeps_its_values(tmp_path):
    path = tmp_path / "a.bin"
    values = np.arange(2**23, dtype=np.float64)  # 64 MB
    values.tofile(path)
    mapped = np.memmap(path, dtype=np.float64, mode="r")
    before = _resident_mb()
    assert float(mapped.sum()) == float(values.sum())
    assert _resident_mb() - before > 48
    release(mapped)
    assert _resident_mb() - before < 16
    total = sum(float(block.sum()) for _, block in row_blocks(mapped, 2**20))
    assert total == float(values.sum()) and _resident_mb() - before < 24
    assert np.array_equal(mapped[::4096], values[::4096])  # released pages read back from the file
    plain = values.copy()
    release(plain)  # not mapped: nothing happens
    assert np.array_equal(plain, values)


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@settings(max_examples=40)
@given(st.integers(2, 70000), st.sampled_from([1, 2, 3, 5, 8, 12, 16]), st.data())
def test_digit_tables_give_the_codebook_codes(N, precision, data):
    attributes = np.array(data.draw(st.lists(st.integers(0, N - 1), min_size=1, max_size=50)))
    digits = MultilevelDigits(N, precision, np.float64)
    out = np.full((len(attributes), digits.d0 + 1), 7.0)
    digits.codes(attributes, out[:, : digits.d0])
    expected = multilevel_codes(attributes, precision, digits.d0)
    assert np.array_equal(out[:, : digits.d0], expected) and np.all(out[:, -1] == 7.0)
    assert np.array_equal(digits.squared_norms(attributes), np.sum(expected**2, axis=1))
    if N <= 4096:
        codes = multilevel_codebook(N, precision).codes
        assert all(np.array_equal(multilevel_codes_digit(N, precision, i), codes[:, i]) for i in range(digits.d0))


@settings(max_examples=60)
@given(st.integers(1, 300_000), st.lists(st.tuples(st.booleans(), st.lists(st.integers(0, 10**9), min_size=0, max_size=40),
                                                   st.floats(allow_nan=False)), max_size=8))
def test_least_margins_in_pages_behave_as_a_dense_array(n, writes):
    paged, dense = LeastMargins(n), np.full(n, np.inf)
    for lower, raw, value in writes:
        positions = np.array([p % n for p in raw], dtype=np.int64)
        if lower:
            paged[positions] = np.minimum(paged[positions], value)
            dense[positions] = np.minimum(dense[positions], value)
        else:
            paged[positions] = value
            dense[positions] = value
        touched = np.unique(positions)
        assert np.array_equal(paged[touched], dense[touched])
    assert paged.argmin() == int(np.argmin(dense))
    mask = np.zeros(n, dtype=bool)
    mask[:: max(1, n // 7)] = True
    assert np.array_equal(paged[mask], dense[mask]) and len(paged) == n
    with pytest.raises(IndexError, match="positions must lie in"):
        paged[np.array([n])]


def test_a_file_the_disk_cannot_hold_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from georecall.formats import files

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(2**40, 2**40 - 2**30, 2**30))
    with pytest.raises(InputError, match=r"takes up to 2\.0 GiB and .* has 1\.0 GiB free"):
        files.refuse_if_disk_is_short(tmp_path / "m.npz", 2 * 2**30)
    files.refuse_if_disk_is_short(tmp_path / "m.npz", 2**29)  # small files are not checked
    assert list(tmp_path.iterdir()) == []


def test_a_writable_or_copy_on_write_map_is_never_released(tmp_path):
    """MADV_DONTNEED on a private (copy-on-write) map would throw its writes away: only read-only maps are released."""
    path = tmp_path / "a.bin"
    np.zeros(2**21, dtype=np.float64).tofile(path)
    private = np.memmap(path, dtype=np.float64, mode="c")
    private[:] = 7.0
    release(private)
    for _, block in row_blocks(private, 2**16):
        pass
    assert np.all(private == 7.0) and np.all(np.fromfile(path) == 0.0)


def test_an_archive_written_to_a_stream_that_cannot_seek_holds_the_same_bytes(tmp_path):
    import io

    from georecall.formats.npz import write_npz

    arrays = {"zeros": np.zeros((2, 2**22 + 8), dtype=np.float16), "ones": np.ones(3)}  # stored (over 16 MiB), all zero: a hole where it can be

    class Pipe(io.RawIOBase):  # write-only, no seek, no tell: zipfile streams with data descriptors
        def __init__(self):
            self.chunks = []

        def writable(self):
            return True

        def write(self, data):
            self.chunks.append(bytes(data))
            return len(data)

    pipe = Pipe()
    write_npz(pipe, arrays)
    (tmp_path / "piped.npz").write_bytes(b"".join(pipe.chunks))
    with open(tmp_path / "file.npz", "wb") as raw:
        write_npz(raw, arrays)
    for path in (tmp_path / "piped.npz", tmp_path / "file.npz"):
        with np.load(path) as loaded:
            assert all(np.array_equal(loaded[name], arrays[name]) for name in arrays)


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_a_brute_force_past_its_work_limit_is_refused_before_it_starts(monkeypatch, tmp_path, path, capsys):
    """At N = 2^20 brute force is hours of logits (8.4 million queries, 10^6 logits each): refused with
    the estimate, in one line and exit 2 from the command line; the certificate still runs."""
    from georecall.cli import main
    from georecall.verify import reach

    instance = Instance.random(512, 4, seed=3)
    model = build_streamed("block", instance)
    path_file = tmp_path / "m.npz"
    save_arrays(path_file, model.arrays, instance, model.meta, model.spec)
    loaded = load_model(path_file)
    monkeypatch.setattr(reach, "BRUTE_FORCE_WORK_LIMIT", 512 * 4 * 512 * 9)  # fast reads 9 support rows: exactly at the limit passes
    assert verify_model(loaded.weights, loaded.instance, path="fast").exact_recall
    monkeypatch.setattr(reach, "BRUTE_FORCE_WORK_LIMIT", 10**5)
    with pytest.raises(InputError, match=rf"the {path} path would brute-force 2,048 single-hop queries against 512 logits each"):
        verify_model(loaded.weights, loaded.instance, path=path)
    with pytest.raises(InputError, match="the torch path would brute-force 2,048"):
        from georecall.verify.torch_path import TorchForward

        TorchForward(loaded.weights)
    monkeypatch.setattr(reach, "DEVICE_COPY_LIMIT_BYTES", 2**10)
    with pytest.raises(InputError, match=r"the torch path holds W_E and W_U as float64: .* GiB \(limit 0 GiB\)"):
        TorchForward(loaded.weights, "cuda")  # refused before any device is asked for
    assert verify_model(loaded.weights, loaded.instance, path="certify").exact_recall
    assert main(["verify", str(path_file), "--path", path, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "limit 1e+05" in err[0] and "Traceback" not in err[0]
