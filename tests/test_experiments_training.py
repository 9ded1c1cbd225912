"""Training, the structure analyses and transfer: small honest runs (seconds each on 2 cores)."""

import json

import numpy as np
import pytest

from georecall.constructions import build_construction
from georecall.experiments.analysis import causal_swap, gating_selectivity, probe_accuracy, superposition_fit
from georecall.experiments.config import TrainConfig
from georecall.experiments.controls import VARIANTS, trainable_parameters
from georecall.experiments.model import init_weights
from georecall.experiments.train import train
from georecall.experiments.transfer import fitted_map_embeddings, inversion_embeddings, transfer_experiment, zero_shot_accuracy
from georecall.cli import main
from georecall.theory.instance import Instance
from georecall.formats.containers import load_model
from georecall.verify.run import verify_single_hop

SMALL = TrainConfig(N=64, R=2, d_model=16, d_mlp=64, steps=1500)
# Small init and weight decay: the regime where the superposition forms (results/training/README.md).
STRUCTURED = TrainConfig(N=256, R=2, d_model=16, d_mlp=64, steps=600, embed_init_scale=0.1, weight_decay=0.1, stop_margin=0)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(SMALL, out=out), out


@pytest.fixture(scope="module")
def structured_run():
    return train(STRUCTURED)


def test_training_reaches_exact_recall_well_above_the_threshold(small_run):
    run, _ = small_run
    assert run.train_accuracy == 1.0 and run.min_margin >= SMALL.stop_margin
    report = verify_single_hop(run.weights, run.instance)  # the float64 reference agrees
    assert report.exact_recall and report.exhaustive
    assert report.min_margin == pytest.approx(run.min_margin, rel=1e-4, abs=1e-4)


def test_a_run_writes_config_metrics_and_a_verifiable_weights_file(small_run, capsys):
    run, out = small_run
    assert TrainConfig.load(out / "config.json") == SMALL
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines] == [e["step"] for e in run.history]
    assert lines[-1]["train_accuracy"] == 1.0 and lines[0]["step"] == 0
    loaded = load_model(out / "model.npz")
    assert loaded.instance == run.instance and loaded.spec.name == "trained"
    assert not loaded.spec.fact_independent_shared
    assert main(["verify", str(out / "model.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exact_recall"] is True


def test_too_small_a_model_does_not_reach_exact_recall():
    run = train(SMALL.replace(d_model=1, steps=100))
    assert not run.exact and run.train_accuracy < 1.0
    assert not verify_single_hop(run.weights, run.instance).exact_recall


def test_training_is_deterministic_for_a_seed_on_cpu():
    config = SMALL.replace(steps=60, stop_margin=0, batch_size=50)
    first, second = train(config), train(config)
    for name, array in first.weights.named_arrays().items():
        assert np.array_equal(array, second.weights.named_arrays()[name]), name
    other = train(config.replace(seed=1))
    assert not np.array_equal(other.weights.W_E, first.weights.W_E)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_frozen_groups_stay_at_their_initial_values_even_with_weight_decay(variant):
    config = SMALL.replace(steps=20, stop_margin=0, weight_decay=0.5, **VARIANTS[variant])
    start = train(config.replace(steps=0)).weights
    end = train(config).weights
    N = config.N
    frozen = set(config.freeze) | ({"attn"} if config.fixed_attention else set())
    same = lambda a, b: np.array_equal(a, b)  # noqa: E731
    assert same(start.W_E[:N], end.W_E[:N]) == ("subjects" in frozen)
    assert same(start.W_E[N:], end.W_E[N:]) == ("relations" in frozen)
    assert same(start.W_U, end.W_U) == ("unembed" in frozen)
    assert same(start.blocks[0].attn.W_Q, end.blocks[0].attn.W_Q) == ("attn" in frozen)
    assert not same(start.blocks[0].mlp.W_in, end.blocks[0].mlp.W_in)
    assert trainable_parameters(config) < trainable_parameters(SMALL) or variant == "trained"


# --- the analyses on a closed-form construction: every metric must be perfect (positive control)


@pytest.fixture(scope="module")
def construction():
    instance = Instance.random(256, 2, seed=0)
    return build_construction("block", instance), instance


def test_analyses_score_the_block_construction_perfectly(construction):
    model, instance = construction
    fit = superposition_fit(model.weights, instance)
    assert fit["r2_cv"] > 1 - 1e-9 and fit["r2_null_cv"] < 0.1
    assert probe_accuracy(model.weights, instance)["probe_accuracy"] == 1.0
    assert gating_selectivity(model.weights, instance)["gating_selectivity"] == 1.0
    swap = causal_swap(model.weights, instance, fit["maps"])
    assert swap["swap_success"] == 1.0 and swap["swap_preservation"] == 1.0
    new = Instance.random(256, 2, seed=9)
    for embeddings in (fitted_map_embeddings(model.weights, instance, new, fit), inversion_embeddings(model.weights, instance, new)):
        assert zero_shot_accuracy(model.weights.with_subject_embeddings(embeddings), new) == 1.0


def test_analyses_find_no_structure_in_an_untrained_model():
    # Negative control: random weights have no superposition, no probe, no working swap.
    instance = Instance.random(256, 2, seed=0)
    weights = init_weights(256, 2, 16, 64, np.random.default_rng(0))
    fit = superposition_fit(weights, instance)
    assert fit["r2_cv"] < 0.1
    assert probe_accuracy(weights, instance)["probe_accuracy"] < 0.05
    assert causal_swap(weights, instance, fit["maps"])["swap_success"] < 0.05


# --- the trained model: measured structure, asserted against nulls and chance


def test_trained_superposition_clearly_beats_the_shuffled_null(structured_run):
    fit = superposition_fit(structured_run.weights, structured_run.instance)
    assert structured_run.exact
    assert fit["r2_cv"] >= 0.6 and fit["r2_null_cv"] <= 0.0
    assert fit["r2_cv"] - fit["r2_null_cv"] >= 0.6


def test_trained_probes_decode_far_above_chance(structured_run):
    probes = probe_accuracy(structured_run.weights, structured_run.instance)
    assert probes["probe_accuracy"] >= 20 / structured_run.config.N


def test_transfer_accuracy_is_far_above_chance(structured_run):
    result = transfer_experiment(structured_run.weights, structured_run.instance, structured_run.config, steps=50)
    chance = result["chance"]
    assert result["reinits"]["fitted_map"]["zero_shot_accuracy"] >= 10 * chance
    assert result["reinits"]["random"]["zero_shot_accuracy"] <= 5 * chance


def test_georecall_train_json_has_every_documented_key(tmp_path, capsys):
    code = main(["train", "--N", "32", "--R", "2", "--d", "12", "--steps", "400", "--transfer-steps", "20",
                 "--out", str(tmp_path / "run"), "--json"])
    tmp_path = tmp_path / "run"
    summary = json.loads(capsys.readouterr().out)
    assert code == (0 if summary["train_accuracy"] == 1.0 else 1)
    for key in ("train_accuracy", "superposition_r2", "probe_accuracy", "transfer_accuracy", "gating_selectivity", "swap_success"):
        assert isinstance(summary[key], float), key
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert sorted(p.name for p in tmp_path.iterdir()) == [".georecall-run", "config.json", "metrics.jsonl", "model.npz", "summary.json"]


def test_georecall_train_rejects_bad_input_with_exit_2(capsys):
    assert main(["train", "--N", "1"]) == 2
    assert "--N must be in 2.." in capsys.readouterr().err
    assert main(["train", "--freeze", "all"]) == 2
    assert "freeze" in capsys.readouterr().err


def test_a_run_killed_in_an_old_folder_never_leaves_the_old_model_beside_the_new_config(tmp_path):
    import json

    import pytest

    from georecall.constructions import build_construction
    from georecall.experiments.config import TrainConfig
    from georecall.experiments.train import train
    from georecall.theory import Instance
    from georecall.formats.containers import save_model

    old = build_construction("block", Instance.random(16, 2, 0))
    save_model(tmp_path / "model.npz", old.weights, old.instance)
    (tmp_path / "config.json").write_text("{}")

    def killed(step, steps):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(N=16, R=2, d_model=8, d_mlp=16, steps=50, seed=0), out=tmp_path, progress=killed)
    assert not (tmp_path / "model.npz").exists()
    assert json.loads((tmp_path / "config.json").read_text())["N"] == 16


def test_georecall_train_replaces_its_folder_as_a_whole_or_not_at_all(tmp_path, monkeypatch):
    import pytest

    from georecall.experiments import cli_support
    from georecall.experiments.config import TrainConfig

    out = tmp_path / "run"
    config = TrainConfig(N=16, R=2, d_model=8, d_mlp=16, steps=20, seed=0)
    cli_support.train_and_analyse(config, out, 0, False, None)
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(first) == {".georecall-run", "config.json", "metrics.jsonl", "model.npz", "summary.json"}

    def killed(*args, **kwargs):  # killed after the new model is written, before the swap
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_support, "analyse", killed)
    with pytest.raises(KeyboardInterrupt):
        cli_support.train_and_analyse(TrainConfig(N=16, R=2, d_model=8, d_mlp=16, steps=30, seed=1), out, 0, True, None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # the old run, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # and no staging folder left behind
    monkeypatch.undo()
    cli_support.train_and_analyse(TrainConfig(N=16, R=2, d_model=8, d_mlp=16, steps=30, seed=1), out, 0, False, None)
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert json.loads((out / "summary.json").read_text())["files"]["model.npz"] == str(out / "model.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_two_instances_share_one_mlp_and_both_are_exact():
    from georecall.experiments.config import TrainConfig
    from georecall.experiments.multi_instance import shared_weights_agree, train_multi_instance
    from georecall.verify.run import verify_single_hop

    config = TrainConfig(N=32, R=2, d_model=16, d_mlp=32, steps=3000, seed=0, embed_init_scale=0.1, weight_decay=0.1)
    run = train_multi_instance(config, M=2)
    assert run.instances[0].facts.tolist() != run.instances[1].facts.tolist()  # two different instances
    assert run.accuracy == [1.0, 1.0] and shared_weights_agree(run)
    for m in range(2):  # each instance's model, shared weights plus its own table, is exact under the verifier
        assert verify_single_hop(run.weights(m), run.instances[m]).exact_recall
    # the shared weights are not one instance's lookup table: the other table answers the other facts only
    swapped = run.weights(0).with_subject_embeddings(run.weights(1).W_E[:32])
    assert not verify_single_hop(swapped, run.instances[0]).exact_recall


def test_train_defaults_are_the_regime_its_help_names():
    from georecall.cli import make_parser

    parser = make_parser()
    args = parser.parse_args(["train"])
    assert (args.init_scale, args.weight_decay, args.d_mlp) == (0.1, 0.5, 256)
    sub = next(a for a in parser._actions if a.dest == "command" or getattr(a, "choices", None) and "train" in a.choices)
    description = " ".join(sub.choices["train"].description.split())
    assert "init scale 0.1, weight decay 0.5 and d_mlp 256" in description
    sweep = parser.parse_args(["sweep", "--out", "x"])  # the published thresholds' protocol is unchanged
    assert (sweep.init_scale, sweep.weight_decay, sweep.d_mlp) == (1.0, 0.0, 64)


@pytest.mark.slow
def test_the_default_train_regime_meets_the_superposition_target(tmp_path):
    """Issue 14's acceptance run (about a minute): defaults at N 1024, R 4, d 32, seed 0 are exact with R^2 >= 0.8."""
    from georecall.formats.containers import load_model

    out = tmp_path / "run"
    assert main(["train", "--N", "1024", "--R", "4", "--d", "32", "--seed", "0", "--no-analysis", "--out", str(out)]) == 0
    model = load_model(out / "model.npz")
    assert superposition_fit(model.weights, model.instance)["r2_cv"] >= 0.8
