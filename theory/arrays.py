"""How a weights file's arrays are kept in memory: W_E and W_U, which grow with N, may stay in the
narrower float dtype they were stored in (theory.weights.TransformerWeights; docs/FORMAT.md §1).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from georecall.theory.checks import InputError

WIDENED_ARRAYS = ("W_E", "W_U")  # the arrays that may be kept narrow: each has a row or column per subject
NARROW_FLOATS = (np.float16, np.float32)  # the stored dtypes they are kept in
NARROWING_CHUNK = 1 << 18  # elements converted and compared at a time, so each pass stays in cache
STREAM_BLOCK_BYTES = 1 << 24  # bytes of a member read per block by a streamed pass (row_blocks)


def kept_narrow(name: str, array) -> bool:
    """Whether the array ``name`` stays as stored (and is read through Widened) rather than converted up front."""
    return name in WIDENED_ARRAYS and isinstance(array, np.ndarray) and array.dtype in NARROW_FLOATS


class Widened(NDArrayOperatorsMixin):
    """A float16 or float32 array read as float64, exactly (every narrower float is a float64).

    Indexing widens only what it selects: ``W_E[subjects]`` costs those rows, not the file. Any
    other use (an operator, a numpy function) sees the whole array as float64, widened once and
    kept. ``stored`` is the narrow array, for work whose result does not depend on the dtype
    (which entries are zero, which are finite).
    """

    dtype = np.dtype(np.float64)

    def __init__(self, stored: np.ndarray, finite: bool = False):
        """``finite``: the maker has proven every entry finite (the file reader does, while checking its CRC)."""
        if stored.dtype not in NARROW_FLOATS:
            raise InputError(f"Widened keeps float16 or float32 arrays, got {stored.dtype}")
        self.stored, self._whole, self.finite = stored, None, bool(finite)

    shape = property(lambda self: self.stored.shape)
    ndim = property(lambda self: self.stored.ndim)
    size = property(lambda self: self.stored.size)
    nbytes = property(lambda self: self.stored.nbytes)

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, key) -> np.ndarray:
        return widen(np.asarray(self.stored[key]))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if self._whole is None:
            self._whole = widen(self.stored)
        if dtype is not None and np.dtype(dtype) != np.float64:
            return self._whole.astype(dtype)
        return self._whole.copy() if copy else self._whole

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(isinstance(x, Widened) for x in kwargs.get("out", ())):
            raise TypeError("a Widened array is read-only: write into a float64 copy (np.array(w))")
        inputs = tuple(np.asarray(x) if isinstance(x, Widened) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    @property
    def T(self) -> np.ndarray:
        return np.asarray(self).T

    def copy(self) -> np.ndarray:
        return np.asarray(self).copy()

    def astype(self, dtype, copy=True) -> np.ndarray:
        return np.asarray(self).astype(dtype, copy=copy)

    def __getattr__(self, name: str):
        """Any other ndarray attribute (``sum``, ``reshape``, ...), on the whole array as float64."""
        if name.startswith("__") or name in ("stored", "_whole", "finite"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def __repr__(self) -> str:
        return f"Widened({self.stored.dtype}, shape={list(self.shape)})"


def widen(values: np.ndarray) -> np.ndarray:
    """float16 or float32 values as float64 (exact). numpy's own conversion: with numpy 2.4 it is 1.5-2x
    the 65,536-entry table this once used (measured on blocks of 1,376 x 188 to 2^20 x 20)."""
    return values.astype(np.float64)


_MAGIC = np.float32(2.0**112)  # 2^(127 - 15): moves a float16's exponent field to float32's


def as_single(values: np.ndarray) -> np.ndarray:
    """Finite float16 values as float32, exactly, from their bits (subnormals and -0.0 included):
    2.5x numpy's own conversion, so a pass over a float16 W_E can work in float32. float32 and
    float64 arrays are returned as they are. An infinity or NaN would be wrong here: callers read
    arrays already proven finite (TransformerWeights checks every one)."""
    if values.dtype != np.float16:
        return values
    bits = values.view(np.uint16).astype(np.uint32)
    sign = (bits & 0x8000) << 16
    bits &= 0x7FFF
    bits <<= 13
    single = bits.view(np.float32)
    single *= _MAGIC
    bits |= sign
    return single


def nonzero_rows(array) -> np.ndarray:
    """Indices of the rows of a 2-d array (or Widened) with a non-zero entry, read from the stored bits:
    one OR over each row, 40x faster than comparing float16s; -0.0 counts as zero. A block of rows at a time
    (``row_blocks``), so a mapped member is never resident whole."""
    kept = stored(array)
    if not kept.shape[1]:
        return np.zeros(0, dtype=np.int64)
    sign = np.iinfo(f"u{kept.dtype.itemsize}").max >> 1  # every bit but the sign
    rows = max(1, STREAM_BLOCK_BYTES // max(1, kept.shape[1] * kept.dtype.itemsize))
    found = [first + np.flatnonzero(np.bitwise_or.reduce(np.ascontiguousarray(block).view(f"u{kept.dtype.itemsize}"), axis=1) & sign)
             for first, block in row_blocks(kept, rows)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def rows_as_stored(array, rows: np.ndarray):
    """``array[rows]`` as one contiguous block, kept as narrow as the array is stored (a Widened
    array gives a Widened block: its readers widen a block of columns at a time)."""
    if isinstance(array, Widened):
        return Widened(np.ascontiguousarray(array.stored[rows]))
    return np.ascontiguousarray(array[rows])


def stored(array) -> np.ndarray:
    """The array as kept: a Widened array's narrow storage, anything else as it is."""
    return array.stored if isinstance(array, Widened) else array


def all_finite_bits(values: np.ndarray) -> bool:
    """No infinity or NaN in a float16 or float32 array, read from the exponent bits a block at a time:
    integer tests, no float16 arithmetic (which numpy does element by element), no big temporary, and
    a mapped member's pages released as it goes (``row_blocks``)."""
    bits = np.ascontiguousarray(values).reshape(-1).view(f"u{values.dtype.itemsize}")
    exponent = {2: 0x7C00, 4: 0x7F80_0000}[values.dtype.itemsize]  # all ones: an infinity or a NaN
    return all(int(np.max(block & exponent, initial=0)) != exponent for _, block in row_blocks(bits, 1 << 20))


@dataclass(frozen=True)
class RowBlocks:
    """An array too large to hold, given as blocks of rows: ``blocks()`` yields C-contiguous arrays
    of ``dtype`` whose concatenation along axis 0 is the array of ``shape``. What a builder hands
    the file writer (formats.npz.write_npz) instead of the array."""

    shape: tuple
    dtype: np.dtype
    blocks: Callable[[], Iterator[np.ndarray]]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def release(view) -> None:
    """Drop this process's resident pages under ``view`` when it lies in a read-only file map
    (formats.npz.mapped_members): the bytes stay in the kernel's page cache, but a pass over a
    member of several GB then holds one block at a time, not the member. Anything else: nothing."""
    array = stored(view)
    if not isinstance(array, np.ndarray) or not array.size or not hasattr(mmap, "MADV_DONTNEED"):
        return
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not isinstance(root.base, mmap.mmap) or root.flags.writeable:  # a writable (copy-on-write) map would lose its writes
        return
    start = np.frombuffer(root.base, dtype=np.uint8, count=1).ctypes.data
    low, high = _byte_bounds(array)
    low = -(-(low - start) // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside the view only: its neighbours may be in use
    high = (high - start) // mmap.PAGESIZE * mmap.PAGESIZE
    if high > low:
        root.base.madvise(mmap.MADV_DONTNEED, low, high - low)


_byte_bounds = getattr(getattr(np.lib, "array_utils", None), "byte_bounds", None) or getattr(np, "byte_bounds", None)  # numpy 2, numpy 1


def row_blocks(array, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block of at most ``rows`` rows as stored) over ``array``, each block's pages
    released (``release``) once the next is asked for: a streamed pass over a mapped member."""
    kept = stored(array)
    for first in range(0, len(kept), rows):
        block = kept[first : first + rows]
        yield first, block
        release(block)


def narrowest_float(array: np.ndarray) -> np.ndarray:
    """``array`` in the narrowest dtype that holds every value exactly (docs/FORMAT.md §1: readers
    convert floats to float64), so ±1 codes take 2 bytes; converted and compared a chunk at a time."""
    if isinstance(array, RowBlocks):  # its builder chose the dtype from the values it can hold
        return array
    array = np.asarray(stored(array))  # a Widened array is narrowed from its storage, never widened first
    if array.dtype.kind == "i" and array.size and np.iinfo(np.int32).min <= array.min() and array.max() <= np.iinfo(np.int32).max:
        return array.astype(np.int32)
    if array.dtype.kind != "f":
        return array
    flat = np.ascontiguousarray(array).reshape(-1)
    for dtype in NARROW_FLOATS:
        if np.dtype(dtype).itemsize >= array.dtype.itemsize:
            break
        narrow = np.empty(flat.shape, dtype=dtype)

        def exact(start: int, narrow=narrow) -> bool:
            part = flat[start : start + NARROWING_CHUNK]
            with np.errstate(over="ignore"):  # a value too large for the dtype becomes inf, and then compares unequal
                narrow[start : start + NARROWING_CHUNK] = part
            return bool(np.array_equal(narrow[start : start + NARROWING_CHUNK], part))

        if all(exact(start) for start in range(0, flat.size, NARROWING_CHUNK)):
            return narrow.reshape(array.shape)
    return array


def read_rows(array, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` (float64 from a Widened array); when ``rows`` is one run of consecutive rows,
    the pages it read are released (``release``): a pass over the subjects holds one chunk of W_E."""
    values = array[rows]
    if len(rows) > 1 and rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1):
        release(stored(array)[rows[0] : rows[-1] + 1])
    return values


def read_columns(array, rows: np.ndarray, first: int, stop: int, as_stored: bool = False) -> np.ndarray:
    """``array[rows, first:stop]`` (float64, or as stored with ``as_stored``), those pages of each row
    released (``release``): a pass over W_U's columns holds one block of them."""
    kept = stored(array)
    block = np.asarray(kept[rows, first:stop])
    for row in np.asarray(rows).reshape(-1):
        release(kept[row, first:stop])
    return block if as_stored or block.dtype == np.float64 else widen(block)
