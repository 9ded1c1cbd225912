"""The result type every construction returns, and re-targeting to new facts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.theory.spec import ConstructionSpec
from georecall.verify.run import RecallReport
from georecall.verify.run import verify_model
from georecall.theory.weights import ModelMeta, TransformerWeights


@dataclass(frozen=True)
class Construction:
    """Built weights, their spec, the instance they answer, and how subject rows are made.

    ``subject_embeddings(instance)`` returns the [N, d_model] subject rows of W_E for any
    instance with the same N and R; the shared weights never change. That function is the
    formal content of zero-shot transfer (paper claim C5, docs/index.md): see :meth:`retarget`.
    """

    weights: TransformerWeights
    spec: ConstructionSpec
    instance: Instance
    subject_embeddings: Callable[[Instance], np.ndarray]

    def retarget(self, instance: Instance) -> "Construction":
        """The same shared weights answering ``instance``: only the subject embeddings are rebuilt."""
        if (instance.N, instance.R) != (self.instance.N, self.instance.R):
            raise InputError(
                f"retarget needs an instance with N={self.instance.N}, R={self.instance.R}; "
                f"got N={instance.N}, R={instance.R}"
            )
        weights = self.weights.with_subject_embeddings(self.subject_embeddings(instance))
        return replace(self, weights=weights, instance=instance)

    def verify(self, **options) -> RecallReport:
        """Exact-recall check of this construction on its own instance, for every query kind it answers."""
        return verify_model(self.weights, self.instance, **options)

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"Construction({s.name!r}, N={s.N}, R={s.R}, d_model={s.d_model}, d_mlp={s.d_mlp}, "
            f"guaranteed_margin={s.guaranteed_margin:.4g})"
        )


@dataclass(frozen=True)
class StreamedConstruction:
    """A construction too large to hold as float64, as the arrays of its file: ``arrays`` maps each file
    name (in TransformerWeights.named_arrays order) to an array or a RowBlocks (theory.arrays) that the
    writer takes a block at a time; ``meta`` and ``spec`` as the built weights would give them."""

    arrays: dict
    meta: ModelMeta
    spec: ConstructionSpec
    instance: Instance


def retarget(construction: Construction, instance: Instance) -> Construction:
    """Function form of :meth:`Construction.retarget`."""
    return construction.retarget(instance)
