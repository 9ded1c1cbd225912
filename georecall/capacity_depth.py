"""Capacity-depth tradeoff: the largest N each construction and each bound allows at a given d.

At residual width d (d_model), precision p and R relations, for k = 1..max_hops:
- constructions: the largest d0 whose layout fits in d gives N_max = 2^{p d0} (2^p-level codes;
  the associative route needs +-1 codes, so 2^{d0});
- bounds: bounds.max_N with the subject-embedding dimension taken as d (a subject embedding
  never has more than d_model coordinates, so the bound still caps N): the largest N any generic
  model can reach. ``bound_no_cot_theorem_b6`` is True exactly where Theorem B6 covers the cap
  (N_max >= I = 1 + R + ... + R^{k-1}); elsewhere the count must drop relations and the cap does
  not follow 2^{dp/R^k}; plots mark those points.
Every series key starts with ``log2_N_max_``: its values are log2 N_max, not N_max; None where not
even d0 = 1 fits.
"""

from __future__ import annotations

import math

from georecall.bounds import max_N
from georecall.bounds.generic import internal_nodes
from georecall.constructions.associative import associative_layout
from georecall.constructions.chains import chain_dimensions
from georecall.theory.checks import require_int

SERIES = {
    "log2_N_max_chains_no_cot": "no-CoT construction (one block per chain)",
    "log2_N_max_bound_no_cot": "no-CoT cap on N (largest N any generic model reaches)",
    "log2_N_max_cot": "CoT construction",
    "log2_N_max_bound_cot": "CoT cap on N (largest N any generic model reaches)",
    "log2_N_max_partial_cot_T2": "partial CoT, T = 2 steps",
    "log2_N_max_associative": "associative route (facts in MLPs)",
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
            "log2_N_max_chains_no_cot": None if chains is None else precision * chains,
            "log2_N_max_bound_no_cot": math.log2(cap),
            "bound_no_cot_theorem_b6": k == 1 or cap >= internal_nodes(R, k),  # Theorem B6's hypothesis, N_max >= I
            "log2_N_max_cot": None if cot is None else precision * cot,
            "log2_N_max_bound_cot": math.log2(max_N(d, precision, R, k, cot=True)),
            "log2_N_max_partial_cot_T2": None if partial is None else precision * partial,
            "log2_N_max_associative": assoc,
        })
    return rows


def plot_tradeoff(rows: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = dict(zip(SERIES, ("o-", "o--", "s-", "s--", "^-", "x:")))
    for key, label in SERIES.items():
        points = [(row["k"], row[key]) for row in rows if row[key] is not None and row[key] > 0]
        if points:
            ax.plot(*zip(*points), styles[key], label=label)
    reduced = [(row["k"], row["log2_N_max_bound_no_cot"]) for row in rows
               if not row["bound_no_cot_theorem_b6"] and row["log2_N_max_bound_no_cot"] > 0]
    if reduced:  # Theorem B6 does not cover these caps: N_max < I, the count drops relations
        ax.plot(*zip(*reduced), "o", markersize=12, markerfacecolor="none", color="red",
                label="N_max < 1 + R + ... + R^(k-1): outside Theorem B6")
    ax.set_xticks([row["k"] for row in rows])  # hops are whole numbers
    ax.set_xlabel("hops k")
    ax.set_ylabel("log2 N_max (largest number of subjects)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from georecall.formats.files import write_atomically

    write_atomically(path, lambda raw: fig.savefig(raw, dpi=120, format="png"))
    plt.close(fig)
