"""Per-query classes of every path, and the differential check against the oracle (tests/test_edges.py)."""

from __future__ import annotations

import numpy as np

from georecall.verify.conforming import conforming_prediction
from georecall.theory.queries import MultiHopQueries, SingleHopQueries
from georecall.verify.verdict import FAILURE, FRAGILE, ROBUST, UNPROVEN
from georecall.verify.run import verify_model

PATHS = ("auto", "certify", "fast", "reference", "torch", "exact")
NAMES = {ROBUST: "robust", FRAGILE: "fragile", UNPROVEN: "unproven", FAILURE: "failure"}


def query_classes(report, total: int) -> np.ndarray:
    """Every query's class, read off a report that lists all its offenders (max_listed >= total)."""
    classes = np.full(total, ROBUST, dtype=np.int8)
    for cls, listed in ((FRAGILE, report.first_fragile), (UNPROVEN, report.first_unproven), (FAILURE, report.first_failures)):
        assert len(listed) == getattr(report, {FRAGILE: "fragile", UNPROVEN: "unproven", FAILURE: "failures"}[cls])
        for offender in listed:
            classes[offender["query"]] = cls
    return classes


def query_set(weights, instance):
    """The queries a single-hop or (exact-chain) multi-hop file declares."""
    if "multi_hop" in weights.meta.query_kinds:
        return MultiHopQueries(instance, weights.meta.extra["hops"])
    return SingleHopQueries(instance)


def classes_by_path(weights, instance, paths=PATHS, **options) -> dict:
    """{path: per-query classes} for a single-hop or multi-hop file, every path it can run."""
    total = query_set(weights, instance).total
    found = {}
    for path in paths:
        if path == "fast" and weights.n_layers != 1:
            continue  # the fast paths (single hop, and chains: verify.sequence) are one-layer only
        forward = None
        if path == "torch":
            from georecall.verify.torch_path import TorchForward

            forward = TorchForward(weights)
        report = verify_model(weights, instance, path=path, forward=forward, max_listed=total, **options)
        found[path] = query_classes(report, total)
    return found


def assert_no_path_beats_the_oracle(weights, instance, classes: dict, draws: int = 3, seed: int = 0) -> None:
    """Every path against the exact path's classes: robust only where the oracle proves robust,
    a failure only where it proves failure, fragile only where it proves correct; and a robust
    query comes out right in random conforming evaluations."""
    truth = classes["exact"]
    queries = query_set(weights, instance)
    queries = queries.take(np.arange(queries.total))
    rng = np.random.default_rng(seed)
    for path, found in classes.items():
        for q, (mine, true) in enumerate(zip(found, truth)):
            where = f"path {path}, query {q}: {NAMES[int(mine)]} where the oracle says {NAMES[int(true)]}"
            if mine == ROBUST:
                assert true == ROBUST, where
            elif mine == FAILURE:
                assert true == FAILURE, where
            elif mine == FRAGILE:
                assert true in (ROBUST, FRAGILE), where
    for q in np.flatnonzero(truth == ROBUST):
        for _ in range(draws):
            predicted = conforming_prediction(weights, queries.tokens[q], rng)
            assert predicted == queries.answers[q], f"query {q}: robust, but a conforming evaluation predicts {predicted}"
