"""Frozen-embedding control and the associative-memory baseline (claims C2 and C6).

Each variant holds some weights at their random initialisation and trains the rest; the
measured quantity is the least MLP width d_mlp that reaches 100% training accuracy at a fixed
d_model, as N grows. Variants:

- ``trained``: nothing frozen (the reference point).
- ``frozen_subjects``: subject embeddings frozen at random.
- ``frozen_subjects_unembed``: subject embeddings and the unembedding (N * d parameters that could
  hold facts by themselves) frozen.
- ``associative``: every embedding and the unembedding frozen, attention fixed to a uniform
  average with identity OV, so the MLP reads e_r + (e_s + e_r)/2 and must hold every fact
  itself: a Nichani-style associative memory.
"""

from __future__ import annotations

import math

from georecall.theory.checks import InputError
from georecall.experiments.config import TrainConfig
from georecall.experiments.sweep import threshold_for_seed
from georecall.experiments.train import build_model, _Freezer

VARIANTS = {
    "trained": {"freeze": (), "fixed_attention": False},
    "frozen_subjects": {"freeze": ("subjects",), "fixed_attention": False},
    "frozen_subjects_unembed": {"freeze": ("subjects", "unembed"), "fixed_attention": False},
    "associative": {"freeze": ("subjects", "relations", "pos", "unembed"), "fixed_attention": True},
}


def trainable_parameters(config: TrainConfig) -> int:
    """Entries the optimiser may change under ``config`` (frozen row blocks of W_E excluded)."""
    model = build_model(config)
    freezer = _Freezer(model, config.freeze, config.fixed_attention)
    total = sum(p.numel() for p in freezer.trainable)
    for _, rows, value in freezer.saved:
        total -= value.numel()
    return int(total)


def width_thresholds(Ns, base: TrainConfig, variants=tuple(VARIANTS), seed: int = 0, width_max: int = 4096, progress=None) -> list[dict]:
    """Least d_mlp reaching 100% for each variant and N, with trainable parameters against facts."""
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise InputError(f"variants has unknown names {unknown}; valid names are {list(VARIANTS)}")
    rows = []
    for N in Ns:
        for name in variants:
            config = base.replace(N=N, **VARIANTS[name])
            tried = []

            def on_run(c, run):
                tried.append((c.d_mlp, run.exact))
                if progress is not None:
                    progress(f"{name} N={N} d_mlp={c.d_mlp}: {'exact' if run.exact else 'not exact'} "
                             f"(acc {run.train_accuracy:.4f}, {run.elapsed_s:.1f} s)")

            width, below = threshold_for_seed(config, seed, width_max, on_run, field="d_mlp")
            params = None if width is None else trainable_parameters(config.replace(d_mlp=width, seed=seed))
            facts = N * config.R
            rows.append({
                "variant": name, "N": N, "R": config.R, "d_model": config.d_model, "seed": seed,
                "d_mlp_star": width, "failing_d_mlp_below": below, "trainable_params": params, "facts": facts,
                "fact_bits": facts * math.log2(N), "params_per_fact": None if params is None else params / facts,
                "runs": len(tried),
            })
    return rows
