"""The .npz container (docs/FORMAT.md §1): narrow exact dtypes on write; headers checked before anything inflates."""

from __future__ import annotations

import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.arrays import NARROW_FLOATS, WIDENED_ARRAYS, RowBlocks, Widened, all_finite_bits, narrowest_float

__all__ = ["narrowest_float", "write_npz", "inspect_archive", "check_declared_shapes", "mapped_members", "read_members"]

LOAD_MEMORY_LIMIT_BYTES = 16 * 2**30  # two thirds of this machine: a larger file is refused before it is inflated
META_MAX_BYTES = 16 * 2**20
STORED_ABOVE_BYTES = 16 * 2**20  # larger members are stored uncompressed: deflate would cost a second per 100 MB
CRC_BLOCK = 1 << 24  # bytes of a mapped member checked at a time
HOLE_MIN_BYTES = 1 << 16  # zero runs written as holes when at least this long (and whole 8-byte words)


def write_npz(raw, arrays: dict) -> None:
    """The archive of ``arrays`` (name -> array) into the binary file ``raw``: members deflated at
    level 1, the large ones stored, fixed timestamps so that the same model gives the same bytes."""
    with zipfile.ZipFile(_HoleWriter(raw), "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if array.nbytes > STORED_ABOVE_BYTES else zipfile.ZIP_DEFLATED
            info._compresslevel = 1  # the name of ZipInfo.compress_level before Python 3.13
            with archive.open(info, "w", force_zip64=True) as member:
                if isinstance(array, RowBlocks):
                    _write_row_blocks(member, name, array)
                else:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


class _HoleWriter:
    """The binary file ``raw``, with each long run of zero bytes seeked over instead of written: the
    file system keeps it as a hole, which reads back as zeros. The same bytes, but a W_U with a
    column per subject is mostly zero rows: at N = 2^24, R = 8 that is 6.7 GB never written to disk."""

    def __init__(self, raw):
        self.raw = raw
        self.holes = getattr(raw, "seekable", lambda: False)()  # a stream that cannot seek gets its zeros written

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.holes and view.nbytes >= HOLE_MIN_BYTES and view.nbytes % 8 == 0 and not np.frombuffer(view, dtype=np.uint64).any():
            self.raw.seek(view.nbytes, 1)  # from here: later writes (there always are: the zip's directory) end the hole
            return view.nbytes
        return self.raw.write(view)

    def tell(self) -> int:
        return self.raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def flush(self) -> None:
        self.raw.flush()


def _write_row_blocks(member, name: str, array: RowBlocks) -> None:
    """The .npy bytes of ``array`` a block at a time: the same header and bytes np.lib.format.write_array
    gives the whole array, so a streamed file equals the one written from memory."""
    dtype = np.dtype(array.dtype)
    np.lib.format.write_array_header_1_0(member, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                                                  "shape": tuple(array.shape)})
    rows = 0
    for block in array.blocks():
        if block.dtype != dtype or block.shape[1:] != tuple(array.shape[1:]) or not block.flags.c_contiguous:
            raise ValueError(f"{name}: a block of shape {block.shape} and dtype {block.dtype} in an array of shape {array.shape}, {dtype}")
        member.write(block.reshape(-1).view(np.uint8).data)  # flat bytes: zipfile counts len(), which is rows for 2-d
        rows += len(block)
    if rows != array.shape[0]:
        raise ValueError(f"{name}: blocks gave {rows:,} rows of the {array.shape[0]:,} its shape declares")


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
            name = info.filename[: -len(".npy")]
            headers[name] = (tuple(shape), dtype)
            total += count * (dtype.itemsize if _mappable(name, info, dtype) else max(8, dtype.itemsize))
    for required in ("meta", "facts"):
        if required not in headers:
            raise InputError(f"{path!s} has no {required!r} array")
    if headers["meta"][1].kind != "U" or headers["meta"][0] != () or headers["meta"][1].itemsize > META_MAX_BYTES:
        raise InputError(f"{path!s}: meta must be a 0-d unicode string of at most {META_MAX_BYTES // 2**20} MiB")
    if total > limit:
        raise InputError(f"{path!s} would need {total / 2**30:,.3g} GiB once loaded as float64 (limit {limit / 2**30:.0f} GiB)")
    return headers


def _mappable(name: str, info: zipfile.ZipInfo, dtype: np.dtype) -> bool:
    """Whether load_model reads this member in place (mapped_members) and keeps it narrow: it then
    costs at most its stored bytes, paged in as read, never a float64 copy."""
    return name in WIDENED_ARRAYS and dtype in NARROW_FLOATS and _stored_plainly(info, STORED_ABOVE_BYTES)


def _stored_plainly(info: zipfile.ZipInfo, above_bytes: int) -> bool:
    """Stored without compression or encryption, and larger than ``above_bytes``: readable in place."""
    return info.compress_type == zipfile.ZIP_STORED and info.file_size > above_bytes and not info.flag_bits & 0x1


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


def mapped_members(path, names, above_bytes: int | None = None, workers: int = 1) -> dict:
    """{name: read-only memory map} for members ``names`` of the .npz at ``path`` that are stored
    uncompressed, larger than ``above_bytes``, and float16 or float32: read in place instead of
    copied (numpy's zip reader copies every byte). Each member's CRC-32 is checked, as a zip reader
    would, in the same pass that proves its values finite (then the map comes as a Widened array
    marked finite); ``workers`` members at a time, each on its own thread (the caller sizes it:
    formats holds no thread policy). A member that cannot be mapped is left out, for np.load."""
    found = {}
    with open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:
        for name in names:
            member = _locate(path, raw, archive, name, above_bytes)
            if member is not None and member.dtype in NARROW_FLOATS:
                found[name] = member

    def check(name: str) -> bool:
        with open(path, "rb") as raw:
            return _read_checked(path, raw, found[name], None, found[name].dtype)

    if workers > 1 and len(found) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(found))) as pool:
            finite = dict(zip(found, pool.map(check, found)))
    else:
        finite = {name: check(name) for name in found}
    mapped = {}
    for name, member in found.items():
        values = np.memmap(path, dtype=np.uint8, mode="r", offset=member.start, shape=(member.info.file_size,))[member.head :]
        values = _shaped(values.view(member.dtype), member)
        mapped[name] = Widened(values, finite=True) if finite[name] else values  # a non-finite value is found, and named, later
    return mapped


def _shaped(flat: np.ndarray, member: _Member) -> np.ndarray:
    """A member's values in the shape (and order) its header declares."""
    return flat.reshape(member.shape[::-1]).T if member.fortran else flat.reshape(member.shape)


def read_members(path, names, above_bytes: int | None = None) -> dict:
    """{name: array} for members ``names`` stored uncompressed and larger than ``above_bytes`` (integer or
    float64): read straight into a fresh read-only array, CRC-32 checked, in one pass (numpy's zip reader
    takes 2.4 s for the 1 GB of facts at N = 2^24, R = 8; this, 0.5 s). Others are left out, for np.load."""
    read = {}
    with open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:
        for name in names:
            member = _locate(path, raw, archive, name, above_bytes)
            if member is None or member.dtype.kind not in "iuf" or member.dtype in NARROW_FLOATS:
                continue
            flat = np.empty(int(np.prod(member.shape)), dtype=member.dtype)
            _read_checked(path, raw, member, flat.view(np.uint8), None)
            values = _shaped(flat, member)
            values.setflags(write=False)
            read[name] = values
    return read


class _Member(NamedTuple):
    """A member's .npy, stored plainly: its zip entry, where its bytes start, its header's length and what the header says."""

    info: zipfile.ZipInfo
    start: int
    head: int
    shape: tuple
    fortran: bool
    dtype: np.dtype


def _locate(path, raw, archive: zipfile.ZipFile, name: str, above_bytes: int | None) -> _Member | None:
    """Member ``name``'s .npy when it is stored plainly (no compression, no encryption, larger than
    ``above_bytes``) with a header that matches its size; else None."""
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        return None
    if not _stored_plainly(info, STORED_ABOVE_BYTES if above_bytes is None else above_bytes):
        return None
    raw.seek(info.header_offset)
    local = raw.read(30)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        return None
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    raw.seek(start)
    try:
        version = np.lib.format.read_magic(raw)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(raw, max_header_size=10_000)
    except (OSError, ValueError):
        return None
    head = raw.tell() - start
    if dtype.hasobject or head + int(np.prod(shape)) * dtype.itemsize != info.file_size:
        return None
    return _Member(info, start, head, shape, fortran, dtype)


def _read_checked(path, raw, member: _Member, into: np.ndarray | None, finite_dtype) -> bool:
    """Read a located member once: its header, then its values a block at a time into ``into`` (uint8,
    the values' whole destination) or, without one, into one reused block of CRC_BLOCK bytes. Checks its
    CRC-32 against the zip's (InputError when they differ); with ``finite_dtype``, returns whether every
    value is finite (exponent bits)."""
    info, start, head = member.info, member.start, member.head
    raw.seek(start)
    crc = zlib.crc32(raw.read(head))
    finite, size = True, info.file_size - head
    reused = np.empty(min(CRC_BLOCK, size), dtype=np.uint8) if into is None else None
    for offset in range(0, size, CRC_BLOCK):
        block = into[offset : offset + CRC_BLOCK] if into is not None else reused[: min(CRC_BLOCK, size - offset)]
        filled = 0
        while filled < len(block):
            got = raw.readinto(block[filled:].data)
            if not got:
                raise InputError(f"{path!s}: member {info.filename!r} ends early: the file is damaged")
            filled += got
        crc = zlib.crc32(block, crc)
        if finite_dtype is not None:
            finite = finite and all_finite_bits(block.view(finite_dtype))
    if crc != info.CRC:
        raise InputError(f"{path!s}: member {info.filename!r} fails its CRC-32 check: the file is damaged")
    return finite
