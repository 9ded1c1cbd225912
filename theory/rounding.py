"""Rigorous float64 error bounds: the radius rules of docs/theorems/soundness.md.

Every intermediate quantity of the forward pass is carried as a *center* (what this evaluation
computed) and a componentwise *radius* rho, with the guarantee (Lemma S2) that the exact real
value and the value of every conforming float64 evaluation (docs/FORMAT.md §3, any summation
order, any association of products, FMA or not) both lie within center +- rho. The rules:

    stage_radius(U, C, m)   a multilinear stage (Lemma S1): (U - C) + 8 gamma_m U,
                            U = the stage on upper magnitudes |center| + rho, C = on |center|
    softmax_radius          Lemma S3: A_hat (e^{2 eta} - 1)
    logit_radius            Cauchy-Schwarz on the unembedding: O(1) per logit (Lemma S4)

``BoundedForward`` applies them layer by layer to any model (numpy, or torch through ``ops``).
The bounds are computed in float64 themselves; every rule inflates by a factor that covers its
own rounding, and adds TINY (2^-1000) to absorb underflow. A NaN anywhere in a radius makes it
NaN, which no comparison passes: such a query is never called robust.
"""

from __future__ import annotations

import numpy as np
from georecall.theory.checks import InputError

UNIT_ROUNDOFF = 2.0**-53
# Assumption on the platform's exp/expm1 (IEEE-754 does not fix it): relative error <= 2^-49
# (16 ulp). glibc and numpy's SIMD exp are within 4 ulp.
EXP_RELATIVE_ERROR = 2.0**-49
TINY = 2.0**-1000  # > the underflow error of any stage here (at most 2^-1074 per rounding, < 2^70 roundings)
INFLATE = 1.0 + 2.0**-50  # covers the roundings of a rule's own arithmetic (each <= 2^-53 relative)
SOFTMAX_ETA_LIMIT = 0.25  # beyond it the pattern radius is the trivial 1 + 2^-40
PATTERN_RADIUS_CAP = 1.0 + 2.0**-40


def overflow_is_a_verdict(function):
    """Run ``function`` with numpy's overflow/invalid warnings off: a NaN or inf in a query's
    computation is a failure of that query (rule N, docs/theorems/soundness.md), not a warning."""
    import functools

    @functools.wraps(function)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return function(*args, **kwargs)

    return quiet


def gamma(n: int) -> float:
    """Higham's gamma_n = n u / (1 - n u), the bound on |prod_{i<=n} (1 + delta_i) - 1|."""
    nu = n * UNIT_ROUNDOFF
    if not nu < 0.25:
        raise InputError(f"a stage with {n} roundings is beyond the error model (n u must be < 1/4)")
    return nu / (1.0 - nu)


# Rounding depths (Lemma S1): an upper bound on the roundings on the path of any monomial of a
# stage, for the §3 order and for the fast single-hop order alike; doubled for headroom.
def score_depth(d_model: int, d_head: int) -> int:
    return 2 * (2 * d_model + d_head + 2)


def attention_output_depth(d_model: int, n_heads: int, d_head: int, seq_len: int) -> int:
    return 2 * (d_model + seq_len + n_heads * d_head + d_head + 2 * n_heads + 2)


def mlp_in_depth(d_model: int) -> int:
    return 2 * (d_model + 1)


def mlp_out_depth(d_mlp: int) -> int:
    return 2 * (d_mlp + 2)


def logit_depth(d_model: int) -> int:
    return 2 * (d_model + 2)


def stage_radius(upper, center, depth: int, ops=None):
    """Radius of a multilinear stage from its upper (|c| + rho) and center (|c|) magnitude twins."""
    ops = ops or NUMPY
    return ops.relu(upper - center) * INFLATE + (8.0 * gamma(depth)) * upper + TINY


def softmax_radius(pattern, scores, scores_radius, allowed, ops=None):
    """Radius of each attention weight (Lemma S3); 0 where the causal mask excludes the key.

    ``scores`` and ``scores_radius`` are [..., T] with ``allowed`` broadcastable to them; the
    pattern is the §3 softmax of ``scores`` computed by this evaluation.
    """
    ops = ops or NUMPY
    T = scores.shape[-1]
    masked_radius = ops.where(allowed, scores_radius, 0.0)
    rho = ops.amax(masked_radius, -1)[..., None]
    top = ops.amax(ops.where(allowed, scores, -np.inf), -1)[..., None]
    spread = ops.amax(ops.where(allowed, top - scores, 0.0), -1)[..., None]
    kappa = UNIT_ROUNDOFF * (spread + 2.0 * rho)
    eta = (2.0 * rho + 2.0 * kappa + 4.0 * EXP_RELATIVE_ERROR + 2.0 * gamma(T + 1)) * INFLATE
    grow = ops.expm1(2.0 * eta) * (1.0 + 2.0**-40)
    radius = pattern * grow + TINY
    radius = ops.where(eta <= SOFTMAX_ETA_LIMIT, radius, PATTERN_RADIUS_CAP)
    return ops.where(allowed, radius, 0.0)


def norm_up(values, ops=None):
    """An upper bound on the Euclidean norm of each row (last axis)."""
    ops = ops or NUMPY
    n = values.shape[-1]
    if isinstance(values, np.ndarray):  # no squared temporary
        return np.sqrt(np.einsum("...i,...i->...", values, values)) * (1.0 + gamma(n + 2))
    return ops.sqrt(ops.sum(values * values, -1)) * (1.0 + gamma(n + 2))


def logit_radius(residual_radius_norm, residual_upper_norm, column_norm, bias_abs, d_model: int, any_evaluation: bool = False):
    """Radius of a logit x . w_a + b_a (Lemma S4) from norm bounds; broadcasting.

    With ``any_evaluation`` it bounds |any conforming evaluation - exact value| instead of the
    distance to this evaluation's center: the residual term doubles.
    """
    spread = (2.0 if any_evaluation else 1.0) * residual_radius_norm * column_norm * INFLATE
    return spread + 8.0 * gamma(logit_depth(d_model)) * (residual_upper_norm * column_norm + bias_abs) + TINY


class NumpyOps:
    """The array operations the bound rules use; experiments.torch_verify supplies the torch twin."""

    @staticmethod
    def relu(x):
        return np.maximum(x, 0.0)

    @staticmethod
    def where(mask, a, b):
        return np.where(mask, a, b)

    @staticmethod
    def amax(x, axis):
        return np.max(x, axis=axis)

    @staticmethod
    def sum(x, axis):
        return np.sum(x, axis=axis)

    @staticmethod
    def expm1(x):
        return np.expm1(x)

    @staticmethod
    def exp(x):
        return np.exp(x)

    @staticmethod
    def sqrt(x):
        return np.sqrt(x)

    @staticmethod
    def abs(x):
        return np.abs(x)

    @staticmethod
    def einsum(spec, *arrays):
        return np.einsum(spec, *arrays, optimize=True)

    @staticmethod
    def all_finite(x, axes):
        return np.all(np.isfinite(x), axis=axes)

    @staticmethod
    def arange(n):
        return np.arange(n)


NUMPY = NumpyOps()
