"""experiments/mechanism.py: the closed-form selector scores as gated and block-reading; a model
with random weights does not."""

import numpy as np
import pytest

pytest.importorskip("torch")

from georecall.constructions import build_construction  # noqa: E402
from georecall.experiments.mechanism import mechanism  # noqa: E402
from georecall.experiments.model import init_weights  # noqa: E402
from georecall.theory import Instance  # noqa: E402


def test_the_closed_form_selector_is_gated_and_reads_one_block_per_unit():
    instance = Instance.random(128, 4, 0)
    result = mechanism(build_construction("block", instance).weights, instance)
    assert result["active_units"] == result["units"] == 2 * 4 * 7
    assert result["fraction_single_relation"] == 1.0 and result["fraction_one_block"] == 1.0
    tuning = np.array(result["tuning"])
    assert np.all(tuning.max(axis=1) == 1.0)  # every unit fires for its relation only
    # K1' adds 2 d0 always-on cancel units: relation-blind by design
    planar = mechanism(build_construction("planar", instance).weights, instance)
    assert planar["fraction_single_relation"] == pytest.approx(4 / 5)


def test_random_weights_read_no_block_though_some_units_look_relation_specific():
    instance = Instance.random(128, 4, 0)
    for seed in range(3):
        result = mechanism(init_weights(128, 4, 32, 64, np.random.default_rng(seed)), instance)
        assert result["fraction_one_block"] == 0.0
        # the activation-mass criterion alone has a null of about 20%: a random relation row can
        # switch a unit on for one relation only. The block share is the stricter test.
        assert 0.1 < result["fraction_single_relation"] < 0.35
