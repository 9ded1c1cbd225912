"""The paper's objects: instances of R bijections, queries, the weights container, the plain §3 forward pass, and specs.

Nothing here imports the proof engine (``georecall.verify``), the file formats
(``georecall.formats``), the constructions or the bounds: every other folder stands on this one.
"""

from georecall.theory.instance import Instance
from georecall.theory.queries import QueryChunk, single_hop_queries, relation_token
from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights
from georecall.theory.model import forward
from georecall.theory.spec import ConstructionSpec

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
    "ConstructionSpec",
]
