"""Information-theoretic lower bounds (docs/theorems/bounds.md), each a sympy closed form with exact numbers.

Proofs: docs/theorems/bounds.md. Numbers come from mpmath log-gamma at 60 significant digits or
from Python integers, never from float-only arithmetic.
"""

from georecall.bounds.information import information_bits, log2_factorial, robbins_log2_factorial_bounds
from georecall.bounds.any_model import any_model_min_params
from georecall.bounds.generic import generic_min_d, internal_nodes, log2_realisable_tuples_lower, realisable_tuples_lower
from georecall.bounds.tradeoff import max_N
from georecall.bounds.compare import Comparison, compare
from georecall.bounds.summary import bounds_summary

__all__ = [
    "information_bits",
    "log2_factorial",
    "robbins_log2_factorial_bounds",
    "any_model_min_params",
    "generic_min_d",
    "internal_nodes",
    "realisable_tuples_lower",
    "log2_realisable_tuples_lower",
    "max_N",
    "Comparison",
    "compare",
    "bounds_summary",
]
