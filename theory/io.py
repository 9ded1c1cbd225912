"""Reading and writing the .npz weights format (docs/FORMAT.md). Never unpickles."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass

import numpy as np

from theory.instance import Instance
from theory.spec import ConstructionSpec
from theory.weights import ModelMeta, TransformerWeights


@dataclass(frozen=True)
class LoadedModel:
    """A weights file's content: the model, its facts, and its spec when the file carries one."""

    weights: TransformerWeights
    instance: Instance
    spec: ConstructionSpec | None = None


def save_model(path, weights: TransformerWeights, instance: Instance, spec: ConstructionSpec | None = None) -> None:
    """Write weights, facts and meta (with the spec under meta.extra.spec) to ``path``."""
    if (instance.N, instance.R) != (weights.meta.N, weights.meta.R):
        raise ValueError("instance and weights disagree on N or R")
    meta = weights.meta.to_json_dict()
    if spec is not None:
        meta["extra"] = {**meta["extra"], "spec": spec.to_json_dict()}
    arrays = dict(weights.named_arrays())
    arrays["facts"] = instance.facts
    arrays["meta"] = np.array(json.dumps(meta))
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def load_model(path) -> LoadedModel:
    """Read a weights file, validating every array; raises ValueError on any malformed content."""
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!s} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path!s} is not a readable .npz weights file ({exc})") from None
    for required in ("meta", "facts"):
        if required not in arrays:
            raise ValueError(f"{path!s} has no {required!r} array")
    try:
        meta_json = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path!s}: meta is not valid JSON ({exc})") from None
    if not isinstance(meta_json, dict):
        raise ValueError(f"{path!s}: meta must be a JSON object")
    meta = ModelMeta.from_json_dict(meta_json)
    spec_json = meta.extra.get("spec")
    instance = Instance.from_arrays(arrays.pop("facts"))
    weights = TransformerWeights.from_named_arrays(arrays, meta)
    unknown = sorted(set(arrays) - set(weights.named_arrays()))
    if unknown:
        raise ValueError(f"{path!s} has arrays the format does not define (meta.n_layers = {meta.n_layers}): {unknown[:5]}")
    if (instance.N, instance.R) != (meta.N, meta.R):
        raise ValueError(f"{path!s}: facts have shape [R={instance.R}, N={instance.N}] but meta says R={meta.R}, N={meta.N}")
    spec = ConstructionSpec.from_json_dict(spec_json) if isinstance(spec_json, dict) else None
    return LoadedModel(weights, instance, spec)
