import numpy as np
import pytest

from georecall.theory import Instance
from georecall.theory.queries import SingleHopQueries


def test_random_instance_rows_are_permutations_and_seeded():
    inst = Instance.random(50, 3, seed=7)
    assert inst.facts.shape == (3, 50)
    for row in inst.facts:
        assert sorted(row.tolist()) == list(range(50))
    assert Instance.random(50, 3, seed=7) == inst
    assert Instance.random(50, 3, seed=8) != inst


def test_from_arrays_names_the_bad_row_and_value():
    with pytest.raises(ValueError, match=r"row 1 .* value 0 appears 2 times and 2 is missing"):
        Instance.from_arrays([[0, 1, 2], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"row 0 .* entry 2 is 3, outside \[0, 3\)"):
        Instance.from_arrays([[0, 1, 3]])
    with pytest.raises(ValueError, match=r"row 0 .* entry 0 is -1"):
        Instance.from_arrays([[-1, 0, 1]])


@pytest.mark.parametrize(
    "facts, message",
    [
        ([0, 1], "2-D"),
        (np.zeros((0, 3), dtype=int), "at least one row"),
        ([[0]], "N >= 2"),
        ([[0.5, 1.0]], "integers"),
        ([["a", "b"]], "integer array"),
    ],
)
def test_from_arrays_rejects_malformed_input(facts, message):
    with pytest.raises(ValueError, match=message):
        Instance.from_arrays(facts)


@pytest.mark.parametrize("N, R, name", [(1, 1, "N"), (4, 0, "R"), (2.5, 1, "N")])
def test_random_rejects_bad_sizes_naming_the_argument(N, R, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        Instance.random(N, R, seed=0)


def test_facts_are_read_only():
    inst = Instance.random(5, 2, seed=0)
    with pytest.raises(ValueError):
        inst.facts[0, 0] = 3


def test_chain_answer_composes_left_to_right():
    inst = Instance.from_arrays([[1, 2, 0], [0, 2, 1]])
    # f_1(f_0(0)) = f_1(1) = 2
    assert inst.chain_answer([0], [0, 1]).tolist() == [2]
    assert inst.answer([0, 1, 2], [0, 0, 0]).tolist() == [1, 2, 0]


def test_single_hop_queries_enumerate_every_pair_once():
    inst = Instance.random(6, 3, seed=1)
    queries = SingleHopQueries(inst)
    chunk = queries.take(np.arange(queries.total))
    pairs = {(int(s), int(t) - inst.N) for s, t in chunk.tokens}
    assert len(pairs) == 18
    for (s, tok), answer in zip(chunk.tokens, chunk.answers):
        assert answer == inst.facts[tok - inst.N, s]
    assert queries.describe(4) == {"subject": 1, "relation": 1}
