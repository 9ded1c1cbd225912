"""Every container through one door: load_model reads .npz, safetensors and TransformerLens exports alike,
save_model and save_model_as write them atomically (docs/FORMAT.md, docs/interop.md). Never unpickles."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.theory.spec import ConstructionSpec
from georecall.formats.files import refuse_if_disk_is_short, write_atomically
from georecall.formats.safe_json import parse_json
from georecall.formats.npz import LOAD_MEMORY_LIMIT_BYTES, check_declared_shapes, inspect_archive, mapped_members, narrowest_float, read_members, write_npz
from georecall.formats.safetensors import is_safetensors, read_header, read_tensors, save_safetensors
from georecall.formats.transformer_lens import TRANSFORMER_LENS_VERSION, from_transformer_lens_state, to_transformer_lens_state
from georecall.theory.arrays import WIDENED_ARRAYS, kept_narrow
from georecall.theory.weights import ModelMeta, TransformerWeights


@dataclass(frozen=True)
class LoadedModel:
    """A weights file's content: the model, its facts, and its spec when the file carries one."""

    weights: TransformerWeights
    instance: Instance
    spec: ConstructionSpec | None = None


def save_model(path, weights: TransformerWeights, instance: Instance, spec: ConstructionSpec | None = None) -> None:
    """Write weights, facts and meta (with the spec under meta.extra.spec) to ``path``.

    Every float array is stored in its narrowest exact dtype and deflated at level 1 (fast); the
    file is written beside ``path`` and renamed over it, so an interrupted write never leaves a
    file that looks complete.
    """
    if (instance.N, instance.R) != (weights.meta.N, weights.meta.R):
        raise InputError("instance and weights disagree on N or R")
    save_arrays(path, weights.named_arrays(), instance, weights.meta, spec)


def save_arrays(path, named_arrays: dict, instance: Instance, meta: ModelMeta, spec: ConstructionSpec | None = None) -> None:
    """save_model from the arrays under their file names, in file order; an array may be a RowBlocks
    (theory.arrays), written a block at a time (constructions.base.StreamedConstruction)."""
    meta = meta.to_json_dict()
    if spec is not None:
        meta["extra"] = {**meta["extra"], "spec": spec.to_json_dict()}
    arrays = {name: narrowest_float(array) for name, array in named_arrays.items()}
    arrays["facts"] = instance.facts
    arrays["meta"] = np.array(json.dumps(meta))
    refuse_if_disk_is_short(path, sum(array.nbytes for array in arrays.values()))
    write_atomically(path, lambda raw: write_npz(raw, arrays))


def load_model(path, workers: int = 1) -> LoadedModel:
    """Read a weights file, validating every array; raises ValueError on any malformed content.
    ``workers``: threads that check the large members side by side (``mapped_members``)."""
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
            mapped = mapped_members(path, [name for name in WIDENED_ARRAYS if name in data.files], workers=workers)  # read in place
            mapped.update(read_members(path, [name for name in data.files if name not in mapped and name != "meta"]))
            arrays = {name: mapped[name] if name in mapped else data[name] for name in data.files if name != "meta"}
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{path!s} is not a readable .npz weights file ({exc})") from None
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path!s} is not a readable .npz weights file ({exc})") from None
    return model_from_arrays(path, arrays, meta)


def parse_meta(path, text) -> ModelMeta:
    meta_json = parse_json(text, f"{path!s}: meta")
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
            isinstance(s, list) and len(s) == 3 and all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 2**40 for n in s)
            for s in shapes)):
        raise InputError(f"{path!s}: __metadata__.layer_shapes must list [n_heads, d_head, d_mlp] for each of {meta.n_layers} layers")
    had_W_pos = _json_field(path, metadata, "had_W_pos", bool) if "had_W_pos" in metadata else True
    arrays = read_tensors(path, tensors, start)
    facts = arrays.pop("georecall.facts")
    named, meta = from_transformer_lens_state(config, arrays, meta, shapes, had_W_pos)
    return model_from_arrays(path, {**named, "facts": facts}, meta)


def _json_field(path, metadata: dict, key: str, kind: type):
    value = parse_json(metadata[key], f"{path!s}: __metadata__.{key}")
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
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
        # W_E and W_U grow with N: kept as stored, and widened where read (theory.arrays.Widened)
        if arrays[name].dtype.kind == "f" and arrays[name].dtype != np.float64 and not kept_narrow(name, arrays[name]):
            arrays[name] = arrays[name].astype(np.float64)
    weights = TransformerWeights.from_named_arrays(arrays, meta)
    unknown = sorted(set(arrays) - set(weights.named_arrays()))
    if unknown:
        raise InputError(f"{path!s} has arrays the format does not define (meta.n_layers = {meta.n_layers}): {unknown[:5]}")
    if (instance.N, instance.R) != (meta.N, meta.R):
        raise InputError(f"{path!s}: facts have shape [R={instance.R}, N={instance.N}] but meta says R={meta.R}, N={meta.N}")
    spec = ConstructionSpec.from_json_dict(spec_json) if spec_json is not None else None
    return LoadedModel(weights, instance, spec)
