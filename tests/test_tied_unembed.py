"""The tied-attributes regime (issue 14): W_U = W_E[:N]^T, an answer's code is its entity's own embedding."""

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from georecall.experiments.config import TrainConfig  # noqa: E402
from georecall.theory.checks import InputError  # noqa: E402
from georecall.verify.run import verify_single_hop  # noqa: E402

TIED = TrainConfig(N=32, R=2, d_model=16, d_mlp=32, steps=2000, seed=0, embed_init_scale=0.1, weight_decay=0.1, tie_unembed=True)


def test_tied_training_keeps_W_U_equal_to_the_subject_rows_and_is_exact():
    from georecall.experiments.train import train

    run = train(TIED)
    weights = run.weights
    assert np.array_equal(weights.W_U, weights.W_E[:32].T)
    assert run.exact and verify_single_hop(weights, run.instance).exact_recall
    # the tie is what the model reads: untie it (W_U back at its initial random value) and recall breaks
    untied = run.model.param("W_U").detach().double().numpy()
    assert not np.allclose(untied, weights.W_U)
    assert not verify_single_hop(replace(weights, W_U=untied), run.instance).exact_recall


def test_tied_multi_instance_reads_each_instance_against_its_own_table():
    from georecall.experiments.multi_instance import shared_weights_agree, train_multi_instance

    run = train_multi_instance(TIED, M=2)
    assert run.accuracy == [1.0, 1.0] and shared_weights_agree(run)
    for m in range(2):
        weights = run.weights(m)
        assert np.array_equal(weights.W_U, weights.W_E[:32].T)
        assert verify_single_hop(weights, run.instances[m]).exact_recall
    assert not np.array_equal(run.weights(0).W_U, run.weights(1).W_U)


def test_tied_transfer_retrains_the_table_and_its_codebook_together():
    from georecall.experiments.train import train
    from georecall.experiments.transfer import transfer_experiment

    run = train(TIED)
    result = transfer_experiment(run.weights, run.instance, TIED, steps=50, reinits=("random",))
    assert 0.0 <= result["reinits"]["random"]["zero_shot_accuracy"] <= 1.0
    assert result["reinits"]["random"]["final_accuracy"] > result["reinits"]["random"]["zero_shot_accuracy"]


def test_freezing_the_unembedding_of_a_tied_model_is_refused_by_name():
    with pytest.raises(InputError, match="freeze 'unembed' contradicts tie_unembed"):
        TIED.replace(freeze=("unembed",))


def test_cli_refuses_a_frozen_tied_unembedding_with_exit_2_and_one_line(capsys):
    from georecall.cli import main

    assert main(["train", "--N", "8", "--R", "2", "--d", "4", "--tie-unembed", "--freeze", "unembed", "--no-analysis"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tie_unembed" in err


def test_embedding_only_training_frees_W_U_only_when_it_is_the_table():
    untied = TIED.replace(tie_unembed=False)
    assert "unembed" in untied.embedding_only_freeze() and "subjects" not in untied.embedding_only_freeze()
    assert "unembed" not in TIED.embedding_only_freeze() and "mlp" in TIED.embedding_only_freeze()
    TIED.replace(freeze=TIED.embedding_only_freeze())  # a valid config: the tie is never frozen apart from its table
