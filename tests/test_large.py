"""Large sizes: minutes of CPU, so marked slow and left out of CI (run with -m slow)."""

import pytest

from georecall.constructions import build_construction
from georecall.theory import Instance


@pytest.mark.slow
def test_exhaustive_verification_at_N65536_R8_in_bounded_memory():
    instance = Instance.random(65536, 8, seed=0)
    model = build_construction("block", instance, codebook="binary")
    report = model.verify(memory_budget_bytes=64 * 2**20)
    assert report.exhaustive and report.queries == 65536 * 8
    assert report.exact_recall and report.min_margin == 2.0
    assert report.chunk_size * 2 * 65536 * 8 <= 64 * 2**20
