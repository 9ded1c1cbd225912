"""The PyTorch verification backend: the bounded forward pass in float64 on CPU or CUDA.

``TorchForward`` is verify.reference.BoundedForward running on torch tensors: the same radius
rules (docs/theorems/soundness.md), the same §3 operations, only the array library differs. It
plugs into the one verdict engine (verify.run / verify.verdict), so chunking, sampling,
classes, exact re-decision and the report are the reference code's. float64 only: the error
model (u = 2^-53) is proven for float64, so a float32 verdict could not be called exact.
Tests hold it to the reference on the same inputs.
"""

from __future__ import annotations

import numpy as np
import torch

from georecall.theory.checks import InputError
from georecall.verify.reference import BoundedForward, MarginBatch
from georecall.theory.instance import Instance
from georecall.verify.run import verify_model
from georecall.theory.weights import TransformerWeights


def resolve_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but torch.cuda.is_available() is False; use --device cpu")
    return torch.device(device)


class TorchOps:
    """verify.error_model.NumpyOps for torch tensors."""

    def __init__(self, device: torch.device):
        self.device = device

    def _tensor(self, value, like=None):
        if isinstance(value, torch.Tensor):
            return value
        dtype = torch.bool if isinstance(value, np.ndarray) and value.dtype == bool else torch.float64
        return torch.as_tensor(value, dtype=dtype, device=self.device)

    def relu(self, x):
        return torch.clamp(x, min=0.0)

    def maximum(self, x, y):
        return torch.maximum(self._tensor(x), self._tensor(y))

    def where(self, mask, a, b):
        return torch.where(self._tensor(mask), self._tensor(a), self._tensor(b))

    def amax(self, x, axis):
        return torch.amax(x, dim=axis)

    def sum(self, x, axis):
        return torch.sum(x, dim=axis)

    def expm1(self, x):
        return torch.expm1(x)

    def exp(self, x):
        return torch.exp(x)

    def sqrt(self, x):
        return torch.sqrt(x)

    def abs(self, x):
        return torch.abs(x)

    def permute(self, x, axes):
        return x.permute(*axes)

    def all_finite(self, x, axes):
        return torch.isfinite(x).flatten(1).all(dim=1) if len(axes) > 1 else torch.isfinite(x).all(dim=axes[0])

    def arange(self, n):
        return torch.arange(n, device=self.device)


class TorchForward(BoundedForward):
    """``forward.margins(tokens, answers)`` for the verdict engine, computed in torch float64."""

    def __init__(self, weights: TransformerWeights, device: str = "cpu"):
        from georecall.verify.reach import refuse_brute_force_out_of_reach, refuse_device_copy_out_of_reach

        refuse_device_copy_out_of_reach(weights)  # before the copies (np.asarray widens a narrow W_E whole), and any device
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            refuse_brute_force_out_of_reach(weights, "torch")
        super().__init__(weights, ops=TorchOps(self.device),
                         convert=lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64, device=self.device))
        self.path = f"torch_{self.device.type}_float64"

    @torch.no_grad()
    def margins(self, tokens: np.ndarray, answers: np.ndarray) -> MarginBatch:
        return super().margins(torch.as_tensor(tokens, device=self.device), torch.as_tensor(answers, device=self.device))


def verify_model_torch(weights: TransformerWeights, instance: Instance, device: str = "cpu", **options):
    """``verify.run.verify_model`` on the torch backend for every query kind; details.path says so."""
    return verify_model(weights, instance, path="torch", forward=TorchForward(weights, device), **options)
