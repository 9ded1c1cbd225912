"""Every bound for one (N, R, hops, p) at once: what ``georecall bounds`` prints."""

from __future__ import annotations

from georecall.bounds.any_model import any_model_min_bits, any_model_min_params
from georecall.bounds.generic import generic_min_bits, generic_min_d, internal_nodes, log2_realisable_tuples_lower
from georecall.bounds.information import information_bits, robbins_log2_factorial_bounds
from georecall.bounds.numbers import mp


def bounds_summary(N: int, R: int, hops: int = 1, precision: int = 1, cot: bool = False, chains: str = "exact", delta: float = 1.0) -> dict:
    """JSON-ready numbers (floats from 60-digit values; integers exact)."""
    with mp():
        lower, upper = robbins_log2_factorial_bounds(N)
        result = {
            "N": N,
            "R": R,
            "hops": hops,
            "precision": precision,
            "cot": cot,
            "chains": chains,
            "delta": delta,
            "information_bits": float(information_bits(N, R)),
            "robbins_log2_factorial": [float(lower), float(upper)],
            "any_model_min_bits": float(any_model_min_bits(N, R, delta)),
            "any_model_min_params": any_model_min_params(N, R, precision, delta),
            "generic_min_bits": float(generic_min_bits(N, R, hops, cot, chains, delta)),
            "generic_min_d": generic_min_d(N, R, precision, hops, cot, chains, delta),
        }
        if hops > 1 and not cot:
            result["internal_nodes"] = internal_nodes(R, hops)
            result["log2_realisable_tuples_lower"] = float(log2_realisable_tuples_lower(N, R, hops, chains))
            result["cot_generic_min_d"] = generic_min_d(N, R, precision, hops, True, chains, delta)
    return result
