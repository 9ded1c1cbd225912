"""Structure analyses of a trained model (docs/experiments.md), computed on the float64 container.

Every function takes the reference weights and the instance they were trained on and uses
``theory.model`` for any forward pass, so the numbers are those of the reference model.

- superposition_fit: least squares e_s ~ b + sum_r M_r U_{f_r(s)} (U_a = column a of W_U), its
  K-fold cross-validated R^2, and the same for a shuffled-attribute null.
- probe_accuracy: per relation, a linear map from e_s to U_{f_r(s)} fitted on K-1 folds of
  subjects; a held-out subject counts as decoded when its predicted vector is nearest (in
  Euclidean distance, over all N attributes) to U_{f_r(s)}. Every attribute occurs once per
  relation, so a classifier over attribute labels could never be tested on unseen subjects.
- gating_selectivity: the fraction of active MLP units whose activation mass is >= 90% on one
  relation.
- causal_swap: e_s + M_r (U_a - U_{f_r(s)}) must make relation r answer a, and leave every other
  relation's answer unchanged.
"""

from __future__ import annotations

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.theory.model import attention, mlp
from georecall.theory.weights import TransformerWeights

SELECTIVE_SHARE = 0.9  # a unit is single-relation when this share of its activation mass is on one relation
ACTIVE_RATE = 0.01  # a unit is active when it fires on at least this fraction of queries
RIDGE = 1e-6  # relative ridge: keeps the fits defined when N is close to R * d
FOLD_STREAM, NULL_STREAM, SWAP_STREAM = 1, 2, 3  # independent random streams under one seed


def attribute_vectors(weights: TransformerWeights) -> np.ndarray:
    """U_a for every attribute a: the columns of W_U, as rows [N, d]."""
    return weights.W_U.T


def _require_one_layer(weights: TransformerWeights) -> None:
    if weights.n_layers != 1 or weights.meta.special_tokens:
        raise InputError("the structure analyses take a one-layer single-hop model")


def residual_from_embeddings(weights: TransformerWeights, subject_vectors: np.ndarray, relations: np.ndarray,
                             hidden: bool = False):
    """Reference final residual (and optionally post-ReLU MLP activations) for prompts [e, r] whose
    subject embedding is the given vector, not a row of W_E: what the swap and transfer tests need."""
    block = weights.blocks[0]
    z = mlp_input(weights, subject_vectors, relations)
    out = z + mlp(block.mlp, z)
    if hidden:
        return out, np.maximum(z @ block.mlp.W_in + block.mlp.b_in, 0.0)
    return out


def mlp_input(weights: TransformerWeights, subject_vectors: np.ndarray, relations: np.ndarray) -> np.ndarray:
    """The last position's residual after attention, [B, d], for prompts [e, r] with the given subject vectors."""
    _require_one_layer(weights)
    N = weights.meta.N
    x = np.stack([subject_vectors, weights.W_E[N + np.asarray(relations)]], axis=1)
    if weights.W_pos is not None:
        x = x + weights.W_pos[:2]
    return x[:, -1, :] + attention(weights.blocks[0].attn, x, weights.meta.attn_scale, last_only=True)[:, 0, :]


def logits_from_embeddings(weights: TransformerWeights, subject_vectors: np.ndarray, relations: np.ndarray) -> np.ndarray:
    return residual_from_embeddings(weights, subject_vectors, relations) @ weights.W_U + weights.b_U


def _design(instance: Instance, U: np.ndarray) -> np.ndarray:
    """[N, R*d + 1]: the attribute vectors U_{f_r(s)} of each subject side by side, then a 1 for b."""
    blocks = [U[instance.facts[r]] for r in range(instance.R)]
    return np.hstack(blocks + [np.ones((instance.N, 1))])


def _ridge_solve(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    gram = X.T @ X
    lam = RIDGE * (np.trace(gram) / gram.shape[0] + 1e-300)
    return np.linalg.solve(gram + lam * np.eye(gram.shape[0]), X.T @ Y)


def _folds(N: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(rng.permutation(N), min(k, N))


def _cv_predictions(X: np.ndarray, Y: np.ndarray, folds) -> np.ndarray:
    predicted = np.empty_like(Y)
    for held in folds:
        train = np.setdiff1d(np.arange(X.shape[0]), held)
        predicted[held] = X[held] @ _ridge_solve(X[train], Y[train])
    return predicted


def _r2(Y: np.ndarray, predicted: np.ndarray) -> float:
    total = np.sum((Y - Y.mean(axis=0)) ** 2)
    return float(1 - np.sum((Y - predicted) ** 2) / total)


def superposition_fit(weights: TransformerWeights, instance: Instance, folds: int = 5, seed: int = 0) -> dict:
    """R^2 of e_s ~ b + sum_r M_r U_{f_r(s)}: in sample, cross-validated, and for a shuffled null.

    The null replaces every f_r by an independent random permutation: the same features with the
    subject-attribute pairing destroyed. Returns the fitted maps too (``maps`` [R, d, d], ``offset`` [d]).
    """
    _require_one_layer(weights)
    U, E, d = attribute_vectors(weights), weights.W_E[: instance.N], weights.d_model
    X = _design(instance, U)
    coef = _ridge_solve(X, E)
    split = _folds(instance.N, folds, np.random.default_rng([seed, FOLD_STREAM]))
    # A stream of its own: default_rng(seed) would redraw the training instance's permutations.
    shuffled = Instance.random(instance.N, instance.R, np.random.default_rng([seed, NULL_STREAM]))
    X_null = _design(shuffled, U)
    return {
        "r2_in_sample": _r2(E, X @ coef),
        "r2_cv": _r2(E, _cv_predictions(X, E, split)),
        "r2_null_cv": _r2(E, _cv_predictions(X_null, E, split)),
        "r2_null_in_sample": _r2(E, X_null @ _ridge_solve(X_null, E)),
        "features_per_subject": X.shape[1],
        "folds": len(split),
        "maps": np.stack([coef[r * d : (r + 1) * d].T for r in range(instance.R)]),
        "offset": coef[-1],
    }


def probe_accuracy(weights: TransformerWeights, instance: Instance, folds: int = 5, seed: int = 0) -> dict:
    """Held-out nearest-attribute accuracy of a linear probe e_s -> U_{f_r(s)}, per relation."""
    _require_one_layer(weights)
    U, E = attribute_vectors(weights), weights.W_E[: instance.N]
    X = np.hstack([E, np.ones((instance.N, 1))])
    split = _folds(instance.N, folds, np.random.default_rng([seed, FOLD_STREAM]))
    half_norms = 0.5 * np.sum(U**2, axis=1)
    per_relation = []
    for r in range(instance.R):
        target = instance.facts[r]
        predicted = _cv_predictions(X, U[target], split)
        decoded = np.argmax(predicted @ U.T - half_norms, axis=1)
        per_relation.append(float(np.mean(decoded == target)))
    return {"probe_accuracy": float(np.mean(per_relation)), "per_relation": per_relation, "chance": 1.0 / instance.N}


def gating_selectivity(weights: TransformerWeights, instance: Instance) -> dict:
    """How relation-specific the MLP units are, from their activations on every fact."""
    N, R = instance.N, instance.R
    subjects = np.repeat(np.arange(N), R)
    relations = np.tile(np.arange(R), N)
    _, hidden = residual_from_embeddings(weights, weights.W_E[subjects], relations, hidden=True)
    hidden = hidden.reshape(N, R, -1)
    mass = hidden.mean(axis=0)  # [R, d_mlp]
    active = (hidden > 0).reshape(N * R, -1).mean(axis=0) >= ACTIVE_RATE
    total = mass.sum(axis=0)
    share = np.divide(mass.max(axis=0), total, out=np.zeros_like(total), where=total > 0)
    n_active = int(active.sum())
    return {
        "gating_selectivity": float(np.mean(share[active] >= SELECTIVE_SHARE)) if n_active else float("nan"),
        "mean_top_relation_share": float(share[active].mean()) if n_active else float("nan"),
        "active_units": n_active,
        "units": int(hidden.shape[2]),
        "uniform_share": 1.0 / R,
    }


def causal_swap(weights: TransformerWeights, instance: Instance, maps: np.ndarray, samples: int = 500, seed: int = 0) -> dict:
    """Replace relation r's component of e_s by attribute a's, through the fitted map M_r.

    swap_success: relation r now answers a. swap_preservation: each other relation still answers
    f_{r'}(s). Sampled: ``samples`` random (s, r, a != f_r(s)) triples, seeded.
    """
    rng = np.random.default_rng([seed, SWAP_STREAM])
    N, R = instance.N, instance.R
    U = attribute_vectors(weights)
    s = rng.integers(0, N, samples)
    r = rng.integers(0, R, samples)
    a = (instance.facts[r, s] + rng.integers(1, N, samples)) % N  # uniform over a != f_r(s)
    shift = np.einsum("bij,bj->bi", maps[r], U[a] - U[instance.facts[r, s]])
    moved = weights.W_E[s] + shift
    success = np.argmax(logits_from_embeddings(weights, moved, r), axis=1) == a
    kept = []
    for other in range(R):
        mask = r != other
        if mask.any():
            answer = np.argmax(logits_from_embeddings(weights, moved[mask], np.full(mask.sum(), other)), axis=1)
            kept.append(answer == instance.facts[other, s[mask]])
    kept = np.concatenate(kept) if kept else np.ones(0, bool)
    return {"swap_success": float(success.mean()), "swap_preservation": float(kept.mean()) if kept.size else float("nan"),
            "samples": samples, "sampled": True}
