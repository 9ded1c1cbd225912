"""TransformerLens interop: a weights file as a live TransformerLens 4.x model and back.

Needs the ``interop`` extra (``pip install -e ".[interop]"``; TransformerLens 4.x and torch). The
array conversion itself is exact and lives in ``georecall.formats.transformer_lens``; files
move between containers with ``georecall export`` (docs/interop.md).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from georecall.theory.checks import InputError, MissingExtra
from georecall.theory.instance import Instance
from georecall.formats.containers import model_from_arrays
from georecall.formats.transformer_lens import from_transformer_lens_state, to_transformer_lens_state
from georecall.theory.weights import ModelMeta, TransformerWeights


class LoadedTransformerLens(NamedTuple):
    """What ``load_transformer_lens`` gives back: a ready model, the facts, and the file's meta."""

    model: object  # a float64 transformer_lens TransformerBridge (boot_native), in eval mode
    instance: Instance  # instance.facts[r, s] is the answer to (subject s, relation r)
    meta: ModelMeta


class NeedsTransformerLens(MissingExtra, ImportError):
    """TransformerLens (the interop extra) is not installed."""


def _import_transformer_lens():
    try:
        import torch
        from transformer_lens import TransformerBridge
        import transformer_lens.model_bridge.sources.native  # noqa: F401  (attaches TransformerBridge.boot_native)
    except ImportError as exc:
        raise NeedsTransformerLens(f"TransformerLens interop needs the [interop] extra: pip install -e \".[interop]\" \"torch==2.13.0\" "
                                   f"({exc})") from None
    return torch, TransformerBridge


def load_transformer_lens(path, device: str = "cpu") -> LoadedTransformerLens:
    """A weights file (npz, safetensors or a TransformerLens export) as a ready TransformerLens model.

    The file is read and validated as ``georecall verify`` reads it (docs/FORMAT.md), then converted
    exactly (docs/interop.md), so the model computes the file's function in float64::

        model, instance, meta = load_transformer_lens("block.safetensors")
        logits = model(torch.tensor([[7, instance.N + 2]]))   # subject 7, relation 2
    """
    from georecall.formats.containers import load_model

    _import_transformer_lens()  # a missing extra is said first, before the file is read
    loaded = load_model(path)
    model = to_transformer_lens(loaded.weights, device=device)
    model.eval()
    return LoadedTransformerLens(model, loaded.instance, loaded.weights.meta)


def to_transformer_lens(weights: TransformerWeights, n_ctx: int | None = None, device: str = "cpu"):
    """A float64 ``TransformerBridge`` (``boot_native``) computing the same function as ``weights``.

    ``n_ctx`` defaults to W_pos's rows, or to the longest prompt of meta's query kinds."""
    torch, TransformerBridge = _import_transformer_lens()
    config, state, shapes = to_transformer_lens_state(weights, n_ctx)
    bridge = TransformerBridge.boot_native(config, dtype=torch.float64, device=device)
    bridge.load_state_dict({k: torch.from_numpy(v).to(device) for k, v in state.items()}, strict=True)
    # what from_transformer_lens needs to give back the same arrays: the padding and a missing W_pos
    bridge.georecall_layout = {"layer_shapes": shapes, "had_W_pos": weights.W_pos is not None}
    return bridge


def from_transformer_lens(model, instance: Instance, meta: ModelMeta | None = None) -> TransformerWeights:
    """The weights of a native TransformerLens model, validated as any weights file is.

    ``instance`` supplies the facts; ``meta`` the token layout and query kinds (default: single hop
    over ``instance``'s N and R, scale from the model). Layer norms, gated MLPs, rotary positions,
    soft caps and non-zero attention biases are refused, naming the config field or array. A model
    made by ``to_transformer_lens`` comes back with exactly its original arrays (padding trimmed,
    a zero W_pos dropped when the original had none)."""
    config = {k: v for k, v in model.cfg.to_dict().items()}
    state = {k: v.detach().to("cpu").numpy() if hasattr(v, "detach") else np.asarray(v) for k, v in model.state_dict().items()}
    if meta is None:
        layers = config.get("n_layers")
        meta = ModelMeta(N=instance.N, R=instance.R, n_layers=layers if isinstance(layers, int) and layers >= 1 else 1, attn_scale=0.0)
    if (meta.N, meta.R) != (instance.N, instance.R):
        raise InputError(f"meta says N={meta.N}, R={meta.R} but the instance has N={instance.N}, R={instance.R}")
    layout = getattr(model, "georecall_layout", {})
    arrays, meta = from_transformer_lens_state(config, state, meta, layout.get("layer_shapes"), layout.get("had_W_pos", True))
    return model_from_arrays("the TransformerLens model", {**arrays, "facts": instance.facts}, meta).weights


def transformer_lens_logits(bridge, tokens: np.ndarray) -> np.ndarray:
    """Last-position logits of ``bridge`` on a [batch, T] token array, as float64 numpy."""
    torch, _ = _import_transformer_lens()
    with torch.no_grad():
        logits = bridge(torch.as_tensor(np.asarray(tokens), dtype=torch.long))
    return logits[:, -1, :].double().cpu().numpy()
