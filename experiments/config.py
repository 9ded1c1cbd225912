"""TrainConfig: every choice a training run makes, saved as config.json next to its results."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace

from georecall.formats.safe_json import parse_json
from georecall.theory.checks import InputError, require_int

# Parameter groups a run can freeze. "subjects" and "relations" are row blocks of W_E.
PARAM_GROUPS = ("subjects", "relations", "pos", "attn", "mlp", "unembed")
DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """One gradient-descent run on R random bijections of [N] (docs/experiments.md).

    N, R: the instance; ``instance_seed`` draws it (default: ``seed``).
    d_model, d_mlp, n_heads: the one-layer model; d_head = d_model / n_heads.
    steps, lr, weight_decay: AdamW, full batch unless ``batch_size`` is set.
    embed_init_scale: norm of a freshly initialised embedding row (decides whether
        superposition forms). seed: model initialisation and batch order.
    freeze: parameter groups (PARAM_GROUPS) held at their initial values.
    fixed_attention: attention is frozen at a uniform average with an identity OV map, so the
        last position reads e_r + (e_s + e_r)/2: the input of a Nichani-style associative memory.
    tie_unembed: W_U = W_E[:N]^T throughout: the attribute of an answer is that entity's own
        embedding (the tied-attributes regime); W_U is then not a parameter of its own.
    stop_margin: training stops once every fact's margin is at least this (0 disables early stop).
    eval_every: steps between evaluations of accuracy and margin on every fact.
    """

    N: int
    R: int
    d_model: int
    d_mlp: int
    steps: int = 3000
    lr: float = 1e-2
    seed: int = 0
    instance_seed: int | None = None
    embed_init_scale: float = 1.0
    weight_decay: float = 0.0
    batch_size: int | None = None
    n_heads: int = 1
    freeze: tuple[str, ...] = ()
    fixed_attention: bool = False
    tie_unembed: bool = False
    stop_margin: float = 1.0
    eval_every: int = 25
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self):
        require_int("N", self.N, minimum=2)
        require_int("R", self.R, minimum=1)
        require_int("d_model", self.d_model, minimum=1)
        require_int("d_mlp", self.d_mlp, minimum=1)
        require_int("steps", self.steps, minimum=0)
        require_int("seed", self.seed, minimum=0)
        require_int("n_heads", self.n_heads, minimum=1)
        require_int("eval_every", self.eval_every, minimum=1)
        if self.instance_seed is not None:
            require_int("instance_seed", self.instance_seed, minimum=0)
        if self.batch_size is not None:
            require_int("batch_size", self.batch_size, minimum=1)
        if self.d_model % self.n_heads:
            raise InputError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        _require_positive("lr", self.lr)
        _require_positive("embed_init_scale", self.embed_init_scale)
        _require_non_negative("weight_decay", self.weight_decay)
        _require_non_negative("stop_margin", self.stop_margin)
        object.__setattr__(self, "freeze", tuple(self.freeze))
        unknown = sorted(set(self.freeze) - set(PARAM_GROUPS))
        if unknown:
            raise InputError(f"freeze has unknown groups {unknown}; valid groups are {list(PARAM_GROUPS)}")
        if self.tie_unembed and "unembed" in self.freeze:
            raise InputError("freeze 'unembed' contradicts tie_unembed (W_U is the subject rows); freeze 'subjects' instead")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        refuse_out_of_reach(self)
        if self.device not in DEVICES:
            raise InputError(f"device must be one of {list(DEVICES)}, got {self.device!r}")

    @property
    def facts(self) -> int:
        return self.N * self.R

    @property
    def data_seed(self) -> int:
        return self.seed if self.instance_seed is None else self.instance_seed

    def embedding_only_freeze(self) -> tuple[str, ...]:
        """What embedding-only (re-)training freezes: every group but the subject table, and but W_U
        when it is tied to the table (it then moves with it)."""
        kept = ("subjects", "unembed") if self.tie_unembed else ("subjects",)
        return tuple(g for g in PARAM_GROUPS if g not in kept)

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def to_json_dict(self) -> dict:
        data = asdict(self)
        data["freeze"] = list(self.freeze)
        return data

    @classmethod
    def from_json_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"config has unknown keys {unknown}")
        return cls(**{**data, "freeze": tuple(data.get("freeze", ()))})

    def save(self, path) -> None:
        with open(path, "w") as handle:
            json.dump(self.to_json_dict(), handle, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path) -> "TrainConfig":
        with open(path) as handle:
            return cls.from_json_dict(parse_json(handle.read(2**20 + 1), f"config file {path}", 2**20))


def _require_positive(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a finite number > 0, got {value!r}")


def _require_non_negative(name: str, value) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")


TRAIN_MEMORY_LIMIT_BYTES = 8 * 2**30  # a third of this machine: refuse before allocating, never thrash


def training_bytes(config: TrainConfig, instances: int = 1) -> int:
    """An estimate of a run's peak memory: parameters with AdamW's two moments and a gradient, the
    full batch's activations (scores, MLP, logits over N answers) and the evaluation pass."""
    vocab = config.N + config.R + 8
    params = vocab * config.d_model * instances + 4 * config.d_model**2 + 2 * config.d_model * config.d_mlp + config.d_model * config.N
    batch = min(config.batch_size or config.N * config.R, config.N * config.R) * instances
    activations = batch * (4 * config.d_model + 2 * config.d_mlp + 3 * config.N)
    width = 8 if config.dtype == "float64" else 4
    return width * (4 * params + 2 * activations)


def refuse_out_of_reach(config: TrainConfig, instances: int = 1) -> None:
    """InputError before anything is allocated when a run would need more than TRAIN_MEMORY_LIMIT_BYTES."""
    estimate = training_bytes(config, instances)
    if estimate > TRAIN_MEMORY_LIMIT_BYTES:
        raise InputError(f"training N = {config.N:,}, R = {config.R:,}, d = {config.d_model:,}, d_mlp = {config.d_mlp:,}"
                         + (f" on {instances:,} instances" if instances > 1 else "")
                         + f" would need about {estimate / 2**30:,.3g} GiB (limit {TRAIN_MEMORY_LIMIT_BYTES / 2**30:.0f} GiB); "
                           "lower N, R, d, d_mlp or --batch-size")
