"""The selector looked at directly (issue 14, deliverable 3): per-unit relation tuning, and whether
each active unit reads one relation's attributes.

- ``tuning``: [units, R] mean post-ReLU activation over every subject, for prompts asking each
  relation, normalised per unit; a gated selector unit has one non-zero entry.
- ``block_shares``: for each active unit, its pre-activation on the prompts of its top relation is
  regressed on the attribute codes U_{f_r'(s)} of every relation r' (the features of the
  superposition fit: the best linear change of basis to relation blocks). ``share[r']`` is the
  variance the r' block explains, over the sum for all blocks. A unit of the closed-form selector
  reads one block: share 1 on its relation.
"""

from __future__ import annotations

import numpy as np

from georecall.experiments.analysis import ACTIVE_RATE, _ridge_solve, attribute_vectors, mlp_input
from georecall.theory.instance import Instance
from georecall.theory.weights import TransformerWeights

ONE_BLOCK_SHARE = 0.9  # a unit "lies in one relation's block" when that block explains >= 90% of its variance


def _activations(weights: TransformerWeights, instance: Instance) -> tuple[np.ndarray, np.ndarray]:
    """(pre-activations, post-ReLU activations), each [N, R, units]."""
    N, R = instance.N, instance.R
    subjects, relations = np.repeat(np.arange(N), R), np.tile(np.arange(R), N)
    mlp = weights.blocks[0].mlp
    pre = (mlp_input(weights, weights.W_E[subjects], relations) @ mlp.W_in + mlp.b_in).reshape(N, R, -1)
    return pre, np.maximum(pre, 0.0)


def mechanism(weights: TransformerWeights, instance: Instance) -> dict:
    """Tuning curves, top relations and block shares of every active unit (JSON-ready lists)."""
    N, R = instance.N, instance.R
    pre, post = _activations(weights, instance)
    mass = post.mean(axis=0).T  # [units, R]
    active = (post > 0).reshape(N * R, -1).mean(axis=0) >= ACTIVE_RATE
    total = mass.sum(axis=1, keepdims=True)
    tuning = np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    top = mass.argmax(axis=1)
    U = attribute_vectors(weights)
    blocks = [U[instance.facts[r]] for r in range(R)]  # [N, d] each: relation r's attribute codes per subject
    X = np.hstack(blocks + [np.ones((N, 1))])
    d = U.shape[1]
    shares = np.full((mass.shape[0], R), np.nan)
    for unit in np.flatnonzero(active):
        y = pre[:, top[unit], unit]
        coef = _ridge_solve(X, y[:, None])[:, 0]
        parts = np.array([np.var(blocks[r] @ coef[r * d : (r + 1) * d]) for r in range(R)])
        if parts.sum() > 0:
            shares[unit] = parts / parts.sum()
    own = np.array([shares[u, top[u]] for u in range(len(top))])
    one_block = active & (own >= ONE_BLOCK_SHARE)
    return {
        "units": int(mass.shape[0]),
        "active_units": int(active.sum()),
        "tuning": tuning.tolist(),
        "top_relation": top.tolist(),
        "active": active.tolist(),
        "block_share_of_top_relation": [None if np.isnan(v) else float(v) for v in own],
        "fraction_one_block": float(one_block.sum() / max(1, active.sum())),
        "fraction_single_relation": float(np.mean(tuning[active].max(axis=1) >= ONE_BLOCK_SHARE)) if active.any() else float("nan"),
    }


def plot_mechanisms(named: dict, path: str) -> None:
    """One column per model: tuning heatmap (active units sorted by top relation) above a histogram
    of the top relation's block share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(named), figsize=(4 * len(named), 7), squeeze=False)
    for column, (title, result) in enumerate(named.items()):
        tuning = np.array(result["tuning"])
        active = np.array(result["active"])
        order = [u for u in np.argsort(np.array(result["top_relation"]), kind="stable") if active[u]]
        axes[0, column].imshow(tuning[order], aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        axes[0, column].set(title=f"{title}\n{result['fraction_single_relation']:.0%} single-relation units",
                            xlabel="relation asked", ylabel=f"active units ({len(order)})")
        shares = [s for s, a in zip(result["block_share_of_top_relation"], active) if a and s is not None]
        axes[1, column].hist(shares, bins=np.linspace(0, 1, 21), color="tab:blue")
        axes[1, column].set(title=f"{result['fraction_one_block']:.0%} read one relation's block (share >= {ONE_BLOCK_SHARE})",
                            xlabel="variance share of the top relation's attributes", ylabel="units")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
