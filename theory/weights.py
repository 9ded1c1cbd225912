"""The typed weights container. Names and shapes follow TransformerLens (docs/FORMAT.md).

Every array is float64, checked for shape consistency and for finite values. The two arrays that
grow with N, W_E and W_U, may instead be ``Widened``: kept in the narrower float dtype a file
stored them in (float16, float32: every value exactly a float64) and widened where they are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from georecall.theory.checks import InputError
from georecall.theory.arrays import WIDENED_ARRAYS, Widened, all_finite_bits, kept_narrow

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelMeta:
    """What a weights file says about itself besides its arrays.

    N, R: subjects and relations. Token layout: subjects 0..N-1, relations N..N+R-1, then the
    special tokens named in ``special_tokens`` (name -> id). The output vocabulary is the N
    entities/attributes. ``attn_scale`` multiplies every attention score q.k.
    ``query_kinds`` lists what the file answers, e.g. ["single_hop"]. ``extra`` holds
    construction details (name, codebook, hops, ...) as JSON-serialisable values.
    """

    N: int
    R: int
    n_layers: int
    attn_scale: float
    query_kinds: tuple[str, ...] = ("single_hop",)
    special_tokens: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def d_vocab_in(self) -> int:
        return self.N + self.R + len(self.special_tokens)

    @property
    def d_vocab_out(self) -> int:
        return self.N

    def to_json_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "N": self.N,
            "R": self.R,
            "n_layers": self.n_layers,
            "attn_scale": self.attn_scale,
            "token_layout": {
                "subjects": [0, self.N],
                "relations": [self.N, self.N + self.R],
                "special": dict(self.special_tokens),
            },
            "d_vocab_in": self.d_vocab_in,
            "d_vocab_out": self.d_vocab_out,
            "query_kinds": list(self.query_kinds),
            "extra": self.extra,
        }

    @classmethod
    def from_json_dict(cls, data: dict) -> "ModelMeta":
        """Validate a file's meta against docs/FORMAT.md §4; every error names the key."""
        if not isinstance(data, dict):
            raise InputError("meta must be a JSON object")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise InputError(f"meta.format_version is {version!r}; this reader understands {FORMAT_VERSION}")
        N = _meta_int(data, "N", 2)
        R = _meta_int(data, "R", 1)
        n_layers = _meta_int(data, "n_layers", 1)
        scale = data.get("attn_scale")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale):
            raise InputError(f"meta.attn_scale must be a finite number, got {scale!r}")
        kinds = data.get("query_kinds", ["single_hop"])
        if not isinstance(kinds, list) or not kinds or not all(k in QUERY_KINDS for k in kinds):
            raise InputError(f"meta.query_kinds must be a non-empty list drawn from {list(QUERY_KINDS)}, got {kinds!r}")
        layout = data.get("token_layout")
        if not isinstance(layout, dict):
            raise InputError(f"meta.token_layout must be an object, got {layout!r}")
        if layout.get("subjects") != [0, N] or layout.get("relations") != [N, N + R]:
            raise InputError("meta.token_layout must place subjects at [0, N) and relations at [N, N+R)")
        special = layout.get("special", {})
        if not isinstance(special, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in special.values()):
            raise InputError(f"meta.token_layout.special must map names to token ids, got {special!r}")
        expected = list(range(N + R, N + R + len(special)))
        if sorted(special.values()) != expected:
            raise InputError(f"meta.token_layout.special must use the ids {expected} (after the relations), got {sorted(special.values())}")
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise InputError(f"meta.extra must be an object, got {type(extra).__name__}")
        return cls(N=N, R=R, n_layers=n_layers, attn_scale=float(scale), query_kinds=tuple(kinds),
                   special_tokens={str(k): v for k, v in special.items()}, extra=dict(extra))


QUERY_KINDS = ("single_hop", "multi_hop", "cot")
META_INT_LIMIT = 2**40  # beyond any model this reader can hold; refuses absurd sizes before any allocation


def _meta_int(data: dict, key: str, minimum: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= META_INT_LIMIT:
        raise InputError(f"meta.{key} must be an integer in {minimum}..{META_INT_LIMIT}, got {value!r}")
    return value


@dataclass(frozen=True)
class AttentionWeights:
    """W_Q, W_K, W_V: [n_heads, d_model, d_head]; W_O: [n_heads, d_head, d_model]."""

    W_Q: np.ndarray
    W_K: np.ndarray
    W_V: np.ndarray
    W_O: np.ndarray

    @property
    def n_heads(self) -> int:
        return int(self.W_Q.shape[0])

    @property
    def d_head(self) -> int:
        return int(self.W_Q.shape[2])


@dataclass(frozen=True)
class MLPWeights:
    """W_in: [d_model, d_mlp]; b_in: [d_mlp]; W_out: [d_mlp, d_model]; b_out: [d_model]."""

    W_in: np.ndarray
    b_in: np.ndarray
    W_out: np.ndarray
    b_out: np.ndarray

    @property
    def d_mlp(self) -> int:
        return int(self.W_in.shape[1])


@dataclass(frozen=True)
class Block:
    attn: AttentionWeights
    mlp: MLPWeights


@dataclass(frozen=True)
class TransformerWeights:
    """A whole model. ``W_E``: [d_vocab_in, d_model]; ``W_pos``: [n_ctx, d_model] or None;
    ``blocks``: one :class:`Block` per layer; ``W_U``: [d_model, d_vocab_out]; ``b_U``: [d_vocab_out].
    """

    W_E: np.ndarray
    blocks: tuple[Block, ...]
    W_U: np.ndarray
    b_U: np.ndarray
    meta: ModelMeta
    W_pos: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        for name, array in self.named_arrays().items():
            _check_finite(name, array)
        self._check_shapes()

    @property
    def d_model(self) -> int:
        return int(self.W_E.shape[1])

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    def named_arrays(self) -> dict[str, np.ndarray]:
        """Every array under its file name (docs/FORMAT.md)."""
        arrays = {"W_E": self.W_E}
        if self.W_pos is not None:
            arrays["W_pos"] = self.W_pos
        for layer, block in enumerate(self.blocks):
            for name in ("W_Q", "W_K", "W_V", "W_O"):
                arrays[f"blocks.{layer}.attn.{name}"] = getattr(block.attn, name)
            for name in ("W_in", "b_in", "W_out", "b_out"):
                arrays[f"blocks.{layer}.mlp.{name}"] = getattr(block.mlp, name)
        arrays["W_U"] = self.W_U
        arrays["b_U"] = self.b_U
        return arrays

    @classmethod
    def from_named_arrays(cls, arrays: dict, meta: ModelMeta) -> "TransformerWeights":
        def get(name):
            if name not in arrays:
                raise InputError(f"weights are missing the array {name!r}")
            array = np.asarray(arrays[name])
            if array.dtype.kind != "f":
                # a complex array would lose its imaginary part, an integer or object one means another format
                raise InputError(f"{name} has dtype {array.dtype}; the format holds real floating-point arrays only")
            return array.astype(np.float64, copy=False)

        def get_maybe_narrow(name):
            array = arrays.get(name)
            if isinstance(array, Widened):
                return array
            if kept_narrow(name, array):
                return Widened(array)
            return get(name)

        blocks = []
        for layer in range(meta.n_layers):
            attn = AttentionWeights(*(get(f"blocks.{layer}.attn.{n}") for n in ("W_Q", "W_K", "W_V", "W_O")))
            mlp = MLPWeights(*(get(f"blocks.{layer}.mlp.{n}") for n in ("W_in", "b_in", "W_out", "b_out")))
            blocks.append(Block(attn, mlp))
        W_pos = get("W_pos") if "W_pos" in arrays else None
        return cls(get_maybe_narrow("W_E"), tuple(blocks), get_maybe_narrow("W_U"), get("b_U"), meta, W_pos)

    def with_subject_embeddings(self, subject_embeddings: np.ndarray) -> "TransformerWeights":
        """A copy whose first N rows of W_E (the subjects) are replaced; everything else is shared."""
        W_E = self.W_E.copy()
        W_E[: self.meta.N] = subject_embeddings
        return replace(self, W_E=W_E)

    def shared_arrays(self) -> dict[str, np.ndarray]:
        """Every parameter except the subject rows of W_E: what a generic model fixes before the facts."""
        arrays = dict(self.named_arrays())
        arrays["W_E"] = self.W_E[self.meta.N :]
        return arrays

    def _check_shapes(self) -> None:
        meta, d = self.meta, self.W_E.shape[1] if self.W_E.ndim == 2 else None
        _expect("W_E", self.W_E, (meta.d_vocab_in, d))
        if self.W_pos is not None:
            _expect("W_pos", self.W_pos, (self.W_pos.shape[0] if self.W_pos.ndim == 2 else None, d))
        if len(self.blocks) != meta.n_layers:
            raise InputError(f"meta.n_layers is {meta.n_layers} but {len(self.blocks)} blocks were given")
        for layer, block in enumerate(self.blocks):
            attn, mlp = block.attn, block.mlp
            p = f"blocks.{layer}"
            heads = attn.W_Q.shape[0] if attn.W_Q.ndim == 3 else None
            d_head = attn.W_Q.shape[2] if attn.W_Q.ndim == 3 else None
            for name in ("W_Q", "W_K", "W_V"):
                _expect(f"{p}.attn.{name}", getattr(attn, name), (heads, d, d_head))
            _expect(f"{p}.attn.W_O", attn.W_O, (heads, d_head, d))
            d_mlp = mlp.W_in.shape[1] if mlp.W_in.ndim == 2 else None
            _expect(f"{p}.mlp.W_in", mlp.W_in, (d, d_mlp))
            _expect(f"{p}.mlp.b_in", mlp.b_in, (d_mlp,))
            _expect(f"{p}.mlp.W_out", mlp.W_out, (d_mlp, d))
            _expect(f"{p}.mlp.b_out", mlp.b_out, (d,))
        _expect("W_U", self.W_U, (d, meta.d_vocab_out))
        _expect("b_U", self.b_U, (meta.d_vocab_out,))
        if not (np.isfinite(meta.attn_scale)):
            raise InputError(f"meta.attn_scale must be finite, got {meta.attn_scale}")

    def __repr__(self) -> str:
        return (
            f"TransformerWeights(N={self.meta.N}, R={self.meta.R}, d_model={self.d_model}, "
            f"n_layers={self.n_layers}, d_mlp={[b.mlp.d_mlp for b in self.blocks]}, "
            f"construction={self.meta.extra.get('construction', '?')!r})"
        )


def _check_finite(name: str, array) -> None:
    if isinstance(array, Widened) and name in WIDENED_ARRAYS:
        if array.finite or all_finite_bits(array.stored):
            return
        array = array.stored  # found below
    elif not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise InputError(f"{name} must be a float64 numpy array (use np.asarray(x, dtype=np.float64))")
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(array, dtype=np.float64)  # one fast pass: a finite sum means every entry is finite
    if not np.isfinite(total) and not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise InputError(f"{name} holds a non-finite value ({array[tuple(bad)]}) at index {tuple(int(i) for i in bad)}")


def _expect(name: str, array: np.ndarray, shape: tuple) -> None:
    ok = array.ndim == len(shape) and all(want is None or got == want for got, want in zip(array.shape, shape))
    if not ok:
        want = "[" + ", ".join("?" if s is None else str(s) for s in shape) + "]"
        raise InputError(f"{name} has shape {list(array.shape)}, expected {want}")
