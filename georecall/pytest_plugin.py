"""The ``georecall`` pytest plugin (registered through the ``pytest11`` entry point).

Fixtures:
- ``make_instance(N, R, seed=0)``: a factory of random instances (explicit seeds);
- ``instance``: a small random instance, N = 64, R = 2, seed 0;
- ``assert_exact_recall`` and ``assert_respects_bounds``: the helpers of ``georecall.testing``.

Hypothesis strategies for instances, sizes, hop depths and codebooks: ``georecall.strategies``.
"""

from __future__ import annotations

import pytest

from georecall import testing
from theory.instance import Instance


@pytest.fixture
def make_instance():
    def make(N: int, R: int, seed: int = 0) -> Instance:
        return Instance.random(N, R, seed)

    return make


@pytest.fixture
def instance(make_instance) -> Instance:
    return make_instance(64, 2, 0)


@pytest.fixture
def assert_exact_recall():
    return testing.assert_exact_recall


@pytest.fixture
def assert_respects_bounds():
    return testing.assert_respects_bounds
