"""The torch model against the float64 reference, conversions, config validation, threshold search."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from georecall.constructions import build_construction
from georecall.experiments.config import TrainConfig
from georecall.experiments.model import TorchTransformer, init_weights
from georecall.experiments.sweep import smallest_passing
from georecall.strategies import instances
from helpers import random_weights
from georecall.theory.instance import Instance
from georecall.theory.model import forward
from georecall.theory.queries import MultiHopQueries, SingleHopQueries


def all_tokens(instance):
    queries = SingleHopQueries(instance)
    return queries.take(np.arange(queries.total)).tokens


def torch_logits(weights, tokens, dtype=torch.float64):
    with torch.no_grad():
        return TorchTransformer(weights, dtype=dtype)(torch.as_tensor(tokens)).numpy()


@given(instances(max_N=48, max_R=4), st.integers(1, 12), st.integers(1, 20), st.integers(0, 2**16))
def test_float64_torch_logits_equal_the_reference_on_fresh_initialisations(instance, d, d_mlp, seed):
    weights = init_weights(instance.N, instance.R, d, d_mlp, np.random.default_rng(seed))
    tokens = all_tokens(instance)
    np.testing.assert_allclose(torch_logits(weights, tokens), forward(weights, tokens), rtol=0, atol=1e-10)


def test_multi_layer_multi_head_models_agree_too():
    weights = random_weights(N=7, R=3, layers=2, heads=2, d_head=3, special=("sep",))
    tokens = np.random.default_rng(0).integers(0, weights.meta.d_vocab_in, size=(40, 4))
    np.testing.assert_allclose(torch_logits(weights, tokens), forward(weights, tokens), rtol=0, atol=1e-9)


def test_a_two_hop_construction_keeps_exact_recall_in_torch():
    instance = Instance.random(32, 2, seed=3)
    model = build_construction("chains", instance, hops=2)
    queries = MultiHopQueries(instance, 2)
    chunk = queries.take(np.arange(queries.total))
    logits = torch_logits(model.weights, chunk.tokens)
    np.testing.assert_allclose(logits, forward(model.weights, chunk.tokens), rtol=0, atol=1e-9)
    assert np.array_equal(logits.argmax(axis=1), chunk.answers)


def test_float32_logits_are_close_to_the_reference():
    instance = Instance.random(64, 2, seed=0)
    weights = init_weights(64, 2, 16, 32, np.random.default_rng(1))
    tokens = all_tokens(instance)
    reference = forward(weights, tokens)
    np.testing.assert_allclose(torch_logits(weights, tokens, torch.float32), reference, rtol=1e-4, atol=1e-4)


def test_conversion_round_trip_is_exact_in_float64():
    weights = random_weights(N=9, R=2, layers=2)
    back = TorchTransformer(weights, dtype=torch.float64).to_weights()
    for name, array in weights.named_arrays().items():
        assert np.array_equal(back.named_arrays()[name], array), name
    assert back.meta == weights.meta


def test_a_perturbed_parameter_is_seen_by_the_comparison():
    # The agreement tests above must be able to fail: change one torch entry and the logits differ.
    instance = Instance.random(16, 2, seed=0)
    weights = init_weights(16, 2, 8, 8, np.random.default_rng(0))
    model = TorchTransformer(weights, dtype=torch.float64)
    with torch.no_grad():
        model.param("blocks.0.mlp.W_out")[0, 0] += 1.0
        model.param("blocks.0.mlp.b_in")[0] = 10.0
        changed = model(torch.as_tensor(all_tokens(instance))).numpy()
    assert np.abs(changed - forward(weights, all_tokens(instance))).max() > 1e-3


@pytest.mark.parametrize(
    "changes, word",
    [({"N": 1}, "N"), ({"d_model": 0}, "d_model"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"),
     ({"weight_decay": -1}, "weight_decay"), ({"freeze": ("everything",)}, "freeze"), ({"dtype": "float16"}, "dtype"),
     ({"device": "tpu"}, "device"), ({"n_heads": 3}, "n_heads"), ({"embed_init_scale": 0}, "embed_init_scale")],
)
def test_config_rejects_bad_values_naming_the_argument(changes, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**{"N": 8, "R": 1, "d_model": 4, "d_mlp": 4, **changes})


def test_config_round_trips_through_json(tmp_path):
    config = TrainConfig(N=8, R=2, d_model=4, d_mlp=4, freeze=("subjects",), weight_decay=0.1)
    config.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == config
    data = json.loads((tmp_path / "config.json").read_text())
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_json_dict({**data, "colour": "red"})


@given(st.integers(1, 300), st.integers(1, 300))
def test_smallest_passing_finds_a_monotone_threshold(threshold, maximum):
    calls = []

    def passes(v):
        calls.append(v)
        return v >= threshold

    found, below = smallest_passing(passes, maximum)
    if threshold <= maximum:
        assert (found, below) == (threshold, threshold - 1)
    else:
        assert found is None and below == maximum
    assert len(calls) <= 2 * maximum.bit_length() + 2
