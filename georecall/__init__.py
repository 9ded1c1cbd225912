"""geometric-recall: a formal theory verifier for 'Geometric Factual Recall in Transformers'.

Notebook API::

    from georecall import Instance, build_construction, verify_single_hop
    inst = Instance.random(N=4096, R=4, seed=0)
    model = build_construction("block", inst, codebook="binary")
    model.verify()            # RecallReport(EXACT: checked all 16,384 single_hop queries, ...)
    model.retarget(Instance.random(4096, 4, seed=1)).verify()
"""

from bounds import compare, generic_min_d, max_N
from constructions import Construction, build_construction, retarget
from theory import Instance, RecallReport, load_model, save_model, verify_single_hop

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
    "generic_min_d",
    "max_N",
]
