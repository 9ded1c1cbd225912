"""Every bound for one (N, R, hops, p) at once: what ``georecall bounds`` prints."""

from __future__ import annotations

import math

from georecall.bounds.any_model import any_model_min_bits, any_model_min_params
from georecall.bounds.generic import generic_count, generic_min_bits, generic_min_d, internal_nodes
from georecall.bounds.information import information_bits, robbins_log2_factorial_bounds
from georecall.bounds.numbers import mp


def bounds_summary(N: int, R: int, hops: int = 1, precision: int = 1, cot: bool = False, chains: str = "exact", success: float = 1.0,
                   hops_per_step: int = 1) -> dict:
    """JSON-ready numbers (floats from 60-digit values; integers exact). ``generic_vacuous`` says
    the generic count proves nothing at this N (it needs N >= I = 1 + R' + ... + R'^{k-1} for some R')."""
    with mp():
        lower, upper = robbins_log2_factorial_bounds(N)
        count = generic_count(N, R, hops, cot, chains, hops_per_step)
        result = {
            "N": N,
            "R": R,
            "hops": hops,
            "precision": precision,
            "cot": cot,
            "hops_per_step": hops_per_step if cot else None,
            "chains": chains,
            "success": success,
            "information_bits": float(information_bits(N, R)),
            "robbins_log2_factorial": [float(lower), float(upper)],
            "any_model_min_bits": float(any_model_min_bits(N, R, success, hops, chains, cot)),
            "any_model_min_params": any_model_min_params(N, R, precision, success, hops, chains, cot),
            "generic_min_bits": float(generic_min_bits(N, R, hops, cot, chains, success, hops_per_step)),
            "generic_min_d": generic_min_d(N, R, precision, hops, cot, chains, success, hops_per_step),
            "generic_vacuous": count.vacuous,
            "generic_relations_used": None if count.vacuous else count.relations,
        }
        if hops > 1 and not cot:
            result["internal_nodes"] = internal_nodes(R, hops) if R == 1 or hops * math.log2(R) < 4096 else None
            result["cot_generic_min_d"] = generic_min_d(N, R, precision, hops, True, chains, success)
    return result
