"""The PyTorch verification backend: the reference forward pass in float64 on CPU or CUDA.

It plugs into the reference verifier as its ``margins_fn``, so chunking, sampling, failure
lists and the report are the reference code's; only the forward pass and the margin arithmetic
run in torch. float64 only: no margin bound for float32 is proven in this project, so a
float32 verdict could not be called exact (docs/theorems/certificate.md covers only float64).
Tests hold it to the reference on the same inputs (verdict, failures, margins within 1e-9).
"""

from __future__ import annotations

import numpy as np
import torch

from experiments.model import TorchTransformer
from experiments.train import resolve_device
from theory.instance import Instance
from theory.verify_multi_hop import verify_model
from theory.weights import TransformerWeights


class TorchMargins:
    """``margins_fn`` for theory.verify: (margins, best other token) of a chunk, computed in torch."""

    def __init__(self, weights: TransformerWeights, device: str = "cpu"):
        self.weights = weights
        self.device = resolve_device(device)
        self.model = TorchTransformer(weights, dtype=torch.float64, device=self.device)
        self.model.requires_grad_(False)

    @torch.no_grad()
    def __call__(self, weights: TransformerWeights, tokens: np.ndarray, answers: np.ndarray):
        if weights is not self.weights:
            raise ValueError("TorchMargins was built for other weights")
        logits = self.model(torch.as_tensor(tokens, device=self.device))
        index = torch.as_tensor(answers, device=self.device)[:, None]
        target = logits.gather(1, index)[:, 0]
        logits.scatter_(1, index, float("-inf"))
        best = logits.max(dim=1)
        return (target - best.values).cpu().numpy(), best.indices.cpu().numpy()


def verify_model_torch(weights: TransformerWeights, instance: Instance, device: str = "cpu", **options):
    """``theory.verify_multi_hop.verify_model`` with the torch backend; the report says which path ran."""
    report = verify_model(weights, instance, margins_fn=TorchMargins(weights, device), **options)
    report.details = {**report.details, "path": f"torch_{device}_float64"}
    return report
