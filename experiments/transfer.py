"""Zero-shot transfer (claim C5): keep every shared weight, draw new bijections g_r, and
re-initialise only the subject embeddings.

Re-initialisations:
- ``fitted_map``: e'_s = b + sum_r M_r U_{g_r(s)}, with (M_r, b) from ``superposition_fit``.
- ``inversion``: for each relation r, the trained network's final residual is fitted as an affine
  function of the subject embedding, h(e, r) ~ A_r e + c_r (least squares over the trained
  subjects). The target for answering a under relation r is t_r(a) = h(e_{f_r^-1(a)}, r), the
  residual the trained model produces when it answers a. e'_s solves
  min_e sum_r |A_r e + c_r - t_r(g_r(s))|^2.
- ``random``: the training initialisation's distribution, N(0, init_scale^2 / d) per entry.

For each, the zero-shot accuracy (reference float64 forward pass) and the embedding-only AdamW
steps to reach 100% (None when the budget runs out).
"""

from __future__ import annotations

import numpy as np

from georecall.theory.checks import InputError
from georecall.experiments.analysis import attribute_vectors, residual_from_embeddings, superposition_fit
from georecall.experiments.config import TrainConfig
from georecall.experiments.model import tie_unembedding
from georecall.experiments.train import train
from georecall.theory.instance import Instance
from georecall.verify.run import verify_single_hop
from georecall.theory.weights import TransformerWeights

REINITS = ("fitted_map", "inversion", "random")
NEW_FACTS_STREAM = 4


def fitted_map_embeddings(weights: TransformerWeights, trained_on: Instance, new: Instance, fit: dict | None = None) -> np.ndarray:
    fit = superposition_fit(weights, trained_on) if fit is None else fit
    U = attribute_vectors(weights)
    return fit["offset"] + sum(U[new.facts[r]] @ fit["maps"][r].T for r in range(new.R))


def inversion_embeddings(weights: TransformerWeights, trained_on: Instance, new: Instance) -> np.ndarray:
    N, R, d = trained_on.N, trained_on.R, weights.d_model
    E = weights.W_E[:N]
    X = np.hstack([E, np.ones((N, 1))])
    stacked_A, stacked_targets = [], []
    for r in range(R):
        h = residual_from_embeddings(weights, E, np.full(N, r))
        coef, *_ = np.linalg.lstsq(X, h, rcond=None)  # h ~ E A_r^T + c_r
        A, c = coef[:d].T, coef[d]
        inverse = np.empty(N, dtype=np.int64)
        inverse[trained_on.facts[r]] = np.arange(N)
        targets = h[inverse[new.facts[r]]]  # t_r(g_r(s)) for every new subject s
        stacked_A.append(A)
        stacked_targets.append(targets - c)
    system = np.vstack(stacked_A)  # [R d, d]
    rhs = np.hstack(stacked_targets)  # [N, R d]
    solution, *_ = np.linalg.lstsq(system, rhs.T, rcond=None)
    return solution.T


def random_embeddings(weights: TransformerWeights, N: int, init_scale: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, NEW_FACTS_STREAM, 1])
    return rng.standard_normal((N, weights.d_model)) * (init_scale / np.sqrt(weights.d_model))


def zero_shot_accuracy(weights: TransformerWeights, instance: Instance) -> float:
    report = verify_single_hop(weights, instance)
    return 1.0 - report.failures / report.total_queries


def transfer_experiment(weights: TransformerWeights, trained_on: Instance, config: TrainConfig, steps: int = 2000,
                        seed: int = 0, fit: dict | None = None, reinits=REINITS, lr: float | None = None, progress_for=None) -> dict:
    """Zero-shot accuracy and embedding-only steps to 100% for each re-initialisation (``lr``: the
    embedding-only learning rate, default the training one; ``progress_for(name)``: a
    ``progress(step, steps)`` callback for that re-initialisation's run, or None)."""
    unknown = sorted(set(reinits) - set(REINITS))
    if unknown:
        raise InputError(f"reinits has unknown methods {unknown}; valid methods are {list(REINITS)}")
    new = Instance.random(trained_on.N, trained_on.R, np.random.default_rng([seed, NEW_FACTS_STREAM]))
    makers = {
        "fitted_map": lambda: fitted_map_embeddings(weights, trained_on, new, fit),
        "inversion": lambda: inversion_embeddings(weights, trained_on, new),
        "random": lambda: random_embeddings(weights, trained_on.N, config.embed_init_scale, seed),
    }
    retrain = config.replace(steps=steps, freeze=config.embedding_only_freeze(),
                             weight_decay=0.0, instance_seed=None, lr=config.lr if lr is None else lr)
    results = {}
    for name in reinits:
        start = weights.with_subject_embeddings(makers[name]())
        if config.tie_unembed:
            start = tie_unembedding(start)  # the new table is the new codebook too
        run = train(retrain, new, weights=start, progress=None if progress_for is None else progress_for(f"transfer/{name}"))
        results[name] = {"zero_shot_accuracy": zero_shot_accuracy(start, new), "steps_to_exact": run.steps_to_exact,
                         "final_accuracy": run.train_accuracy, "steps_budget": steps}
    return {"chance": 1.0 / trained_on.N, "new_facts_seed": seed, "embedding_lr": retrain.lr, "reinits": results}


def reinit_columns(result: dict) -> dict:
    """One flat CSV row fragment per re-initialisation: <method>_zero_shot, _steps_to_exact, _final_accuracy."""
    row = {}
    for name, r in result["reinits"].items():
        row[f"{name}_zero_shot"] = r["zero_shot_accuracy"]
        row[f"{name}_steps_to_exact"] = r["steps_to_exact"]
        row[f"{name}_final_accuracy"] = r["final_accuracy"]
    return row
