"""geometric-recall: a formal theory verifier for 'Geometric Factual Recall in Transformers'.

Notebook API::

    from georecall import Instance, build_construction, compare, tradeoff
    inst = Instance.random(N=4096, R=4, seed=0)
    model = build_construction("block", inst, codebook="binary")
    model.verify()            # RecallReport(EXACT: checked all 16,384 single_hop queries, ...)
    compare(model.spec)       # Comparison(block_superposition/binary at p=1: tight (ratio 1 ...))
    tradeoff(d=256, R=4)      # log2 of the largest N per construction and bound (keys log2_N_max_*), k = 1..6
    model.retarget(Instance.random(4096, 4, seed=1)).verify()

Gradient descent (needs PyTorch): ``from georecall.experiments.train import train``.
"""

import importlib

# Names resolve on first use (PEP 562): `import georecall` (the command line, the pytest plugin)
# does not pay for sympy and matplotlib unless the bounds or the plots are asked for.
_HOMES = {
    "bounds_summary": "georecall.bounds", "compare": "georecall.bounds", "generic_min_d": "georecall.bounds", "max_N": "georecall.bounds",
    "Construction": "georecall.constructions", "build_construction": "georecall.constructions", "retarget": "georecall.constructions",
    "assert_exact_recall": "georecall.testing", "assert_respects_bounds": "georecall.testing",
    "plot_tradeoff": "georecall.capacity_depth", "tradeoff": "georecall.capacity_depth",
    "Instance": "georecall.theory", "RecallReport": "georecall.verify", "load_model": "georecall.formats", "save_model": "georecall.formats",
    "verify_single_hop": "georecall.verify", "verify_model": "georecall.verify",
}


def __getattr__(name):
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'georecall' has no attribute {name!r}")

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
