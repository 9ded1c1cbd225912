"""This format's arrays as a TransformerLens 4.x native model (``TransformerBridge.boot_native``)
and back: pure numpy, no TransformerLens import. docs/interop.md has the walkthrough.

TransformerLens's native model (``transformer_lens.model_bridge.sources.native.model``, 4.3):
``nn.Linear`` weights stored [out, in], scores *divided* by ``attn_scale``, q/k/v/o biases, one
head count, head size and MLP width for every layer, a positional table of ``n_ctx`` rows, and
``unembed.bias``. Every conversion here is exact in real arithmetic:

- the attention scale s (ours multiplies) becomes TransformerLens's divisor t = 1/s, which is a
  float only when s is a power of two; TransformerLens refuses t = 1 with d_head > 1, so then
  W_Q is doubled (exact) and t = 2. Any other s is refused, naming meta.attn_scale;
- layers with fewer heads, a smaller d_head or a narrower MLP are padded with zeros, which add
  exact zeros to every sum; the original shapes travel in ``layer_shapes`` and are trimmed back;
- a file without W_pos gets a zero positional table with as many rows as its longest prompt;
- attention biases are written as zeros, and any non-zero one is refused on the way back.
"""

from __future__ import annotations

import math

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.queries import cot_parameters, multi_hop_parameters
from georecall.theory.weights import ModelMeta, TransformerWeights

TRANSFORMER_LENS_VERSION = "4.x (TransformerBridge.boot_native; tested with 4.3.0)"

# The TransformerLens config fields the native model reads, and the only values this format can hold.
REQUIRED_CONFIG = {
    "normalization_type": None,
    "act_fn": "relu",
    "gated_mlp": False,
    "attn_only": False,
    "final_rms": False,
    "positional_embedding_type": "standard",
    "attention_dir": "causal",
}


def is_power_of_two(value: float) -> bool:
    return value > 0 and math.isfinite(value) and math.frexp(value)[0] == 0.5


def longest_prompt(meta: ModelMeta) -> int:
    """Positions the longest query of any declared kind needs (docs/FORMAT.md §5)."""

    length = 2
    if "multi_hop" in meta.query_kinds:
        length = max(length, multi_hop_parameters(meta)[0] + 1)
    if "cot" in meta.query_kinds:
        K, h = cot_parameters(meta)
        length = max(length, K + 2 + math.ceil(K / h) - 1)  # the prompt, then every emitted token but the last
    return length


def _scale_divisor(s: float, d_head: int) -> tuple[float, float]:
    """(t, c): TransformerLens divides scores by t, and W_Q is multiplied by c, with c / t = s exactly."""
    if not is_power_of_two(abs(s)):
        raise InputError(f"meta.attn_scale = {s!r} is not ± a power of two: TransformerLens divides attention scores by a "
                         f"stored float, and only a power-of-two scale has an exact reciprocal")
    t, c = 1.0 / abs(s), math.copysign(1.0, s)
    if t == 1.0 and d_head > 1:  # TransformerLens reads t = 1 with d_head > 1 as a mistake and refuses it
        t, c = 2.0, 2.0 * c
    return t, c


def to_transformer_lens_state(weights: TransformerWeights, n_ctx: int | None = None) -> tuple[dict, dict, list]:
    """(config for ``TransformerBridge.boot_native``, state dict of float64 arrays, layer shapes)."""
    meta, D = weights.meta, weights.d_model
    shapes = [[b.attn.n_heads, b.attn.d_head, b.mlp.d_mlp] for b in weights.blocks]
    H, d_head, d_mlp = (max(s[i] for s in shapes) for i in range(3))
    t, c = _scale_divisor(meta.attn_scale, d_head)
    if weights.W_pos is not None:
        n_ctx = weights.W_pos.shape[0] if n_ctx is None else n_ctx
        if n_ctx != weights.W_pos.shape[0]:
            raise InputError(f"n_ctx must equal W_pos's {weights.W_pos.shape[0]} rows, got {n_ctx}")
        W_pos = weights.W_pos
    else:
        n_ctx = longest_prompt(meta) if n_ctx is None else n_ctx
        W_pos = np.zeros((n_ctx, D))
    state = {"embed.weight": weights.W_E, "pos_embed.weight": W_pos}
    for layer, block in enumerate(weights.blocks):
        a, m, p = block.attn, block.mlp, f"blocks.{layer}"

        def heads(W, scale=1.0):  # [h, D, e] -> nn.Linear weight [H * d_head, D], zero-padded
            padded = np.zeros((H, d_head, D))
            padded[: W.shape[0], : W.shape[2]] = np.swapaxes(W, 1, 2) * scale
            return padded.reshape(H * d_head, D)

        W_Q = heads(a.W_Q, c)
        if not np.all(np.isfinite(W_Q)):
            raise InputError(f"{p}.attn.W_Q overflows when the attention scale {meta.attn_scale!r} is folded into it")
        W_O = np.zeros((H, d_head, D))
        W_O[: a.n_heads, : a.d_head] = a.W_O
        state.update({
            f"{p}.attn.q.weight": W_Q, f"{p}.attn.k.weight": heads(a.W_K), f"{p}.attn.v.weight": heads(a.W_V),
            f"{p}.attn.o.weight": W_O.reshape(H * d_head, D).T.copy(),
            f"{p}.mlp.in.weight": _pad(m.W_in.T, (d_mlp, D)), f"{p}.mlp.in.bias": _pad(m.b_in, (d_mlp,)),
            f"{p}.mlp.out.weight": _pad(m.W_out.T, (D, d_mlp)), f"{p}.mlp.out.bias": m.b_out,
        })
        for name in ("q", "k", "v"):
            state[f"{p}.attn.{name}.bias"] = np.zeros(H * d_head)
        state[f"{p}.attn.o.bias"] = np.zeros(D)
    state["unembed.weight"] = weights.W_U.T.copy()
    state["unembed.bias"] = weights.b_U
    config = {
        **REQUIRED_CONFIG, "architecture": "TransformerLensNative", "d_model": D, "d_head": d_head, "n_heads": H,
        "n_layers": weights.n_layers, "n_ctx": n_ctx, "d_vocab": meta.d_vocab_in, "d_vocab_out": meta.d_vocab_out,
        "d_mlp": d_mlp, "attn_scale": t, "use_attn_scale": True, "init_weights": False,
    }
    return config, {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in state.items()}, shapes


def _pad(array: np.ndarray, shape: tuple) -> np.ndarray:
    padded = np.zeros(shape)
    padded[tuple(slice(0, n) for n in array.shape)] = array
    return padded


def from_transformer_lens_state(config: dict, state: dict, meta: ModelMeta, layer_shapes: list | None = None,
                                had_W_pos: bool = True) -> tuple[dict, ModelMeta]:
    """(this format's named arrays, meta with the attention scale) from a native TransformerLens
    config and state dict. ``meta`` gives N, R, the query kinds and, through its attn_scale, how to
    unfold a folded scale; ``layer_shapes`` trims zero padding; every refusal names the key."""
    for key, value in REQUIRED_CONFIG.items():
        if config.get(key, value) != value:
            raise InputError(f"transformer_lens_config.{key} is {config.get(key)!r}; this format holds only {value!r}")
    for key in ("attn_scores_soft_cap", "output_logits_soft_cap"):
        if _config_number(config, key, -1.0) > 0:
            raise InputError(f"transformer_lens_config.{key} is {config[key]!r}; this format has no soft cap (needs <= 0)")
    H, d_head, n_layers = (_config_int(config, k) for k in ("n_heads", "d_head", "n_layers"))
    _config_int(config, "n_ctx")  # a positional table of at least one row
    if n_layers > len(state):  # before anything loops over the layers (each needs 12 tensors)
        raise InputError(f"transformer_lens_config.n_layers is {n_layers:,} but the state dict holds only {len(state):,} tensors "
                         f"(12 per layer and 4 more)")
    if config.get("n_key_value_heads") not in (None, H):
        raise InputError(f"transformer_lens_config.n_key_value_heads is {config['n_key_value_heads']!r}; grouped-query attention has no place here")
    if n_layers != meta.n_layers:
        raise InputError(f"transformer_lens_config.n_layers is {n_layers} but meta.n_layers is {meta.n_layers}")
    stored_scale = _config_number(config, "attn_scale", -1.0)
    t = stored_scale if config.get("use_attn_scale", True) and stored_scale > 0 else math.sqrt(d_head)  # TransformerLens's rule
    if not is_power_of_two(t):
        raise InputError(f"transformer_lens_config.attn_scale divides scores by {t!r}, not a power of two: its reciprocal "
                         f"is not a float, so the model has no exact meta.attn_scale")
    expected = _expected_keys(n_layers)
    unknown = sorted(set(state) - expected)
    missing = sorted(expected - set(state))
    if unknown or missing:
        raise InputError(f"the TransformerLens state dict has keys this format does not hold {unknown[:5]} "
                         f"or lacks keys it needs {missing[:5]} (a native model without layer norms is required)")
    state = {k: _real(k, v) for k, v in state.items()}
    D = _config_int(config, "d_model")
    c = meta.attn_scale * t  # W_Q was multiplied by c on the way out when c is ± a power of two
    stored_W_Q = [_shaped(f"blocks.{layer}.attn.q.weight", state[f"blocks.{layer}.attn.q.weight"], (H * d_head, D))
                  for layer in range(n_layers)]
    # unfold only when dividing every W_Q by c is exact (no underflow); else keep W_Q and the scale 1/t
    unfold = is_power_of_two(abs(c)) and all(np.array_equal((W / c) * c, W) for W in stored_W_Q)
    scale = meta.attn_scale if unfold else 1.0 / t
    arrays = {"W_E": state["embed.weight"], "W_U": state["unembed.weight"].T.copy(), "b_U": state["unembed.bias"]}
    if had_W_pos or np.any(state["pos_embed.weight"] != 0):
        arrays["W_pos"] = state["pos_embed.weight"]
    for layer in range(n_layers):
        p = f"blocks.{layer}"
        for name in ("q", "k", "v", "o"):
            if np.any(state[f"{p}.attn.{name}.bias"] != 0):
                raise InputError(f"{p}.attn.{name}.bias is not zero; this format has no attention biases")

        def heads(W):  # nn.Linear weight [H * d_head, D] -> [H, D, d_head]
            return W.reshape(H, d_head, D).transpose(0, 2, 1).copy()

        W_Q = heads(stored_W_Q[layer]) / (c if unfold else 1.0)
        W_O = _shaped(f"{p}.attn.o.weight", state[f"{p}.attn.o.weight"], (D, H * d_head)).T.reshape(H, d_head, D)
        W_in = state[f"{p}.mlp.in.weight"].T
        layer_arrays = {"attn.W_Q": W_Q, "attn.W_K": heads(_shaped(f"{p}.attn.k.weight", state[f"{p}.attn.k.weight"], (H * d_head, D))),
                        "attn.W_V": heads(_shaped(f"{p}.attn.v.weight", state[f"{p}.attn.v.weight"], (H * d_head, D))),
                        "attn.W_O": W_O, "mlp.W_in": W_in, "mlp.b_in": state[f"{p}.mlp.in.bias"],
                        "mlp.W_out": state[f"{p}.mlp.out.weight"].T, "mlp.b_out": state[f"{p}.mlp.out.bias"]}
        if layer_shapes is not None:
            layer_arrays = _trimmed(layer_arrays, layer_shapes[layer])
        arrays.update({f"{p}.{k}": np.ascontiguousarray(v) for k, v in layer_arrays.items()})
    return arrays, _with_scale(meta, scale)


def _trimmed(layer: dict, shape) -> dict:
    """Drop the zero padding ``to_transformer_lens_state`` added, when it is still all zero."""
    heads, d_head, d_mlp = shape
    trimmed = {
        "attn.W_Q": layer["attn.W_Q"][:heads, :, :d_head], "attn.W_K": layer["attn.W_K"][:heads, :, :d_head],
        "attn.W_V": layer["attn.W_V"][:heads, :, :d_head], "attn.W_O": layer["attn.W_O"][:heads, :d_head],
        "mlp.W_in": layer["mlp.W_in"][:, :d_mlp], "mlp.b_in": layer["mlp.b_in"][:d_mlp], "mlp.W_out": layer["mlp.W_out"][:d_mlp],
        "mlp.b_out": layer["mlp.b_out"],
    }
    dropped = sum(np.count_nonzero(layer[k]) for k in layer) - sum(np.count_nonzero(trimmed[k]) for k in trimmed)
    return trimmed if dropped == 0 else layer  # an edited (non-zero) padding stays: the function is what it computes


def _with_scale(meta: ModelMeta, scale: float) -> ModelMeta:
    from dataclasses import replace

    return replace(meta, attn_scale=float(scale))


def _expected_keys(n_layers: int) -> set:
    keys = {"embed.weight", "pos_embed.weight", "unembed.weight", "unembed.bias"}
    for layer in range(n_layers):
        keys |= {f"blocks.{layer}.attn.{n}.{w}" for n in ("q", "k", "v", "o") for w in ("weight", "bias")}
        keys |= {f"blocks.{layer}.mlp.{n}.{w}" for n in ("in", "out") for w in ("weight", "bias")}
    return keys


def _config_number(config: dict, key: str, default: float) -> float:
    value = config.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"transformer_lens_config.{key} must be a finite number, got {value!r}")
    return float(value)


def _config_int(config: dict, key: str) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**40:
        raise InputError(f"transformer_lens_config.{key} must be an integer in 1..2^40, got {value!r}")
    return value


def _real(key: str, value) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind != "f":
        raise InputError(f"{key} has dtype {array.dtype}; the format holds real floating-point arrays only")
    return array.astype(np.float64, copy=False)


def _shaped(key: str, array: np.ndarray, shape: tuple) -> np.ndarray:
    if array.shape != shape:
        raise InputError(f"{key} has shape {list(array.shape)}; the config implies {list(shape)}")
    return array
