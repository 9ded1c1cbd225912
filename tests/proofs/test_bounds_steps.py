"""The algebra of docs/theorems/bounds.md and the routing lemma of multi_hop.md, one sympy check
per proof step (the docs cite each beside its step)."""

import math

import sympy as sp

from georecall.bounds.generic import internal_nodes, tuple_count

n = sp.Symbol("n", positive=True, integer=True)
R, k = sp.symbols("R k", positive=True, integer=True)


def test_robbins_difference_of_d_n():
    # d_n = ln n! - (n + 1/2) ln n + n  =>  d_n - d_{n+1} = (n + 1/2) ln((n+1)/n) - 1
    d = lambda m: sp.log(sp.factorial(m)) - (m + sp.Rational(1, 2)) * sp.log(m) + m  # noqa: E731
    difference = sp.expand_log(sp.expand_func(d(n) - d(n + 1)), force=True)
    target = sp.expand_log((n + sp.Rational(1, 2)) * sp.log((n + 1) / n) - 1, force=True)
    assert sp.simplify(difference - target) == 0


def test_robbins_substitution_x_is_one_over_2n_plus_1():
    x = 1 / (2 * n + 1)
    assert sp.simplify((1 + x) / (1 - x) - (n + 1) / n) == 0
    assert sp.simplify((n + sp.Rational(1, 2)) * 2 * x - 1) == 0  # (n + 1/2) * 2x = 1: the series starts at x^2


def test_robbins_upper_step_telescopes():
    x = 1 / (2 * n + 1)
    assert sp.simplify(sp.Rational(1, 3) * x**2 / (1 - x**2) - (1 / (12 * n) - 1 / (12 * (n + 1)))) == 0


def test_robbins_lower_step_compares():
    # (x^2/3) / (1 - x^2/3) > 1/(12n + 1) - 1/(12(n+1) + 1) for n >= 1
    x = 1 / (2 * n + 1)
    gap = sp.together(x**2 / 3 / (1 - x**2 / 3) - (1 / (12 * n + 1) - 1 / (12 * (n + 1) + 1)))
    numerator, denominator = sp.fraction(gap)
    m = sp.Symbol("m", nonnegative=True)  # n = m + 1 >= 1: a polynomial in m with positive coefficients is positive
    for part in (numerator, denominator):
        coefficients = sp.Poly(sp.expand(part.subs(n, m + 1)), m).all_coeffs()
        assert all(c >= 0 for c in coefficients) and coefficients[-1] > 0
    assert sp.expand(numerator) == 24 * n - 11


def test_lemma_b4_node_counts():
    # I = 1 + R + ... + R^{k-1}, J = 1 + ... + R^{k-2}, L = R^{k-1}: J + L = I, and the r-ending
    # internal nodes (depths 1..k-1) number J
    I = (R**k - 1) / (R - 1)  # noqa: E741
    J = (R ** (k - 1) - 1) / (R - 1)
    assert sp.simplify(J + R ** (k - 1) - I) == 0
    ending_in_r = sum(R ** (j - 1) for j in range(1, 5))  # depths 1..4 of a depth-5 tree
    assert sp.simplify(ending_in_r - J.subs(k, 5)) == 0
    for r in (1, 2, 3):
        for depth in (1, 2, 5):
            assert internal_nodes(r, depth) == sum(r**j for j in range(depth))


def test_lemma_b4_factor_bounds_give_theorem_b6():
    # every factor of [(N - J)_L]^R lies in [N - I + 1, N]: so M log(N - I + 1) <= log |T| <= M log N
    for N, r, depth in ((40, 2, 3), (200, 3, 2), (1000, 2, 4)):
        count = tuple_count(N, r, depth)
        M = r**depth
        log_count = float(count.log2())
        assert M * math.log2(N - internal_nodes(r, depth) + 1) <= log_count + 1e-9
        assert log_count <= M * math.log2(N)


def test_lemma_b4_prime_depth_step():
    # m' = R^{k+1} >= 2 R^k when R >= 2, so m' (1/2) log N >= R^k log N
    assert sp.simplify(R ** (k + 1) - R * R**k) == 0
    assert all(r ** (j + 1) >= 2 * r**j for r in range(2, 6) for j in range(1, 6))
    # M' = R + ... + R^{k+1} = R (1 + M) >= 2 M with M = R + ... + R^k
    for r in range(2, 6):
        for j in range(1, 6):
            M = sum(r**i for i in range(1, j + 1))
            assert sum(r**i for i in range(1, j + 2)) == r * (1 + M) >= 2 * M
    # the smallest factor at depth k+1: J' + L' = (1 + ... + R^{k-1}) + R^k = 1 + ... + R^k = S - R^{k+1}, not S
    geometric = lambda top: (R ** (top + 1) - 1) / (R - 1)  # noqa: E731 (1 + R + ... + R^top)
    J, L, S = geometric(k - 1), R**k, geometric(k + 1)
    assert sp.simplify(J + L - geometric(k)) == 0
    assert sp.simplify(S - (J + L) - R ** (k + 1)) == 0
    assert sp.simplify(J + L - S) != 0  # the old text's "N - J - L + 1 = N - S + 1" is false
    for r in range(2, 5):
        for j in range(1, 5):
            assert sum(r**i for i in range(j)) + r**j == sum(r**i for i in range(j + 1)) < sum(r**i for i in range(j + 2))


def test_lemma_b2_prime_identity_relation_recovers_every_other_map():
    """Lemma B2': with f_0 = id, the chain (r, 0, ..., 0) of length k answers f_r(s), through the
    project's own chain semantics; so distinct f_1..f_{R-1} give distinct k-hop functions, and
    any_model_min_bits counts at least (R - 1) log2 N!."""
    import itertools
    import math

    import numpy as np

    from georecall.bounds.any_model import any_model_min_bits
    from georecall.theory.instance import Instance
    from georecall.theory.queries import MultiHopQueries, follow_chains

    N, R, depth = 3, 2, 3
    functions = set()
    for perm in itertools.permutations(range(N)):
        instance = Instance.from_arrays(np.array([range(N), perm]))
        subjects = np.arange(N)
        for chain in ((1,) + (0,) * (depth - 1), (0,) * (depth - 1) + (1,)):
            assert list(follow_chains(instance, subjects, np.tile(chain, (N, 1)))) == list(perm)
        queries = MultiHopQueries(instance, depth)
        functions.add(tuple(queries.take(np.arange(queries.total)).answers))
    assert len(functions) == math.factorial(N) ** (R - 1)  # injective in f_1
    # the identity matters: with f_0 a transposition, the chain (1, 0, 0) is f_0 o f_0 o f_1 = f_1, but (1, 0) is not
    twisted = Instance.from_arrays(np.array([[1, 0, 2], [2, 0, 1]]))
    assert list(follow_chains(twisted, np.arange(N), np.tile((1, 0), (N, 1)))) != [2, 0, 1]
    assert float(any_model_min_bits(N, R, 1.0, depth, "exact")) >= (R - 1) * math.log2(math.factorial(N)) - 1e-9


def test_lemma_4_0_missing_weight():
    # the weight missing from the routed position: m e^-b / (1 + m e^-b) <= m e^-b
    m, b = sp.symbols("m b", positive=True)
    missing = 1 - 1 / (1 + m * sp.exp(-b))
    assert sp.simplify(missing - m * sp.exp(-b) / (1 + m * sp.exp(-b))) == 0
    assert sp.simplify(m * sp.exp(-b) - missing - (m * sp.exp(-b)) ** 2 / (1 + m * sp.exp(-b))) == 0  # the gap is >= 0


def test_theorem4_margin_after_routing_error():
    # 1/2 D^2 - 2 sqrt(d0) eps D at D >= 2 is >= 2 - 4 sqrt(d0) eps when 2 sqrt(d0) eps <= 2
    D, c = sp.symbols("D c", nonnegative=True)  # c = 2 sqrt(d0) eps
    gap = D**2 / 2 - c * D
    assert sp.simplify(gap.subs(D, 2) - (2 - 2 * c)) == 0
    assert sp.simplify(sp.diff(gap, D) - (D - c)) == 0  # increasing for D >= c, so D = 2 is the worst when c <= 2
