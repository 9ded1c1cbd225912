"""The sympy symbols every closed form uses; substitute into the *_EXPR expressions with these."""

import sympy as sp

N = sp.Symbol("N", positive=True, integer=True)  # subjects
R = sp.Symbol("R", positive=True, integer=True)  # relations
k = sp.Symbol("k", positive=True, integer=True)  # hops
p = sp.Symbol("p", positive=True, integer=True)  # bits per stored number
success = sp.Symbol("q", positive=True)  # the probability a model is exact on a random instance (1 - the failure probability delta)
