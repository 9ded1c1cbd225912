import json
import subprocess
import sys

import numpy as np
import pytest

from georecall.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_build_then_verify_json(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    code, out, _ = run(capsys, "build", "--N", "300", "--R", "3", "--codebook", "multilevel", "--precision", "2", "--out", path, "--json")
    assert code == 0 and json.loads(out)["spec"]["d_model"] == 3 * 5 + 3 + 5
    code, out, _ = run(capsys, "verify", path, "--json")
    report = json.loads(out)
    assert code == 0
    assert {"exact_recall", "queries", "failures", "min_margin", "exhaustive"} <= report.keys()
    assert report["exact_recall"] is True and report["queries"] == 900 and report["exhaustive"] is True
    assert report["failures"] == 0 and report["min_margin"] == 2.0


def test_verify_exits_1_on_tampered_weights(tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert run(capsys, "build", "--N", "64", "--R", "2", "--out", str(path))[0] == 0
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["W_E"][5, :6] *= -1  # flip subject 5's relation-0 code
    np.savez(tmp_path / "bad.npz", **arrays)
    code, out, _ = run(capsys, "verify", str(tmp_path / "bad.npz"), "--json")
    report = json.loads(out)
    assert code == 1 and not report["exact_recall"] and report["failures"] == 1
    assert report["first_failures"][0]["subject"] == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (["build", "--N", "1", "--out", "x.npz"], "--N must be in 2.."),
        (["build", "--R", "0", "--out", "x.npz"], "--R must be in 1.."),
        (["build", "--N", "ten", "--out", "x.npz"], "--N must be an integer"),
        (["build", "--construction", "lookup", "--out", "x.npz"], "argument --construction: invalid choice"),
        (["build", "--codebook", "gray", "--out", "x.npz"], "argument --codebook: invalid choice"),
        (["build", "--precision", "3", "--out", "x.npz"], "--precision does not apply to --construction block with --codebook binary"),
        (["build", "--d", "30", "--out", "x.npz"], "--d does not apply"),
        (["build", "--delta", "0.1", "--out", "x.npz"], "--delta does not apply"),
        (["build", "--seed", "-5", "--out", "x.npz"], "--seed must be in 0..1,099,511,627,776, got -5"),
        (["verify", "missing.npz"], "does not exist"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_nan_and_malformed_files_exit_2(tmp_path, capsys):
    path = tmp_path / "m.npz"
    run(capsys, "build", "--N", "16", "--R", "2", "--out", str(path))
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["W_U"][0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    (tmp_path / "junk.npz").write_bytes(b"\x00garbage")
    for name, message in (("nan.npz", "non-finite"), ("junk.npz", "not a readable")):
        code, _, err = run(capsys, "verify", str(tmp_path / name))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_check_json_reports_every_case_exact(capsys):
    code, out, _ = run(capsys, "check", "--json")
    result = json.loads(out)
    assert code == 0 and result["all_exact"] is True
    assert {row["construction"].split("/")[0] for row in result["rows"]} == {
        "block_superposition", "block_superposition_planar", "shared_space", "multi_hop_chains", "chain_of_thought", "partial_chain_of_thought", "associative_multi_hop"}
    assert all(row["exhaustive"] for row in result["rows"])
    single = [row for row in result["rows"] if row["construction"].split("/")[0] in ("block_superposition", "block_superposition_planar", "shared_space")]
    assert all(row["queries"] == row["N"] * row["R"] for row in single)


def test_installed_entry_point_runs_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "georecall.cli", "build", "--N", "1", "--out", str(tmp_path / "x.npz")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == "georecall: error: georecall build: --N must be in 2..1,099,511,627,776, got 1"


def test_sizes_reports_the_block_formula(capsys):
    code, out, _ = run(capsys, "sizes", "--N", "256", "--R", "4", "--json")
    rows = {row["construction"]: row for row in json.loads(out)["rows"]}
    assert code == 0
    assert rows["K1 block/binary"]["d_model"] == 4 * 8 + 4 + 8
    assert rows["K1 block/multilevel p=4"]["d_model"] == 4 * 2 + 4 + 2
    assert rows["K2 shared-space/binary"]["d_model"] == rows["K2 shared-space/binary"]["subject_dim"] + 4 + 8


def test_threshold_measures_below_the_proven_d(capsys):
    code, out, _ = run(capsys, "threshold", "--N", "16", "--R", "2", "--seeds", "2", "--json")
    (row,) = json.loads(out)["rows"]
    assert code == 0 and 1 <= row["measured_d"] <= row["proven_d"]
    assert row["failing_d_below"] == row["measured_d"] - 1 or row["failing_d_below"] is None


def test_bounds_json_keys_and_values(capsys):
    code, out, _ = run(capsys, "bounds", "--N", "256", "--R", "4", "--hops", "1", "--precision", "1", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["generic_min_d"] == 32 and data["any_model_min_params"] == 4 * 1684
    assert data["information_bits"] == pytest.approx(4 * 1683.996723)
    code, out, _ = run(capsys, "bounds", "--N", "4096", "--R", "4", "--hops", "2", "--d", "64", "--json")
    data = json.loads(out)
    assert data["cot_generic_min_d"] == 48 and data["generic_min_d"] == 192 and data["max_N_at_d"] == 18
    # Lemma B4 at k = 2, R = 4: |T| >= [(N - 1)_4]^4, so N = 19 needs more than 64 bits and N = 18 does not
    assert (18 * 17 * 16 * 15) ** 4 > 2**64 >= (17 * 16 * 15 * 14) ** 4


def test_compare_weights_file_and_hand_made_spec(tmp_path, capsys):
    path = str(tmp_path / "m.npz")
    run(capsys, "build", "--N", "1024", "--R", "4", "--out", path)
    code, out, _ = run(capsys, "compare", path, "--precision", "1", "--json")
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "tight" and data["ratio"] == 1.0 and data["bound"] == "generic"
    assert run(capsys, "build", "--N", "1024", "--R", "4", "--out", path, "--json")[0] == 2  # exists: needs --force
    spec = json.loads(run(capsys, "build", "--N", "1024", "--R", "4", "--out", path, "--json", "--force")[1])["spec"]
    assert spec["subject_embedding_dim"] == 40
    spec["subject_embedding_dim"] = 39  # claims 39 coordinates where 4 * 10 = 40 bits are needed
    (tmp_path / "claim.json").write_text(json.dumps(spec))
    code, out, _ = run(capsys, "compare", str(tmp_path / "claim.json"), "--precision", "1", "--json")
    data = json.loads(out)
    assert code == 1 and data["verdict"] == "impossible"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bounds", "--N", "1", "--R", "2"], "--N must be in 2.."),
        (["bounds", "--N", "8", "--R", "2", "--hops", "0"], "--hops must be in 1.."),
        (["bounds", "--N", "8", "--R", "2", "--chains", "some"], "invalid choice: 'some'"),
        (["bounds", "--N", "8", "--R", "2", "--delta", "2"], "--delta is a failure probability in [0, 1)"),
        (["bounds", "--N", "8", "--R", "2", "--precision", "0"], "--precision must be in 1.."),
        (["compare", "nothing.json"], "does not exist"),
    ],
)
def test_bounds_and_compare_bad_input_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_build_and_verify_multi_hop_and_cot_files(tmp_path, capsys):
    cot = str(tmp_path / "cot.npz")
    assert run(capsys, "build", "--cot", "--hops", "3", "--cot-steps", "2", "--N", "20", "--R", "2", "--out", cot)[0] == 0
    code, out, _ = run(capsys, "verify", cot, "--json")
    report = json.loads(out)
    assert code == 0 and report["kind"] == "cot" and report["exact_recall"] and report["details"]["depths"] == [1, 2, 3]
    chains = str(tmp_path / "chains.npz")
    run(capsys, "build", "--construction", "chains", "--hops", "2", "--N", "30", "--R", "3", "--out", chains)
    code, out, _ = run(capsys, "verify", chains, "--json", "--max-queries", "100")
    report = json.loads(out)
    assert code == 0 and report["exhaustive"] is False and report["queries"] == 100 and report["total_queries"] == 270


def test_tradeoff_json_and_plot(tmp_path, capsys):
    plot = tmp_path / "tradeoff.png"
    code, out, _ = run(capsys, "tradeoff", "--d", "128", "--R", "2", "--json", "--plot", str(plot))
    data = json.loads(out)
    assert code == 0 and [row["k"] for row in data["rows"]] == [1, 2, 3, 4, 5, 6]
    assert plot.stat().st_size > 10_000 and json.loads((tmp_path / "tradeoff.json").read_text())["rows"] == data["rows"]
    rows = data["rows"]
    assert rows[0]["log2_N_max_bound_cot"] == 64 and all(row["log2_N_max_cot"] <= row["log2_N_max_bound_cot"] for row in rows)
    assert all(row["log2_N_max_chains_no_cot"] is None or row["log2_N_max_chains_no_cot"] <= row["log2_N_max_bound_no_cot"] for row in rows)
    assert rows[3]["log2_N_max_cot"] > rows[3]["log2_N_max_partial_cot_T2"] > (rows[3]["log2_N_max_chains_no_cot"] or 0)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["build", "--hops", "2", "--out", "x.npz"], "needs --construction chains, associative or cot"),
        (["build", "--cot-steps", "2", "--hops", "3", "--out", "x.npz"], "--cot-steps needs --construction cot"),
        (["tradeoff", "--d", "0", "--R", "2"], "--d must be in 1.."),
    ],
)
def test_multi_hop_bad_input_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def _malformed_files(folder):
    """(label, path, expected words) for files a hostile user might hand to verify/compare."""
    import numpy as np

    from georecall.cli import main

    good_path = str(folder / "good.npz")
    assert main(["build", "--N", "16", "--R", "2", "--out", good_path]) == 0
    with np.load(good_path) as data:
        good = {k: data[k] for k in data.files}
    meta = json.loads(str(good["meta"]))

    def variant(name, **changes):
        arrays = dict(good)
        arrays["meta"] = np.array(json.dumps({**meta, **changes}))
        path = str(folder / name)
        np.savez(path, **arrays)
        return path

    np.save(folder / "plain.npy", np.zeros(3))
    (folder / "dir.npz").mkdir()
    (folder / "text.npz").write_text("hello")
    flipped = bytearray(open(good_path, "rb").read())
    flipped[len(flipped) // 2] ^= 0xFF
    (folder / "flip.npz").write_bytes(bytes(flipped))
    return [
        ("a plain .npy array", str(folder / "plain.npy"), "single .npy array"),
        ("a directory", str(folder / "dir.npz"), "is a directory"),
        ("a text file", str(folder / "text.npz"), "not a readable .npz"),
        ("a flipped bit", str(folder / "flip.npz"), "not a readable .npz"),
        ("n_layers a string", variant("layers.npz", n_layers="x"), "meta.n_layers"),
        ("n_layers 10^9 hops claim", variant("huge.npz", n_layers=10**15), "meta.n_layers"),
        ("query_kinds a string", variant("kinds.npz", query_kinds="single_hop"), "meta.query_kinds"),
        ("extra a list", variant("extra.npz", extra=[1, 2]), "meta.extra"),
        ("attn_scale null", variant("scale.npz", attn_scale=None), "meta.attn_scale"),
        ("spec with nulls", variant("spec.npz", extra={"spec": {"name": None}}), "meta.extra.spec.name"),
        ("cot without extra", variant("cot.npz", query_kinds=["cot"], extra={}), "max_hops"),
        ("cot with hops_per_step 0", variant("cot0.npz", query_kinds=["cot"], extra={"max_hops": 2, "hops_per_step": 0}),
         "hops_per_step"),
        ("multi_hop without hops", variant("mh.npz", query_kinds=["multi_hop"], extra={}), "meta.extra.hops"),
    ]


def test_malformed_files_exit_2_with_one_line_naming_the_problem(tmp_path, capsys):
    from georecall.cli import main

    for label, path, words in _malformed_files(tmp_path):
        capsys.readouterr()
        code = main(["verify", path])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and words in err, (label, code, err)


def test_out_of_reach_work_is_refused_before_it_starts(tmp_path, capsys):
    import time
    from dataclasses import replace

    from georecall.cli import main
    from georecall.constructions import build_construction
    from georecall.theory import Instance
    from georecall.formats.containers import save_model

    started = time.perf_counter()
    assert main(["build", "--construction", "chains", "--hops", "30", "--N", "256", "--R", "4", "--out", str(tmp_path / "c.npz")]) == 2
    err = capsys.readouterr().err
    assert "chains at N = 256" in err and "GiB" in err and "hops" in err
    model = build_construction("cot", Instance.random(16, 2, 0), hops=3)
    meta = replace(model.weights.meta, extra={**model.weights.meta.extra, "max_hops": 100})
    save_model(tmp_path / "k100.npz", replace(model.weights, meta=meta), model.instance)
    assert main(["verify", str(tmp_path / "k100.npz")]) == 2
    err = capsys.readouterr().err
    assert "100 hops" in err and "64-bit" in err and "--hops" in err
    assert time.perf_counter() - started < 5


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"georecall {version('geometric-recall')}"


def test_deprecated_spellings_still_work_and_say_what_replaces_them(tmp_path, capsys):
    cot = str(tmp_path / "cot.npz")
    assert main(["build", "--cot", "--hops", "2", "--N", "16", "--R", "2", "--out", cot]) == 0
    assert "--cot is deprecated and will be removed in 0.3; use --construction cot" in capsys.readouterr().err
    assert main(["build", "--construction", "cot", "--hops", "2", "--N", "16", "--R", "2", "--out", cot, "--force"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["build", "--cot", "--construction", "chains", "--out", cot, "--force"]) == 2
    single = str(tmp_path / "m.npz")
    assert main(["build", "--N", "16", "--R", "2", "--out", single]) == 0
    capsys.readouterr()
    assert main(["verify", single, "--certify", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["details"]["path"] == "certify" and "--certify is deprecated" in err and "--path certify" in err
    assert main(["verify", single, "--certify", "--path", "fast"]) == 2
    assert "--certify contradicts --path fast" in capsys.readouterr().err


def test_a_missing_extra_is_named_in_one_line_with_exit_2(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    for argv in (["train", "--N", "16"], ["sweep", "--N", "8", "--out", str(tmp_path / "s")],
                 ["verify", str(tmp_path / "m.npz"), "--path", "torch"]):
        if argv[0] == "verify":
            assert main(["build", "--N", "16", "--R", "2", "--out", argv[1]]) == 0
            capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == 'georecall: error: this command needs PyTorch, from the [train] extra: pip install -e ".[train]" "torch==2.13.0"'
