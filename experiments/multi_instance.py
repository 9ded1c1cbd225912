"""Multi-instance training (issue 14): one set of shared weights, M instances.

Every instance is R bijections over the same N attributes; each has its own subject-embedding
table, and everything else (relation rows, positions, attention, MLP, and W_U unless frozen) is
shared and trained jointly on all M N R facts. With one instance nothing forces the shared weights
to be fact-independent; with several, a shared weight that stored one instance's facts would fail
the others, which is what the theory's generic weights are.

``MultiInstanceRun.weights(m)`` is instance m's model in the weights format (its table as the
subject rows), so each instance is checked by the same verifier as any other file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from georecall.experiments.config import TrainConfig
from georecall.experiments.model import tie_unembedding
from georecall.experiments.train import _Freezer, build_model, fact_tensors, optimisation_step
from georecall.theory.checks import InputError, require_int
from georecall.theory.instance import Instance
from georecall.theory.weights import TransformerWeights

INSTANCE_STREAM = 14  # instance m's facts come from default_rng([data_seed, INSTANCE_STREAM, m])


def instances_for(config: TrainConfig, M: int) -> list[Instance]:
    M = require_int("instances", M, minimum=1)
    return [Instance.random(config.N, config.R, np.random.default_rng([config.data_seed, INSTANCE_STREAM, m])) for m in range(M)]


@dataclass
class MultiInstanceRun:
    config: TrainConfig
    instances: list
    model: torch.nn.Module
    tables: torch.nn.Parameter  # [M, N, d_model]
    accuracy: list = field(default_factory=list)  # per instance, at the last evaluation
    min_margin: list = field(default_factory=list)
    steps_run: int = 0
    steps_to_exact: int | None = None  # first evaluation at which every instance was exact
    elapsed_s: float = 0.0
    history: list = field(default_factory=list)

    def weights(self, m: int) -> TransformerWeights:
        """Instance m's model in the weights format (float64)."""
        base = self.model.to_weights()
        table = self.tables[m].detach().cpu().to(torch.float64).numpy()
        weights = base.with_subject_embeddings(table)
        return tie_unembedding(weights) if self.config.tie_unembed else weights

    def to_json_dict(self) -> dict:
        return {"instances": len(self.instances), "train_accuracy": self.accuracy, "min_margin": self.min_margin,
                "all_exact": all(a == 1.0 for a in self.accuracy), "steps_run": self.steps_run,
                "steps_to_exact": self.steps_to_exact, "elapsed_s": round(self.elapsed_s, 3)}


def _prompts(run_tables: torch.nn.Parameter, model, m_index, subjects, relation_tokens) -> torch.Tensor:
    """Embedded prompts [B, 2, d]: instance m's subject row, then the shared relation row (and positions)."""
    W_E = model.param("W_E")
    x = torch.stack([run_tables[m_index, subjects], W_E[relation_tokens]], dim=1)
    if "W_pos" in model.names:
        x = x + model.param("W_pos")[:2]
    return x


def train_multi_instance(config: TrainConfig, instances: list[Instance] | None = None, M: int = 2, *, progress=None) -> MultiInstanceRun:
    """Jointly train shared weights and M subject tables on every fact of every instance (full batch)."""
    instances = instances_for(config, M) if instances is None else list(instances)
    if not instances or any((i.N, i.R) != (config.N, config.R) for i in instances):
        raise InputError(f"instances must be a non-empty list with N={config.N}, R={config.R}")
    torch.manual_seed(config.seed)
    model = build_model(config)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    rng = np.random.default_rng([config.seed, INSTANCE_STREAM])
    scale = config.embed_init_scale / np.sqrt(config.d_model)  # the single-instance initialisation, per table
    tables = torch.nn.Parameter(torch.tensor(rng.standard_normal((len(instances), config.N, config.d_model)) * scale, dtype=dtype, device=device))
    freezer = _Freezer(model, tuple(g for g in config.freeze if g != "subjects") + ("subjects",), config.fixed_attention)
    trainable = list(freezer.trainable) + ([] if "subjects" in config.freeze else [tables])
    optimiser = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    pieces = [fact_tensors(inst, device) for inst in instances]
    m_index = torch.cat([torch.full((len(a),), m, device=device) for m, (_, a) in enumerate(pieces)])
    subjects = torch.cat([t[:, 0] for t, _ in pieces])
    relations = torch.cat([t[:, 1] for t, _ in pieces])
    answers = torch.cat([a for _, a in pieces])
    run = MultiInstanceRun(config, instances, model, tables)
    start = time.perf_counter()

    groups = [torch.nonzero(m_index == m)[:, 0] for m in range(len(instances))]

    def logits_all() -> torch.Tensor:
        residual = model.final_residual_from(_prompts(tables, model, m_index, subjects, relations))
        if not config.tie_unembed:
            return residual @ model.param("W_U") + model.param("b_U")
        # Tied: each instance's answers are read against its own table (the facts are in instance order).
        return torch.cat([residual[rows] @ tables[m].T for m, rows in enumerate(groups)]) + model.param("b_U")

    def evaluate(step: int, loss: float) -> bool:
        with torch.no_grad():
            logits = logits_all()
            target = logits.gather(1, answers[:, None])[:, 0]
            rival = logits.scatter(1, answers[:, None], float("-inf")).max(dim=1).values
            margin = (target - rival).cpu().numpy()
        owner = m_index.cpu().numpy()
        run.accuracy = [float(np.mean(margin[owner == m] > 0)) for m in range(len(instances))]
        run.min_margin = [float(margin[owner == m].min()) for m in range(len(instances))]
        run.steps_run = step
        if run.steps_to_exact is None and min(run.min_margin) > 0:
            run.steps_to_exact = step
        run.history.append({"step": step, "loss": loss, "train_accuracy": run.accuracy, "min_margin": run.min_margin})
        if progress is not None:
            progress(step, config.steps)
        return config.stop_margin > 0 and min(run.min_margin) >= config.stop_margin

    done = evaluate(0, float("nan"))
    for step in range(1, config.steps + 1):
        if done:
            break
        loss = optimisation_step(optimiser, freezer, lambda: torch.nn.functional.cross_entropy(logits_all(), answers))
        if step % config.eval_every == 0 or step == config.steps:
            done = evaluate(step, loss)
    run.elapsed_s = time.perf_counter() - start
    return run


def shared_weights_agree(run: MultiInstanceRun) -> bool:
    """Every instance's model has the same shared arrays (only the subject rows differ, and W_U when tied to them)."""
    def shared(m: int) -> dict:
        arrays = run.weights(m).shared_arrays()
        if run.config.tie_unembed:
            del arrays["W_U"]
        return arrays

    first = shared(0)
    return all(all(np.array_equal(first[k], v) for k, v in shared(m).items()) for m in range(1, len(run.instances)))



