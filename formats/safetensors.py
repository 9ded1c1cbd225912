"""The safetensors container (https://github.com/huggingface/safetensors), read and written here
without the library: an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the raw little-endian bytes. It never unpickles, and the header
is checked against the file size before a byte of data is read, so a lying header costs nothing.

Only the container lives here; which names the tensors carry (this project's, docs/FORMAT.md §2,
or TransformerLens's state-dict keys) is decided by the callers in formats/containers.py.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from georecall.formats.safe_json import parse_json
from georecall.theory.checks import InputError

DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}
NAMES = {dtype: name for name, dtype in DTYPES.items()}
HEADER_MAX_BYTES = 100 * 2**20  # the safetensors library's own limit


def is_safetensors(path) -> bool:
    """True when the file starts like a safetensors file: a header length, then '{' (read_header
    then judges the length)."""
    with open(path, "rb") as handle:
        start = handle.read(9)
    if len(start) < 9:
        return False
    (length,) = struct.unpack("<Q", start[:8])
    return length >= 2 and start[8:9] == b"{"


def save_safetensors(path, arrays: dict, metadata: dict, write_atomically) -> None:
    """Write ``arrays`` (name -> numpy array of a dtype in DTYPES) with string ``metadata``."""
    header, offset = {}, 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        dtype = array.dtype.newbyteorder("<")
        if dtype not in NAMES:
            raise InputError(f"array {name!r} has dtype {array.dtype}; safetensors here holds {sorted(DTYPES)}")
        header[name] = {"dtype": NAMES[dtype], "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)  # the data starts 8-byte aligned, as the library writes it

    def write(raw) -> None:
        raw.write(struct.pack("<Q", len(text)))
        raw.write(text)
        for name in sorted(arrays):
            raw.write(np.ascontiguousarray(arrays[name], dtype=arrays[name].dtype.newbyteorder("<")).tobytes())

    write_atomically(path, write)


def read_header(path, limit_bytes: int) -> tuple[dict, dict, int]:
    """({name: (shape, dtype, begin)}, metadata, data start) after checking every byte range against
    the file size and the float64 total against ``limit_bytes``; nothing else is read."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if not 2 <= length <= min(HEADER_MAX_BYTES, size - 8):
            raise InputError(f"{path!s}: the safetensors header claims {length:,} bytes in a file of {size:,}")
        header = parse_json(handle.read(length), f"{path!s}: the safetensors header", HEADER_MAX_BYTES)  # UTF-8 only, no duplicate keys
    if not isinstance(header, dict):
        raise InputError(f"{path!s}: the safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise InputError(f"{path!s}: the safetensors __metadata__ must map names to strings")
    tensors, spans, total = {}, [], 0
    for name, entry in header.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str) or entry["dtype"] not in DTYPES:
            raise InputError(f"{path!s}: tensor {name!r} has dtype {entry.get('dtype') if isinstance(entry, dict) else entry!r}; "
                             f"this reader holds {sorted(DTYPES)}")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 2**40 for n in shape)):
            raise InputError(f"{path!s}: tensor {name!r} has shape {shape!r}; a shape is a list of integers in 0..2^40")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)):
            raise InputError(f"{path!s}: tensor {name!r} has data_offsets {offsets!r}; expected [begin, end]")
        dtype = DTYPES[entry["dtype"]]
        count = int(np.prod(shape, dtype=object))
        if offsets[1] - offsets[0] != count * dtype.itemsize:
            raise InputError(f"{path!s}: tensor {name!r} declares shape {shape} ({entry['dtype']}) but spans {offsets[1] - offsets[0]:,} bytes")
        tensors[name] = (tuple(shape), dtype, offsets[0])
        spans.append(tuple(offsets))
        total += count * 8
    spans.sort()
    data_bytes = size - 8 - length
    if [begin for begin, _ in spans] != [0] + [end for _, end in spans[:-1]] or (spans[-1][1] if spans else 0) != data_bytes:
        raise InputError(f"{path!s}: the safetensors byte ranges do not tile the {data_bytes:,} data bytes exactly")
    if total > limit_bytes:
        raise InputError(f"{path!s} would need {total / 2**30:,.3g} GiB once loaded as float64 (limit {limit_bytes / 2**30:.0f} GiB)")
    return tensors, metadata, 8 + length


def read_tensors(path, tensors: dict, start: int) -> dict:
    """The arrays of a header ``read_header`` accepted, in their stored dtypes."""
    arrays = {}
    with open(path, "rb") as handle:
        for name, (shape, dtype, begin) in tensors.items():
            handle.seek(start + begin)
            count = int(np.prod(shape, dtype=object))
            arrays[name] = np.fromfile(handle, dtype=dtype, count=count).reshape(shape).astype(dtype.newbyteorder("="))
    return arrays
