"""Full-batch (or mini-batch) AdamW training of the one-layer model on every fact.

Each run with an output folder writes ``config.json`` (the TrainConfig), ``metrics.jsonl``
(one JSON object per evaluation: step, loss, train_accuracy, min_margin, elapsed_s) and
``model.npz`` (docs/FORMAT.md, readable by ``georecall verify``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from georecall.theory.checks import InputError
from georecall.experiments.config import TrainConfig
from georecall.experiments.model import TorchTransformer, init_weights, tie_unembedding
from georecall.theory.instance import Instance
from georecall.formats.containers import save_model
from georecall.verify.torch_path import resolve_device
from georecall.theory.queries import SingleHopQueries
from georecall.theory.spec import ConstructionSpec, spec_from_weights
from georecall.theory.weights import TransformerWeights

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
EVAL_CHUNK_ELEMENTS = 1 << 24  # logits per evaluation chunk: 64 MiB in float32


@dataclass
class TrainRun:
    """What one run produced. ``weights`` is the float64 container of the final parameters."""

    config: TrainConfig
    instance: Instance
    model: TorchTransformer
    history: list = field(default_factory=list)
    train_accuracy: float = 0.0
    min_margin: float = float("-inf")
    steps_run: int = 0
    steps_to_exact: int | None = None
    elapsed_s: float = 0.0

    @property
    def exact(self) -> bool:
        return self.min_margin > 0

    @property
    def weights(self) -> TransformerWeights:
        return self.model.to_weights()

    def spec(self) -> ConstructionSpec:
        return trained_spec(self.weights, self.config)

    def __repr__(self) -> str:
        c = self.config
        state = "EXACT" if self.exact else f"not exact (accuracy {self.train_accuracy:.4f})"
        return (f"TrainRun(N={c.N}, R={c.R}, d_model={c.d_model}, d_mlp={c.d_mlp}: {state}, min margin {self.min_margin:.4g}, "
                f"{self.steps_run} steps, {self.elapsed_s:.1f} s)")

    def to_json_dict(self) -> dict:
        return {
            "config": self.config.to_json_dict(),
            "train_accuracy": self.train_accuracy,
            "min_margin": self.min_margin,
            "exact": self.exact,
            "steps_run": self.steps_run,
            "steps_to_exact": self.steps_to_exact,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def trained_spec(weights: TransformerWeights, config: TrainConfig) -> ConstructionSpec:
    """A trained model guarantees nothing and its shared weights were fitted to the facts."""
    return spec_from_weights(
        weights,
        name="trained",
        bits_per_coordinate=32.0 if config.dtype == "float32" else 64.0,
        guaranteed_margin=float("nan"),
        failure_probability=float("nan"),
        fact_independent_shared=False,
        extra={"train_config": config.to_json_dict()},
    )


def fact_tensors(instance: Instance, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Every single-hop prompt [s, r] (query q = s*R + r) and its answer f_r(s)."""
    queries = SingleHopQueries(instance)
    chunk = queries.take(np.arange(queries.total))
    return torch.as_tensor(chunk.tokens, device=device), torch.as_tensor(chunk.answers, device=device)


@torch.no_grad()
def margins(model: TorchTransformer, tokens: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """Answer logit minus the best other logit, for every prompt (chunked to bound memory)."""
    rows = max(1, EVAL_CHUNK_ELEMENTS // model.meta.N)
    out = []
    for start in range(0, tokens.shape[0], rows):
        logits = model(tokens[start : start + rows])
        index = answers[start : start + rows, None]
        answer = logits.gather(1, index)[:, 0]
        logits.scatter_(1, index, float("-inf"))
        out.append(answer - logits.max(dim=1).values)
    return torch.cat(out)


def evaluate(model: TorchTransformer, tokens: torch.Tensor, answers: torch.Tensor) -> tuple[float, float]:
    """(accuracy with a strict margin, minimum margin) over the given prompts."""
    m = margins(model, tokens, answers)
    return float((m > 0).double().mean()), float(m.min())


def build_model(config: TrainConfig, weights: TransformerWeights | None = None) -> TorchTransformer:
    """The model a run starts from: ``weights`` when given, else a seeded fresh initialisation."""
    if weights is None:
        rng = np.random.default_rng(config.seed)
        weights = init_weights(
            config.N, config.R, config.d_model, config.d_mlp, rng,
            n_heads=config.n_heads, d_head=config.d_model // config.n_heads,
            embed_init_scale=config.embed_init_scale,
        )
        if config.fixed_attention:
            weights = _with_fixed_attention(weights)
    meta = replace(weights.meta, extra={**weights.meta.extra, "construction": "trained", "train_config": config.to_json_dict()})
    weights = replace(weights, meta=meta)
    if config.tie_unembed:
        weights = tie_unembedding(weights)
    return TorchTransformer(weights, dtype=TORCH_DTYPES[config.dtype], device=resolve_device(config.device),
                            tie_unembed=config.tie_unembed)


def _with_fixed_attention(weights: TransformerWeights) -> TransformerWeights:
    """W_Q = W_K = 0 (uniform attention) and an identity OV map in head 0."""
    attn = weights.blocks[0].attn
    H, d, d_head = attn.W_Q.shape
    W_V, W_O = np.zeros_like(attn.W_V), np.zeros_like(attn.W_O)
    k = min(d, d_head)
    W_V[0, :k, :k] = np.eye(k)
    W_O[0, :k, :k] = np.eye(k)
    fixed = replace(attn, W_Q=np.zeros_like(attn.W_Q), W_K=np.zeros_like(attn.W_K), W_V=W_V, W_O=W_O)
    return replace(weights, blocks=(replace(weights.blocks[0], attn=fixed),) + weights.blocks[1:])


class _Freezer:
    """Holds frozen groups at their initial values, including against decoupled weight decay."""

    def __init__(self, model: TorchTransformer, freeze: tuple[str, ...], fixed_attention: bool):
        N = model.meta.N
        freeze = set(freeze) | ({"attn"} if fixed_attention else set())
        whole, self.rows = set(), []
        if {"subjects", "relations"} <= freeze:
            whole.add("W_E")
        elif "subjects" in freeze:
            self.rows.append(("W_E", slice(0, N)))
        elif "relations" in freeze:
            self.rows.append(("W_E", slice(N, None)))
        if model.tie_unembed:
            whole.add("W_U")  # read from the subject rows; its own copy never enters the loss
        for name in model.names:
            if (name == "W_pos" and "pos" in freeze) or (name in ("W_U", "b_U") and "unembed" in freeze):
                whole.add(name)
            elif (".attn." in name and "attn" in freeze) or (".mlp." in name and "mlp" in freeze):
                whole.add(name)
        for name in whole:
            model.param(name).requires_grad_(False)
        self.trainable = [model.param(n) for n in model.names if n not in whole]
        self.saved = [(model.param(n), rows, model.param(n).detach()[rows].clone()) for n, rows in self.rows]

    def zero_frozen_grads(self) -> None:
        for param, rows, _ in self.saved:
            if param.grad is not None:
                param.grad[rows] = 0

    @torch.no_grad()
    def restore(self) -> None:
        for param, rows, value in self.saved:
            param[rows] = value


def optimisation_step(optimiser, freezer: "_Freezer", loss_fn) -> float:
    """One AdamW step on ``loss_fn()`` with frozen groups held (also against weight decay); the loss."""
    optimiser.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    freezer.zero_frozen_grads()
    optimiser.step()
    freezer.restore()
    return float(loss.detach())


# A second torch thread pays from about 1e8 units of step_work (2-core machine, full batch, 60 steps,
# 1 thread against 2: speedup 1.07 at 1.9e7, 1.46 at 1.3e8, 1.76 at 1.1e9, 1.75 at 2.9e10); below
# that it mostly waits, and on a shared machine it waits on parked threads (benchmarks/contention.py).
TORCH_WORK_PER_THREAD = 5e7


def step_work(config: TrainConfig) -> float:
    """Multiply-adds of one full-batch step, forward and backward (about 3 x 2 per weight use)."""
    batch = config.facts if config.batch_size is None else min(config.batch_size, config.facts)
    return 6.0 * batch * config.d_model * (config.d_mlp + config.N + 4 * config.d_model)


def train(config: TrainConfig, instance: Instance | None = None, *, weights: TransformerWeights | None = None, out=None,
          progress=None, metrics_out=None) -> TrainRun:
    """``_train`` with torch held to the threads its step size pays for (verify/threads.py), then
    torch's own setting restored."""
    from georecall.verify.threads import threads_for

    previous = torch.get_num_threads()
    torch.set_num_threads(threads_for(step_work(config), TORCH_WORK_PER_THREAD))
    try:
        return _train(config, instance, weights=weights, out=out, progress=progress, metrics_out=metrics_out)
    finally:
        torch.set_num_threads(previous)


def _train(
    config: TrainConfig,
    instance: Instance | None = None,
    *,
    weights: TransformerWeights | None = None,
    out=None,
    progress=None,
    metrics_out=None,
) -> TrainRun:
    """Train on every fact of ``instance`` (default: ``Instance.random(N, R, config.data_seed)``).

    ``weights`` starts from given parameters instead of a fresh initialisation (embedding-only
    re-training in the transfer experiments). ``progress(step, steps)`` is called after each
    evaluation. Training stops early once every margin is at least ``config.stop_margin``.
    ``out``: folder for config.json, metrics.jsonl and model.npz; ``metrics_out``: another folder for
    metrics.jsonl as it grows (default ``out``).
    """
    if instance is None:
        instance = Instance.random(config.N, config.R, config.data_seed)
    if (instance.N, instance.R) != (config.N, config.R):
        raise InputError(f"instance has N={instance.N}, R={instance.R} but config has N={config.N}, R={config.R}")
    torch.manual_seed(config.seed)
    model = build_model(config, weights)
    device = next(model.parameters()).device
    tokens, answers = fact_tensors(instance, device)
    freezer = _Freezer(model, config.freeze, config.fixed_attention)
    optimiser = torch.optim.AdamW(freezer.trainable, lr=config.lr, weight_decay=config.weight_decay) if freezer.trainable else None
    batch_generator = torch.Generator().manual_seed(config.seed)
    run = TrainRun(config, instance, model)
    log = _MetricsLog(out, config, metrics_out)
    start = time.perf_counter()

    def record(step: int, loss: float) -> bool:
        accuracy, min_margin = evaluate(model, tokens, answers)
        run.train_accuracy, run.min_margin, run.steps_run = accuracy, min_margin, step
        if run.steps_to_exact is None and min_margin > 0:
            run.steps_to_exact = step
        entry = {"step": step, "loss": loss, "train_accuracy": accuracy, "min_margin": min_margin,
                 "elapsed_s": round(time.perf_counter() - start, 4)}
        run.history.append(entry)
        log.write(entry)
        if progress is not None:
            progress(step, config.steps)
        return config.stop_margin > 0 and min_margin >= config.stop_margin

    done = record(0, float("nan"))
    n_facts = tokens.shape[0]
    batch = n_facts if config.batch_size is None else min(config.batch_size, n_facts)
    order = torch.arange(n_facts, device=device)
    position = n_facts
    for step in range(1, config.steps + 1):
        if done or optimiser is None:
            break
        if batch < n_facts and position + batch > n_facts:
            order = torch.randperm(n_facts, generator=batch_generator).to(device)
            position = 0
        index = order[position : position + batch] if batch < n_facts else order
        position += batch
        loss = optimisation_step(optimiser, freezer, lambda: torch.nn.functional.cross_entropy(model(tokens[index]), answers[index]))
        if step % config.eval_every == 0 or step == config.steps:
            done = record(step, loss)
    run.elapsed_s = time.perf_counter() - start
    if progress is not None and run.steps_run < config.steps:
        progress(run.steps_run, run.steps_run)  # stopped early: the bar ends here, not at the budget
    log.close()
    if out is not None:
        weights = run.weights  # converted once for the file and its spec
        save_model(Path(out) / "model.npz", weights, instance, trained_spec(weights, config))
    return run


RUN_FILES = ("model.npz", "summary.json", "metrics.jsonl", "config.json")  # the model first: never a stale model beside a new config


class _MetricsLog:
    def __init__(self, out, config: TrainConfig, metrics_out=None):
        self.handle = None
        if out is not None:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:  # a run replaces the folder's previous run as a whole, even if it is killed midway
                (folder / name).unlink(missing_ok=True)
            config.save(folder / "config.json")
            self.handle = open(Path(out if metrics_out is None else metrics_out) / "metrics.jsonl", "w")

    def write(self, entry: dict) -> None:
        if self.handle is not None:
            self.handle.write(json.dumps(entry) + "\n")
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
