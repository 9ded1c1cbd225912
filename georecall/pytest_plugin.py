"""The ``georecall`` pytest plugin (registered through the ``pytest11`` entry point).

Fixtures, each named with the ``georecall_`` prefix so that none clashes with a user's own:
- ``georecall_make_instance(N, R, seed=0)``: a factory of random instances (explicit seeds);
- ``georecall_instance``: a small random instance, N = 64, R = 2, seed 0;
- ``georecall_assert_exact_recall`` and ``georecall_assert_respects_bounds``: the helpers of
  ``georecall.testing``.

Like Hypothesis's own plugin, this module imports nothing heavy: numpy, sympy and the verifiers
load when a fixture is first used, so merely having the package installed costs a pytest run
nothing. Hypothesis strategies for instances, sizes, hop depths and codebooks: ``georecall.strategies``.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def georecall_make_instance():
    from georecall.theory.instance import Instance

    def make(N: int, R: int, seed: int = 0):
        return Instance.random(N, R, seed)

    return make


@pytest.fixture
def georecall_instance(georecall_make_instance):
    return georecall_make_instance(64, 2, 0)


@pytest.fixture
def georecall_assert_exact_recall():
    from georecall.testing import assert_exact_recall

    return assert_exact_recall


@pytest.fixture
def georecall_assert_respects_bounds():
    from georecall.testing import assert_respects_bounds

    return assert_respects_bounds
