"""Reading and writing the .npz weights format (docs/FORMAT.md). Never unpickles."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.theory.spec import ConstructionSpec
from georecall.theory.safetensors_io import is_safetensors, read_header, read_tensors, save_safetensors
from georecall.theory.transformer_lens_layout import TRANSFORMER_LENS_VERSION, from_transformer_lens_state, to_transformer_lens_state
from georecall.theory.weights import ModelMeta, TransformerWeights


@dataclass(frozen=True)
class LoadedModel:
    """A weights file's content: the model, its facts, and its spec when the file carries one."""

    weights: TransformerWeights
    instance: Instance
    spec: ConstructionSpec | None = None


NARROWING_CHUNK = 1 << 18  # elements converted and compared at a time, so each pass stays in cache
STORED_ABOVE_BYTES = 16 * 2**20  # larger members are stored uncompressed: deflate would cost a second per 100 MB


def narrowest_float(array: np.ndarray) -> np.ndarray:
    """``array`` in the narrowest dtype that holds every value exactly (docs/FORMAT.md §1: readers
    convert floats to float64), so ±1 codes take 2 bytes; chunks are converted on two threads."""
    array = np.asarray(array)
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

        from georecall.theory.parallel import map_in_threads

        if all(map_in_threads(exact, range(0, flat.size, NARROWING_CHUNK))):
            return narrow.reshape(array.shape)
    return array


def save_model(path, weights: TransformerWeights, instance: Instance, spec: ConstructionSpec | None = None) -> None:
    """Write weights, facts and meta (with the spec under meta.extra.spec) to ``path``.

    Every float array is stored in its narrowest exact dtype and deflated at level 1 (fast); the
    file is written beside ``path`` and renamed over it, so an interrupted write never leaves a
    file that looks complete.
    """
    if (instance.N, instance.R) != (weights.meta.N, weights.meta.R):
        raise InputError("instance and weights disagree on N or R")
    meta = weights.meta.to_json_dict()
    if spec is not None:
        meta["extra"] = {**meta["extra"], "spec": spec.to_json_dict()}
    arrays = {name: narrowest_float(array) for name, array in weights.named_arrays().items()}
    arrays["facts"] = instance.facts
    arrays["meta"] = np.array(json.dumps(meta))

    def write(raw) -> None:
        with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED if array.nbytes > STORED_ABOVE_BYTES else zipfile.ZIP_DEFLATED
                info._compresslevel = 1  # the name of ZipInfo.compress_level before Python 3.13
                with archive.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)

    write_atomically(path, write)


def write_atomically(path, write) -> None:
    """Call ``write(binary file)`` on a temporary file beside ``path``, then rename it over ``path``:
    a kill at any moment leaves either the old file or the complete new one, never a truncated one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"cannot write {path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise InputError(f"cannot write {path}: it is a folder")
    handle, temporary = tempfile.mkstemp(prefix=".georecall-", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as raw:
            write(raw)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it private; a weights file is not
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def staging_folder(target) -> str:
    """An empty folder beside ``target`` to write a whole run into before ``replace_folder``."""
    target = os.path.abspath(os.fspath(target))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{os.path.basename(target)}-", suffix=".part", dir=os.path.dirname(target))


def replace_folder(staged, target) -> None:
    """Put the folder ``staged`` at ``target`` as a whole: a kill at any moment leaves the old folder
    or the new one. An existing target is swapped in one step (Linux renameat2 RENAME_EXCHANGE),
    then deleted; where that call is missing, two renames leave a moment with neither in place
    (the old one then survives beside it as ``staged``)."""
    import shutil

    staged, target = os.fspath(staged), os.fspath(target)
    if not os.path.exists(target):
        os.rename(staged, target)
        return
    if not os.path.isdir(target):
        raise InputError(f"--out {target} exists and is not a folder")
    if not _exchange(staged, target):
        old = staged + ".old"
        os.rename(target, old)
        os.rename(staged, target)
        staged = old
    shutil.rmtree(staged)


def _exchange(a: str, b: str) -> bool:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    return renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0


LOAD_MEMORY_LIMIT_BYTES = 16 * 2**30  # two thirds of this machine: a larger file is refused before it is inflated
META_MAX_BYTES = 16 * 2**20


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


def load_model(path) -> LoadedModel:
    """Read a weights file, validating every array; raises ValueError on any malformed content."""
    if not os.path.exists(path):
        raise InputError(f"weights file {path!s} does not exist")
    if os.path.isdir(path):
        raise InputError(f"weights file {path!s} is a directory, not an .npz file")
    if not os.path.isfile(path):
        raise InputError(f"weights file {path!s} is not a regular file (a FIFO or a device?)")
    if is_safetensors(path):
        return load_safetensors_model(path)
    headers = inspect_archive(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path!s} is not a readable .npz weights file ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise InputError(f"{path!s} holds a single .npy array, not an .npz archive of named arrays (docs/FORMAT.md §1)")
    try:
        with data:
            meta = parse_meta(path, str(data["meta"]))  # the small member first: it says what the rest must be
            check_declared_shapes(path, headers, meta)
            arrays = {name: data[name] for name in data.files if name != "meta"}
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path!s} is not a readable .npz weights file ({exc})") from None
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path!s} is not a readable .npz weights file ({exc})") from None
    return model_from_arrays(path, arrays, meta)


def parse_meta(path, text: str) -> ModelMeta:
    try:
        meta_json = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path!s}: meta is not valid JSON ({exc})") from None
    if not isinstance(meta_json, dict):
        raise InputError(f"{path!s}: meta must be a JSON object")
    return ModelMeta.from_json_dict(meta_json)


CONTAINERS = ("npz", "safetensors", "transformer-lens")


def save_model_as(path, container: str, weights: TransformerWeights, instance: Instance, spec: ConstructionSpec | None = None) -> None:
    """Write in one of CONTAINERS: npz (docs/FORMAT.md), safetensors with the same array names, or
    safetensors with a TransformerLens native state dict (docs/interop.md). All atomic."""
    if container == "npz":
        return save_model(path, weights, instance, spec)
    if container not in CONTAINERS:
        raise InputError(f"container must be one of {list(CONTAINERS)}, got {container!r}")
    meta = weights.meta.to_json_dict()
    if spec is not None:
        meta["extra"] = {**meta["extra"], "spec": spec.to_json_dict()}
    metadata = {"format": "georecall" if container == "safetensors" else "transformer-lens", "georecall_meta": json.dumps(meta)}
    if container == "safetensors":
        arrays = {name: narrowest_float(array) for name, array in weights.named_arrays().items()}
        arrays["facts"] = instance.facts.astype(np.int64)
    else:
        config, arrays, shapes = to_transformer_lens_state(weights)
        arrays["georecall.facts"] = instance.facts.astype(np.int64)
        metadata.update(transformer_lens_config=json.dumps(config), layer_shapes=json.dumps(shapes),
                        had_W_pos=json.dumps(weights.W_pos is not None), transformer_lens_version=TRANSFORMER_LENS_VERSION)
    save_safetensors(path, arrays, metadata, write_atomically)


def load_safetensors_model(path) -> LoadedModel:
    """A safetensors file in either array naming (``__metadata__.format``: georecall or transformer-lens)."""
    tensors, metadata, start = read_header(path, LOAD_MEMORY_LIMIT_BYTES)
    if "georecall_meta" not in metadata:
        raise InputError(f"{path!s}: a safetensors weights file needs __metadata__.georecall_meta (the meta object of docs/FORMAT.md §4)")
    meta = parse_meta(path, metadata["georecall_meta"])
    layout = metadata.get("format", "georecall")
    if layout == "georecall":
        check_declared_shapes(path, {name: (shape, dtype) for name, (shape, dtype, _) in tensors.items()}, meta)
        return model_from_arrays(path, read_tensors(path, tensors, start), meta)
    if layout != "transformer-lens":
        raise InputError(f"{path!s}: __metadata__.format is {layout!r}; expected 'georecall' or 'transformer-lens'")
    if "georecall.facts" not in tensors or "transformer_lens_config" not in metadata:
        raise InputError(f"{path!s}: a TransformerLens export needs the tensor 'georecall.facts' and __metadata__.transformer_lens_config")
    config = _json_field(path, metadata, "transformer_lens_config", dict)
    shapes = _json_field(path, metadata, "layer_shapes", list) if "layer_shapes" in metadata else None
    if shapes is not None and not (len(shapes) == meta.n_layers and all(
            isinstance(s, list) and len(s) == 3 and all(isinstance(n, int) and n >= 0 for n in s) for s in shapes)):
        raise InputError(f"{path!s}: __metadata__.layer_shapes must list [n_heads, d_head, d_mlp] for each of {meta.n_layers} layers")
    had_W_pos = _json_field(path, metadata, "had_W_pos", bool) if "had_W_pos" in metadata else True
    arrays = read_tensors(path, tensors, start)
    facts = arrays.pop("georecall.facts")
    named, meta = from_transformer_lens_state(config, arrays, meta, shapes, had_W_pos)
    return model_from_arrays(path, {**named, "facts": facts}, meta)


def _json_field(path, metadata: dict, key: str, kind: type):
    try:
        value = json.loads(metadata[key])
    except json.JSONDecodeError as exc:
        raise InputError(f"{path!s}: __metadata__.{key} is not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        raise InputError(f"{path!s}: __metadata__.{key} must be a JSON {kind.__name__}")
    return value


def model_from_arrays(path, arrays: dict, meta: ModelMeta) -> LoadedModel:
    """The checks every container shares once its arrays are read: facts, dtypes, shapes, no unknown
    arrays, sizes that agree with meta, and the spec under meta.extra.spec."""
    if "facts" not in arrays:
        raise InputError(f"{path!s} has no 'facts' array")
    spec_json = meta.extra.get("spec")
    instance = Instance.from_arrays(arrays.pop("facts"))
    for name in list(arrays):  # one array at a time: narrow stored dtypes never coexist with all of float64
        if arrays[name].dtype.kind == "f" and arrays[name].dtype != np.float64:
            arrays[name] = arrays[name].astype(np.float64)
    weights = TransformerWeights.from_named_arrays(arrays, meta)
    unknown = sorted(set(arrays) - set(weights.named_arrays()))
    if unknown:
        raise InputError(f"{path!s} has arrays the format does not define (meta.n_layers = {meta.n_layers}): {unknown[:5]}")
    if (instance.N, instance.R) != (meta.N, meta.R):
        raise InputError(f"{path!s}: facts have shape [R={instance.R}, N={instance.N}] but meta says R={meta.R}, N={meta.N}")
    spec = ConstructionSpec.from_json_dict(spec_json) if spec_json is not None else None
    return LoadedModel(weights, instance, spec)
