"""geometric-recall: a formal theory verifier for 'Geometric Factual Recall in Transformers'.

Notebook API::

    from georecall import Instance, build_construction, compare, tradeoff
    inst = Instance.random(N=4096, R=4, seed=0)
    model = build_construction("block", inst, codebook="binary")
    model.verify()            # RecallReport(EXACT: checked all 16,384 single_hop queries, ...)
    compare(model.spec)       # Comparison(block_superposition/binary at p=1: tight (ratio 1 ...))
    tradeoff(d=256, R=4)      # largest N per construction and bound, k = 1..6
    model.retarget(Instance.random(4096, 4, seed=1)).verify()

Gradient descent (needs PyTorch): ``from experiments.train import train``.
"""

from bounds import bounds_summary, compare, generic_min_d, max_N
from constructions import Construction, build_construction, retarget
from georecall.testing import assert_exact_recall, assert_respects_bounds
from georecall.tradeoff import plot_tradeoff, tradeoff
from theory import Instance, RecallReport, load_model, save_model, verify_single_hop
from theory.verify import verify_model

__all__ = [
    "Instance",
    "Construction",
    "RecallReport",
    "build_construction",
    "retarget",
    "verify_single_hop",
    "load_model",
    "save_model",
    "compare",
    "bounds_summary",
    "tradeoff",
    "plot_tradeoff",
    "verify_model",
    "assert_exact_recall",
    "assert_respects_bounds",
    "generic_min_d",
    "max_N",
]
