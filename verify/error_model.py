"""The float64 error model: the radius rules of docs/theorems/soundness.md, each in one place.

Every intermediate quantity of the forward pass is carried as a *center* (what this evaluation
computed) and a componentwise *radius* rho, with the guarantee (invariant I) that the exact real
value and the value of every conforming float64 evaluation (docs/FORMAT.md §3, any summation
order, any association of a stage's products, FMA or not) both lie within center +- rho,
provided that evaluation overflows nowhere. The rules:

    stage_radius(U, C, m, G)   a multilinear stage (Lemma S1): (U - C) + 8 gamma_m U, plus the
                               underflow of its inner products carried through the later factors
                               (chain_underflow, from the magnitude product G of the stage's chains)
    in_range(G)                the envelope rule (Lemma S1): no intermediate of any association
                               of a stage overflows when its magnitude product G < OVERFLOW_LIMIT
    softmax_radius             Lemma S3: A_hat (e^{2 eta} - 1)
    norm_up                    Lemma S5: a Euclidean norm that cannot underflow to 0 or overflow
    logit_radius               Cauchy-Schwarz on the unembedding: O(1) per logit (Lemma S4)

The bounds are computed in float64 themselves; every rule inflates by a factor that covers its
own rounding. A NaN or inf anywhere in a radius makes it NaN or inf, which no comparison
passes: such a query is never called robust, and goes to the exact oracle (verify.exact).
"""

from __future__ import annotations

import numpy as np
from georecall.theory.checks import InputError

UNIT_ROUNDOFF = 2.0**-53
# Assumption on the platform's exp/expm1 (IEEE-754 does not fix it): relative error <= 2^-49
# (16 ulp). glibc and numpy's SIMD exp are within 4 ulp.
EXP_RELATIVE_ERROR = 2.0**-49
# |eta| <= 2^PRODUCT_UNDERFLOW_EXPONENT for one rounded product or FMA whose result lies below
# 2^-1022 (sums: eta = 0). 2^-1075 is half the smallest subnormal: not a float64, so only the
# exponent is kept (as a float it would round to 0).
PRODUCT_UNDERFLOW_EXPONENT = -1075
TINY = 2.0**-1000  # an absolute floor each rule adds once: covers the underflow of the rule's own arithmetic
OVERFLOW_LIMIT = 2.0**1020  # an envelope below it: no intermediate of any conforming evaluation reaches 2^1024
INFLATE = 1.0 + 2.0**-50  # covers the roundings of a rule's own arithmetic (each <= 2^-53 relative)
SOFTMAX_ETA_LIMIT = 0.25  # beyond it the pattern radius is the trivial 1 + 2^-40
PATTERN_RADIUS_CAP = 1.0 + 2.0**-40
_NORM_SAFE_SQUARES = 2.0**-900  # a sum of squares at least this large lost at most 2^-135 of itself to underflow


def overflow_is_a_verdict(function):
    """Run ``function`` with numpy's floating-point warnings off: a NaN or inf in a query's
    computation sends that query to the exact oracle (docs/theorems/soundness.md, rule O); it is
    a finding about the weights, not a warning."""
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


# ---- Lemma S1: chains of products, their underflow and their envelope -----------------------
# A stage is a sum of chains M_1 M_2 ... M_k (a query row first, stored weights after; a scalar
# such as attn_scale or an attention weight may sit anywhere). Its magnitude product is
# G = prod_i mu_i with mu_i >= 1 bounding the factor's row sums (as a prefix) and column sums (as
# a suffix): mu = max(1, ||M||_inf, ||M||_1), only ||.||_inf for the first factor and only ||.||_1
# for the last. Then every entry of every sub-product, and every partial sum of one, is at most G
# in magnitude, and an underflow error at a product node reaches the output multiplied by at
# most G (docs/theorems/soundness.md, Lemma S1).

def magnitude(matrix: np.ndarray, role: str = "inner") -> np.ndarray:
    """mu of a stored factor, upper-rounded: [..] over the leading axes of a [.., rows, cols] array.

    role "first": max row sum (||.||_inf); "last": max column sum (||.||_1); "inner": both.
    """
    absolute = np.abs(matrix)
    with np.errstate(over="ignore"):  # an infinite magnitude is a finding: out of range (in_range)
        rows = absolute.sum(axis=-1).max(axis=-1, initial=0.0) * (1.0 + gamma(matrix.shape[-1] + 1))
        cols = absolute.sum(axis=-2).max(axis=-1, initial=0.0) * (1.0 + gamma(matrix.shape[-2] + 1))
        both = np.maximum(rows, cols)
    chosen = {"first": rows, "last": cols, "inner": both}[role]
    return np.maximum(chosen, 1.0)


def head_magnitudes(attn, mlp) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per head, the magnitude products of a one-layer block's weight chains: the scores' W_Q W_K^T,
    the values' W_V W_O into the residual (W_O last), and W_V W_O W_in into the MLP (W_in last)."""
    with np.errstate(over="ignore"):  # an infinite magnitude is a finding: out of range (in_range)
        return (magnitude(attn.W_Q) * magnitude(attn.W_K), magnitude(attn.W_V) * magnitude(attn.W_O, "last"),
                magnitude(attn.W_V) * magnitude(attn.W_O) * magnitude(mlp.W_in, "last"))


def row_magnitude(upper, ops=None):
    """mu of query rows (a first factor): max(1, sum of upper magnitudes), per row (last axis)."""
    ops = ops or NUMPY
    n = upper.shape[-1]
    return ops.maximum(ops.sum(upper, -1) * (1.0 + gamma(n + 1)), 1.0)


def chain_underflow(G, nodes: int, width: int):
    """Lemma S1's underflow term for chains of magnitude product G: 4 * nodes * width * 2^-1075 * G.

    ``nodes``: product nodes of one chain (its length - 1, a movable scalar counted); ``width``:
    the largest inner dimension, so a node's entry carries at most ``width`` underflow errors.
    Four copies: this evaluation, any other, and the U and C twins the radius is computed from.
    Computed as (G 2^-1000)(4 nodes width 2^-75) so that no factor is subnormal.
    """
    return (G * 2.0**-1000) * (4.0 * nodes * width * 2.0 ** (PRODUCT_UNDERFLOW_EXPONENT + 1000)) * INFLATE


def in_range(G, ops=None):
    """True where magnitude products G keep every intermediate below 2^1024 (NaN: False)."""
    return G * INFLATE < OVERFLOW_LIMIT


def stage_radius(upper, center, depth: int, underflow=0.0, ops=None):
    """Radius of a multilinear stage from its upper (|c| + rho) and center (|c|) magnitude twins
    and its ``chain_underflow`` term (Lemma S1)."""
    ops = ops or NUMPY
    return ops.relu(upper - center) * INFLATE + (8.0 * gamma(depth)) * upper + underflow + TINY


def softmax_radius(pattern, scores, scores_radius, allowed, ops=None):
    """Radius of each attention weight (Lemmas S3 and S3'); 0 where the causal mask excludes the key.

    ``scores`` and ``scores_radius`` are [..., T] with ``allowed`` broadcastable to them; the
    pattern is the §3 softmax of ``scores`` computed by this evaluation. Lemma S3 bounds each
    weight relatively, Lemma S3' by the others' radii: the weights of a row sum to 1 (exactly, or
    within 2 gamma_{T+1} in float64), so a weight near 1 moves no more than the rest together.
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
    radius = ops.where(allowed, radius, 0.0)
    others = (ops.sum(radius, -1)[..., None] - radius) * INFLATE + 4.0 * gamma(T + 1) + TINY  # Lemma S3'
    return ops.where(allowed, ops.maximum(ops.where(others < radius, others, radius), 0.0), 0.0)


def norm_up(values, ops=None):
    """An upper bound on the Euclidean norm of each row (last axis) that never underflows to 0
    nor overflows for finite rows (Lemma S5).

    Plain sum of squares where it is at least 2^-900 and finite (then squares lost to underflow
    are below 2^-135 of it); elsewhere the row is scaled by the power of two above its largest
    entry first, as LAPACK's dnrm2 does, so that no square over- or underflows.
    """
    ops = ops or NUMPY
    n = values.shape[-1]
    grow = (1.0 + gamma(n + 2)) * INFLATE
    if isinstance(values, np.ndarray):
        squares = np.einsum("...i,...i->...", values, values)  # no squared temporary
    else:
        squares = ops.sum(values * values, -1)
    norms = ops.sqrt(squares) * grow
    doubtful = ~(squares >= _NORM_SAFE_SQUARES) | ~(squares < np.inf)
    if bool(doubtful.any()):
        if isinstance(values, np.ndarray):
            if np.ndim(squares) == 0:
                norms = _scaled_norm(values) * grow + 2.0**-1074
            else:  # the doubtful rows only, and a zero row is 0 without scaling (all of them where radii are 0)
                every = bool(doubtful.all())
                rows = values if every else values[doubtful]
                nonzero = rows.any(axis=-1)
                fixed = np.full(nonzero.shape, 2.0**-1074)
                if bool(nonzero.any()):
                    fixed[nonzero] = _scaled_norm(rows[nonzero]) * grow + 2.0**-1074
                if every:
                    norms = fixed
                else:
                    norms[doubtful] = fixed
        else:  # another array library (torch): the rare doubtful rows are redone in numpy
            import torch

            rows = torch.nonzero(doubtful, as_tuple=True)
            fixed = _scaled_norm(values[rows].detach().cpu().numpy()) * grow + 2.0**-1074
            norms = norms.clone()
            norms[rows] = torch.as_tensor(fixed, dtype=norms.dtype, device=norms.device)
    return norms


def _scaled_norm(values: np.ndarray) -> np.ndarray:
    """sqrt(sum v^2) as 2^k sqrt(sum (v 2^-k)^2), 2^k > max |v| (each scaling exact; a product
    rounded into the subnormal range is covered by the caller's + 2^-1074); 0 rows give 0."""
    largest = np.max(np.abs(values), axis=-1, initial=0.0)
    exponent = np.frexp(largest)[1]  # largest < 2^exponent
    scaled = np.ldexp(values, -exponent[..., None])
    return np.ldexp(np.sqrt(np.einsum("...i,...i->...", scaled, scaled)), exponent)


def logit_radius(residual_radius_norm, residual_upper_norm, column_norm, bias_abs, d_model: int, any_evaluation: bool = False):
    """Radius of a logit x . w_a + b_a (Lemma S4) from norm bounds; broadcasting.

    With ``any_evaluation`` it bounds |any conforming evaluation - exact value| instead of the
    distance to this evaluation's center: the residual term doubles. The logit stage's products
    have no later factor, so their underflow (d 2^-1075 each way) is inside TINY.
    """
    spread = (2.0 if any_evaluation else 1.0) * residual_radius_norm * column_norm * INFLATE
    return spread + 8.0 * gamma(logit_depth(d_model)) * (residual_upper_norm * column_norm + bias_abs) + TINY


class NumpyOps:
    """The array operations the bound rules use; verify.torch_path supplies the torch twin."""

    @staticmethod
    def relu(x):
        return np.maximum(x, 0.0)

    @staticmethod
    def maximum(x, y):
        return np.maximum(x, y)

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
    def permute(x, axes):
        return np.transpose(x, axes)

    @staticmethod
    def all_finite(x, axes):
        return np.all(np.isfinite(x), axis=axes)

    @staticmethod
    def arange(n):
        return np.arange(n)


NUMPY = NumpyOps()
