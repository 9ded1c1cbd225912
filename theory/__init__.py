"""Definitions: instances, queries, the weights container, the float64 reference model, the verifier.

Nothing in ``theory`` imports ``constructions`` or ``bounds``: dependencies point one way.
"""

from georecall.theory.instance import Instance
from georecall.theory.queries import QueryChunk, single_hop_queries, relation_token
from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights
from georecall.theory.model import forward
from georecall.theory.verdict import RecallReport
from georecall.theory.verify import verify_chain_of_thought, verify_model, verify_multi_hop, verify_queries, verify_single_hop
from georecall.theory.spec import ConstructionSpec
from georecall.theory.io import load_model, save_model

__all__ = [
    "Instance",
    "QueryChunk",
    "single_hop_queries",
    "relation_token",
    "AttentionWeights",
    "Block",
    "MLPWeights",
    "ModelMeta",
    "TransformerWeights",
    "forward",
    "RecallReport",
    "verify_single_hop",
    "verify_queries",
    "ConstructionSpec",
    "load_model",
    "save_model",
    "verify_model",
    "verify_multi_hop",
    "verify_chain_of_thought",
]
