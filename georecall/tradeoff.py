"""Capacity-depth tradeoff: the largest N each construction and each bound allows at a given d.

At residual width d (d_model), precision p and R relations, for k = 1..max_hops:
- constructions: the largest d0 whose layout fits in d gives N_max = 2^{p d0} (2^p-level codes;
  the associative route needs +-1 codes, so 2^{d0});
- bounds: bounds.max_N with the subject-embedding dimension taken as d (a subject embedding
  never has more than d_model coordinates, so the bound still caps N): the largest N any generic
  model can reach. ``bound_no_cot_full_R`` is False where the count that rules out N_max + 1 has to
  drop relations (N_max + 1 < 1 + R + ... + R^{k-1}: the count with all R relations is vacuous
  there), so the cap does not follow Theorem B6's 2^{dp/R^k}; plots mark those points.
Values are log2 N_max; None where not even d0 = 1 fits.
"""

from __future__ import annotations

import math

from georecall.bounds import max_N
from georecall.bounds.generic import internal_nodes
from georecall.constructions.associative import associative_layout
from georecall.constructions.chains import chain_dimensions
from georecall.theory.checks import require_int

SERIES = {
    "chains_no_cot": "no-CoT construction (one block per chain)",
    "bound_no_cot": "no-CoT cap on N (largest N any generic model reaches)",
    "cot": "CoT construction",
    "bound_cot": "CoT cap on N (largest N any generic model reaches)",
    "partial_cot_T2": "partial CoT, T = 2 steps",
    "associative": "associative route (facts in MLPs)",
}


def _largest_d0(d_model_of, d: int) -> int | None:
    d0 = 0
    while d_model_of(d0 + 1) <= d:
        d0 += 1
        if d0 > 4096:
            break
    return d0 or None


def tradeoff(d: int, R: int, precision: int = 1, max_hops: int = 6) -> list[dict]:
    d = require_int("d", d, minimum=1)
    R = require_int("R", R, minimum=1)
    precision = require_int("precision", precision, minimum=1)
    max_hops = require_int("max_hops", max_hops, minimum=1, maximum=12)
    rows = []
    for k in range(1, max_hops + 1):
        chains = _largest_d0(lambda d0: chain_dimensions(R, d0, k, cot=False)["d_model"], d)
        cot = _largest_d0(lambda d0: chain_dimensions(R, d0, k, cot=True, cot_steps=k)["d_model"], d)
        partial = _largest_d0(lambda d0: chain_dimensions(R, d0, k, cot=True, cot_steps=min(2, k))["d_model"], d)
        assoc = _largest_d0(lambda d0: associative_layout(k, R, d0).d_model, d)
        cap = max_N(d, precision, R, k)
        rows.append({
            "k": k,
            "chains_no_cot": None if chains is None else precision * chains,
            "bound_no_cot": math.log2(cap),
            "bound_no_cot_full_R": k == 1 or cap + 1 >= internal_nodes(R, k),
            "cot": None if cot is None else precision * cot,
            "bound_cot": math.log2(max_N(d, precision, R, k, cot=True)),
            "partial_cot_T2": None if partial is None else precision * partial,
            "associative": assoc,
        })
    return rows


def plot_tradeoff(rows: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"chains_no_cot": "o-", "bound_no_cot": "o--", "cot": "s-", "bound_cot": "s--", "partial_cot_T2": "^-", "associative": "x:"}
    for key, label in SERIES.items():
        points = [(row["k"], row[key]) for row in rows if row[key] is not None and row[key] > 0]
        if points:
            ax.plot(*zip(*points), styles[key], label=label)
    reduced = [(row["k"], row["bound_no_cot"]) for row in rows if not row["bound_no_cot_full_R"] and row["bound_no_cot"] > 0]
    if reduced:  # the full-R count is vacuous at these N: the cap comes from fewer relations
        ax.plot(*zip(*reduced), "o", markersize=12, markerfacecolor="none", color="red",
                label="cap from R' < R relations (full-R count vacuous)")
    ax.set_xlabel("hops k")
    ax.set_ylabel("log2 N_max (largest number of subjects)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
