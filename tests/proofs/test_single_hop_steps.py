"""The algebra of docs/theorems/single_hop.md, one sympy check per proof step (the doc cites each
beside its step). A check is an identity simplified to 0, or an inequality proved for symbols
under the step's hypotheses."""

import sympy as sp

v, x, B, L = sp.symbols("v x B L", real=True)
relu = lambda e: sp.Max(e, 0)  # noqa: E731


def vec(name, n=3):
    return sp.Matrix(sp.symbols(f"{name}0:{n}", real=True))


def test_lemma0_relu_pair_passes_its_input():
    # ReLU(v) - ReLU(-v) = v for every real v: the two halves of a selector pair
    assert sp.simplify(sp.Piecewise((v, v >= 0), (0, True)) - sp.Piecewise((-v, -v >= 0), (0, True)) - v) == 0
    for value in (-3, -sp.Rational(1, 2), 0, 2):
        assert relu(value) - relu(-value) == value


def test_lemma0_completing_the_square():
    # logit_t - logit_a = 1/2 ||u_a - y||^2 - 1/2 ||u_t - y||^2 with logit_a = <u_a, y> - ||u_a||^2 / 2
    u_t, u_a, y = vec("t"), vec("a"), vec("y")
    logit = lambda u: (u.T * y)[0] - (u.T * u)[0] / 2  # noqa: E731
    difference = logit(u_t) - logit(u_a) - ((u_a - y).T * (u_a - y))[0] / 2 + ((u_t - y).T * (u_t - y))[0] / 2
    assert sp.expand(difference) == 0


def test_lemma0_unasked_unit_is_off():
    # +-m - B <= 0 whenever |m| <= B: write B = |m| + e with e >= 0 and split on the sign of m
    e = sp.Symbol("e", nonnegative=True)
    k = sp.Symbol("k", positive=True)
    for m in (k, -k, sp.Integer(0)):
        for sign in (1, -1):
            assert (sign * m - (sp.Abs(m) + e)).is_nonpositive


def test_theorem1_code_levels_differ_by_at_least_two():
    # levels 2 l - (L - 1): distinct digits l != l' give |difference| = 2 |l - l'| >= 2, squared >= 4
    l1, l2 = sp.symbols("l1 l2", integer=True)
    difference = (2 * l1 - (L - 1)) - (2 * l2 - (L - 1))
    assert sp.simplify(difference - 2 * (l1 - l2)) == 0


def test_theorem1_float64_remark_bound():
    # |<u, y>| <= d0 (L - 1)^2 and ||u||^2 / 2 <= d0 (L - 1)^2 / 2: below 2^53 at d0 = 1 for p <= 26, not at p = 27
    d0 = 1
    assert d0 * (2**26 - 1) ** 2 < 2**53 <= d0 * (2**27 - 1) ** 2


def test_theorem1_prime_circle_gap_is_half_the_squared_distance():
    # n - <v_r, v_k> = 1/2 ||v_r - v_k||^2 when ||v_r||^2 = ||v_k||^2 = n
    a, b, c, d, n = sp.symbols("a b c d n", real=True)
    gap = n - (a * c + b * d)
    half_distance = ((a - c) ** 2 + (b - d) ** 2) / 2
    assert sp.expand((gap - half_distance).subs(n, a**2 + b**2) + (c**2 + d**2 - (a**2 + b**2)) / 2) == 0


def test_theorem1_prime_unasked_select_unit_is_off():
    # +-z - B (n - <v_r, v_r*>) <= (L - 1) - B <= 0 when the gap is an integer >= 1 and B >= L - 1
    gap = sp.Symbol("g", integer=True, positive=True)
    z = sp.Symbol("z", real=True)
    pre = z - B * gap
    worst = pre.subs({z: L - 1, gap: 1})
    assert sp.simplify(worst - (L - 1 - B)) == 0
    assert all(worst.subs({L: level, B: level}) <= 0 for level in (2, 4, 16))


def test_theorem1_prime_block_sum_is_the_answer():
    # block 0 becomes u_0 + u_t - sum_r u_r; the blocks then sum to u_t
    u = sp.symbols("u0:4", real=True)
    u_t = sp.Symbol("t", real=True)
    blocks = [u[0] + u_t - sum(u)] + list(u[1:])
    assert sp.simplify(sum(blocks) - u_t) == 0


def test_theorem2_union_bound_meets_delta_at_the_ceiling():
    N, delta = sp.symbols("N delta", positive=True)
    d0 = sp.ceiling(sp.log(N * (N - 1) / (2 * delta), 2))
    # 2^ceil(x) >= 2^x, so pairs * 2^-d0 <= pairs * 2^-x = delta
    bound = N * (N - 1) / 2 * 2 ** (-sp.log(N * (N - 1) / (2 * delta), 2))
    assert sp.simplify(bound - delta) == 0
    for n_value, delta_value in ((64, sp.Rational(1, 100)), (1000, sp.Rational(1, 1000))):
        length = d0.subs({N: n_value, delta: delta_value})
        pairs = n_value * (n_value - 1) / 2
        assert pairs * sp.Integer(2) ** (-length) <= delta_value < pairs * sp.Integer(2) ** (-(length - 1))


def test_theorem3_polarisation_identity():
    # <a, b> = |a||b| / 4 (||a^ + b^||^2 - ||a^ - b^||^2) for unit a^, b^; with Q = 1 this is the identity
    a, b = vec("p"), vec("q")
    na, nb = sp.sqrt((a.T * a)[0]), sp.sqrt((b.T * b)[0])
    ah, bh = a / na, b / nb
    rhs = na * nb / 4 * (((ah + bh).T * (ah + bh))[0] - ((ah - bh).T * (ah - bh))[0])
    assert sp.simplify(rhs - (a.T * b)[0]) == 0
    # and (||a^ + b^||^2 + ||a^ - b^||^2) / 4 = 1
    assert sp.simplify((((ah + bh).T * (ah + bh))[0] + ((ah - bh).T * (ah - bh))[0]) / 4 - 1) == 0


def test_theorem3_margin_function_increases_past_c_over_2():
    h, c = sp.symbols("h c", positive=True)
    f = 2 * h - 2 * c * sp.sqrt(h)
    derivative = sp.diff(f, h)
    assert sp.simplify(derivative - (2 - c / sp.sqrt(h))) == 0
    # 2 - c / sqrt(h) > 0 iff sqrt(h) > c / 2
    assert sp.simplify(derivative.subs(h, (c / 2) ** 2)) == 0


def test_corollary31_epsilon_bound():
    # for d >= t: eps = 2 sqrt(t/d) + 2 t/d <= 4 sqrt(t/d); at d > 64 R t it is below 1/(2 sqrt(R))
    s = sp.Symbol("s", positive=True)  # s = sqrt(t/d) <= 1
    assert sp.simplify((4 * s - (2 * s + 2 * s**2)) - 2 * s * (1 - s)) == 0
    R = sp.Symbol("R", positive=True)
    assert sp.simplify(4 * sp.sqrt(1 / (64 * R)) - 1 / (2 * sp.sqrt(R))) == 0
