"""How a weights file's arrays are kept in memory: W_E and W_U, which grow with N, may stay in the
narrower float dtype they were stored in (theory.weights.TransformerWeights; docs/FORMAT.md §1).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from georecall.theory.checks import InputError

WIDENED_ARRAYS = ("W_E", "W_U")  # the arrays that may be kept narrow: each has a row or column per subject
NARROW_FLOATS = (np.float16, np.float32)  # the stored dtypes they are kept in


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

    def __init__(self, stored: np.ndarray):
        if stored.dtype not in NARROW_FLOATS:
            raise InputError(f"Widened keeps float16 or float32 arrays, got {stored.dtype}")
        self.stored, self._whole = stored, None

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
        if name.startswith("__") or name in ("stored", "_whole"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def __repr__(self) -> str:
        return f"Widened({self.stored.dtype}, shape={list(self.shape)})"


_HALF_TO_DOUBLE: list = []  # every float16 bit pattern's float64 value: a table lookup is 5x numpy's float16 conversion


def widen(values: np.ndarray) -> np.ndarray:
    """float16 or float32 values as float64 (exact); float16 through a 65,536-entry table."""
    if values.dtype != np.float16:
        return values.astype(np.float64)
    if not _HALF_TO_DOUBLE:
        _HALF_TO_DOUBLE.append(np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64))
    return _HALF_TO_DOUBLE[0][values.view(np.uint16)]


def nonzero_rows(array) -> np.ndarray:
    """Indices of the rows of a 2-d array (or Widened) with a non-zero entry, read from the stored bits:
    one OR over each row, 40x faster than comparing float16s; -0.0 counts as zero."""
    kept = np.ascontiguousarray(stored(array))
    bits = kept.view(f"u{kept.dtype.itemsize}")
    if not bits.shape[1]:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.bitwise_or.reduce(bits, axis=1) & (np.iinfo(bits.dtype).max >> 1))  # every bit but the sign


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
    """No infinity or NaN in a float16 or float32 array, read from the exponent bits a block at a
    time: integer tests, no float16 arithmetic (which numpy does element by element) and no big temporary."""
    bits = np.ascontiguousarray(values).reshape(-1).view(f"u{values.dtype.itemsize}")
    exponent = {2: 0x7C00, 4: 0x7F80_0000}[values.dtype.itemsize]  # all ones: an infinity or a NaN
    block = 1 << 20
    return all(int(np.max(bits[b : b + block] & exponent, initial=0)) != exponent for b in range(0, len(bits), block))

