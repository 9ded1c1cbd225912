"""The .npz container (docs/FORMAT.md §1): narrow exact dtypes on write; headers checked before anything inflates."""

from __future__ import annotations

import zipfile
import zlib

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.arrays import NARROW_FLOATS, stored

LOAD_MEMORY_LIMIT_BYTES = 16 * 2**30  # two thirds of this machine: a larger file is refused before it is inflated
META_MAX_BYTES = 16 * 2**20
NARROWING_CHUNK = 1 << 18  # elements converted and compared at a time, so each pass stays in cache
STORED_ABOVE_BYTES = 16 * 2**20  # larger members are stored uncompressed: deflate would cost a second per 100 MB
CRC_BLOCK = 1 << 24  # bytes of a mapped member checked at a time


def narrowest_float(array: np.ndarray) -> np.ndarray:
    """``array`` in the narrowest dtype that holds every value exactly (docs/FORMAT.md §1: readers
    convert floats to float64), so ±1 codes take 2 bytes; converted and compared a chunk at a time."""
    array = np.asarray(stored(array))  # a Widened array is narrowed from its storage, never widened first
    if array.dtype.kind == "i" and array.size and np.iinfo(np.int32).min <= array.min() and array.max() <= np.iinfo(np.int32).max:
        return array.astype(np.int32)
    if array.dtype.kind != "f":
        return array
    flat = np.ascontiguousarray(array).reshape(-1)
    for dtype in (np.float16, np.float32):
        if np.dtype(dtype).itemsize >= array.dtype.itemsize:
            break
        narrow = np.empty(flat.shape, dtype=dtype)

        def exact(start: int, narrow=narrow) -> bool:
            part = flat[start : start + NARROWING_CHUNK]
            narrow[start : start + NARROWING_CHUNK] = part
            return bool(np.array_equal(narrow[start : start + NARROWING_CHUNK], part))

        if all(exact(start) for start in range(0, flat.size, NARROWING_CHUNK)):
            return narrow.reshape(array.shape)
    return array


def write_npz(raw, arrays: dict) -> None:
    """The archive of ``arrays`` (name -> array) into the binary file ``raw``: members deflated at
    level 1, the large ones stored, fixed timestamps so that the same model gives the same bytes."""
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if array.nbytes > STORED_ABOVE_BYTES else zipfile.ZIP_DEFLATED
            info._compresslevel = 1  # the name of ZipInfo.compress_level before Python 3.13
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def inspect_archive(path, limit: int = LOAD_MEMORY_LIMIT_BYTES) -> dict | None:
    """{member name: (shape, dtype)} from each member's .npy header (a few bytes), before anything
    is decompressed: a header that disagrees with the member's size, a missing meta or facts, an
    oversized meta, or arrays that would not fit ``limit`` as float64 are refused here, in constant
    memory (a zip bomb never inflates). None when the file is not a zip (np.load then says what it is)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path!s} is not a readable .npz weights file ({exc})") from None
    headers, total = {}, 0
    with archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise InputError(f"{path!s} holds {info.filename!r}, which is not an .npy member")
            try:
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(member, max_header_size=10_000)
                    header = member.tell()
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
                raise InputError(f"{path!s} is not a readable .npz weights file (member {info.filename!r}: {exc})") from None
            if dtype.hasobject:
                raise InputError(f"{path!s} is not a readable .npz weights file (member {info.filename!r} holds Python objects; "
                                 f"the format never unpickles)")
            count = int(np.prod(shape, dtype=object))
            declared = header + count * dtype.itemsize
            if declared != info.file_size:
                raise InputError(f"{path!s}: member {info.filename!r} declares {declared:,} bytes (shape {list(shape)}, {dtype}) "
                                 f"but holds {info.file_size:,}")
            headers[info.filename[: -len(".npy")]] = (tuple(shape), dtype)
            total += count * max(8, dtype.itemsize)
    for required in ("meta", "facts"):
        if required not in headers:
            raise InputError(f"{path!s} has no {required!r} array")
    if headers["meta"][1].kind != "U" or headers["meta"][0] != () or headers["meta"][1].itemsize > META_MAX_BYTES:
        raise InputError(f"{path!s}: meta must be a 0-d unicode string of at most {META_MAX_BYTES // 2**20} MiB")
    if total > limit:
        raise InputError(f"{path!s} would need {total / 2**30:,.3g} GiB once loaded as float64 (limit {limit / 2**30:.0f} GiB)")
    return headers


def check_declared_shapes(path, headers: dict, meta) -> None:
    """The shapes the .npy headers declare must be the ones meta implies, before the arrays inflate."""
    if 8 * meta.n_layers > len(headers):  # before anything loops over the layers
        raise InputError(f"{path!s}: meta.n_layers is {meta.n_layers:,} but the file holds only {len(headers)} arrays (8 per layer)")
    for name in ("W_E", "W_U", "b_U"):
        if name not in headers:
            raise InputError(f"weights are missing the array {name!r}")
    expected_rows = {"W_E": meta.d_vocab_in, "facts": meta.R}
    for name, rows in expected_rows.items():
        shape = headers.get(name, ((),))[0]
        if len(shape) != 2 or shape[0] != rows:
            raise InputError(f"{path!s}: {name} declares shape {list(shape)}, but meta implies {rows} rows")
    if headers["facts"][0][1] != meta.N:
        raise InputError(f"{path!s}: facts declares shape {list(headers['facts'][0])}, but meta says N = {meta.N}")
    W_U = headers.get("W_U", ((),))[0]
    if len(W_U) != 2 or W_U[1] != meta.d_vocab_out:
        raise InputError(f"{path!s}: W_U declares shape {list(W_U)}, but meta implies {meta.d_vocab_out} columns")
    allowed = {"meta", "facts", "W_E", "W_pos", "W_U", "b_U"} | {
        f"blocks.{layer}.{part}" for layer in range(meta.n_layers)
        for part in ("attn.W_Q", "attn.W_K", "attn.W_V", "attn.W_O", "mlp.W_in", "mlp.b_in", "mlp.W_out", "mlp.b_out")}
    unknown = sorted(set(headers) - allowed)
    if unknown:
        raise InputError(f"{path!s} has arrays the format does not define (meta.n_layers = {meta.n_layers}): {unknown[:5]}")


def mapped_members(path, names, above_bytes: int | None = None) -> dict:
    """{name: read-only memory map} for members ``names`` of the .npz at ``path`` that are stored
    uncompressed, larger than ``above_bytes``, and float16 or float32: read in place instead of
    copied (numpy's zip reader copies every byte). Each member's CRC-32 is checked, as a zip reader
    would. A member that cannot be mapped is left out, for np.load to read and judge."""
    above_bytes = STORED_ABOVE_BYTES if above_bytes is None else above_bytes
    mapped = {}
    with open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:
        for name in names:
            try:
                info = archive.getinfo(f"{name}.npy")
            except KeyError:
                continue
            if info.compress_type != zipfile.ZIP_STORED or info.file_size <= above_bytes or info.flag_bits & 0x1:
                continue
            raw.seek(info.header_offset)
            local = raw.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                continue
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
            raw.seek(start)
            try:
                version = np.lib.format.read_magic(raw)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read_header(raw, max_header_size=10_000)
                member = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(info.file_size,))
            except (OSError, ValueError):
                continue
            if dtype not in NARROW_FLOATS or raw.tell() - start + int(np.prod(shape)) * dtype.itemsize != info.file_size:
                continue
            crc = 0
            for begin in range(0, info.file_size, CRC_BLOCK):
                crc = zlib.crc32(member[begin : begin + CRC_BLOCK], crc)
            if crc != info.CRC:
                raise InputError(f"{path!s}: member {info.filename!r} fails its CRC-32 check: the file is damaged")
            values = member[raw.tell() - start :].view(dtype)
            mapped[name] = values.reshape(shape[::-1]).T if fortran else values.reshape(shape)
    return mapped

