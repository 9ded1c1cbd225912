"""Issue 20's bad-input cases: each is exit 2 with one line naming what is wrong, fast and small,
never a traceback or exit 3. Files are built by hand from docs/FORMAT.md, as a hostile user would."""

import json
import struct
import time

import numpy as np
import pytest

from georecall.cli import main

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000


def run(capsys, *argv):
    started = time.perf_counter()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err, time.perf_counter() - started


def refused(capsys, argv, *words, seconds=10):
    code, _, err, took = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err[-2000:])
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert all(word in err for word in words), (words, err)
    assert took < seconds, took
    return err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, container in (("m.npz", "npz"), ("m.safetensors", "safetensors"), ("tl.safetensors", "transformer-lens")):
        paths[name] = folder / name
        assert main(["build", "--N", "16", "--R", "2", "--out", str(folder / "m.npz"), "--force"]) == 0
        if container != "npz":
            assert main(["export", str(folder / "m.npz"), "--to", container, str(paths[name])]) == 0
    paths["cot.npz"] = folder / "cot.npz"
    assert main(["build", "--construction", "cot", "--hops", "3", "--N", "16", "--R", "2", "--out", str(paths["cot.npz"])]) == 0
    return folder, paths


def npz_with_meta(folder, name, source, edit_text):
    """A copy of ``source`` whose meta JSON text is ``edit_text(text)``."""
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["meta"] = np.array(edit_text(str(arrays["meta"])))
    path = folder / name
    np.savez(path, **arrays)
    return path


def read_safetensors(path):
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def safetensors_with_header(folder, name, source, header_bytes):
    """``source``'s tensor bytes under the header ``header_bytes`` (bytes, written as given)."""
    _, data = read_safetensors(source)
    path = folder / name
    path.write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data)
    return path


def edited_header(source, edit):
    header, _ = read_safetensors(source)
    edit(header)
    return json.dumps(header).encode()


# ---- JSON nested 100,000 deep and integers of 5,000 digits, in every place georecall reads JSON ----------

@pytest.mark.parametrize("payload, words", [(DEEP, "nested too deeply"), (HUGE, "5,000 digits")])
def test_hostile_json_in_npz_meta(files, capsys, payload, words):
    folder, paths = files
    path = npz_with_meta(folder, "meta.npz", paths["m.npz"], lambda text: text[:-1] + f', "extra2": {payload}}}')
    for argv in (["verify", path], ["compare", path], ["verify", path, "--path", "certify"]):
        refused(capsys, argv, "meta", words)


@pytest.mark.parametrize("payload, words", [(DEEP, "nested too deeply"), (HUGE, "5,000 digits")])
def test_hostile_json_in_the_safetensors_header(files, capsys, payload, words):
    folder, paths = files
    header = edited_header(paths["m.safetensors"], lambda h: None)
    path = safetensors_with_header(folder, "h.safetensors", paths["m.safetensors"], header[:-1] + f', "x": {payload}}}'.encode())
    refused(capsys, ["verify", path], "header", words)


@pytest.mark.parametrize("key", ["georecall_meta", "transformer_lens_config", "layer_shapes"])
@pytest.mark.parametrize("payload, words", [(DEEP, "nested too deeply"), (HUGE, "5,000 digits")])
def test_hostile_json_in_metadata_strings(files, capsys, key, payload, words):
    folder, paths = files

    def edit(header):
        header["__metadata__"][key] = payload

    path = safetensors_with_header(folder, "md.safetensors", paths["tl.safetensors"], edited_header(paths["tl.safetensors"], edit))
    refused(capsys, ["verify", path], words)


@pytest.mark.parametrize("payload, words", [(DEEP, "nested too deeply"), (HUGE, "5,000 digits")])
def test_hostile_json_in_a_compare_spec_file(tmp_path, capsys, payload, words):
    (tmp_path / "spec.json").write_text(payload if payload is DEEP else f'{{"N": {payload}}}')
    refused(capsys, ["compare", tmp_path / "spec.json"], "spec.json", words)


# ---- a strict safetensors header ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [["F64"], {"F64": 1}, 64, None])
def test_a_dtype_that_is_not_a_string(files, capsys, dtype):
    folder, paths = files

    def edit(header):
        header["W_E"]["dtype"] = dtype

    path = safetensors_with_header(folder, "dt.safetensors", paths["m.safetensors"], edited_header(paths["m.safetensors"], edit))
    refused(capsys, ["verify", path], "'W_E'", "dtype")


def test_a_utf16_header_is_refused(files, capsys):
    folder, paths = files
    header = edited_header(paths["m.safetensors"], lambda h: None).decode().encode("utf-16-le")
    path = safetensors_with_header(folder, "u16.safetensors", paths["m.safetensors"], header)
    refused(capsys, ["verify", path], "not UTF-8", "NUL")


def test_duplicate_keys_are_refused_even_when_the_last_is_valid(files, capsys):
    folder, paths = files
    text = edited_header(paths["m.safetensors"], lambda h: None).decode()
    duplicated = '{"W_E": {"dtype": "STRING", "shape": [1], "data_offsets": [0, 1]}, ' + text[1:]
    path = safetensors_with_header(folder, "dup.safetensors", paths["m.safetensors"], duplicated.encode())
    refused(capsys, ["verify", path], "repeats the key", "W_E")


def test_a_boolean_is_not_an_integer_in_layer_shapes_or_shapes(files, capsys):
    folder, paths = files

    def shapes(header):
        layers = json.loads(header["__metadata__"]["layer_shapes"])
        layers[0][0] = True
        header["__metadata__"]["layer_shapes"] = json.dumps(layers)

    path = safetensors_with_header(folder, "b.safetensors", paths["tl.safetensors"], edited_header(paths["tl.safetensors"], shapes))
    refused(capsys, ["verify", path], "layer_shapes")

    def shape(header):
        header["b_U"]["shape"] = [True] * len(header["b_U"]["shape"])

    path = safetensors_with_header(folder, "s.safetensors", paths["m.safetensors"], edited_header(paths["m.safetensors"], shape))
    refused(capsys, ["verify", path], "b_U")


@pytest.mark.parametrize("key, value, words", [
    ("n_ctx", -1, "n_ctx"), ("n_ctx", 0, "n_ctx"), ("attn_scale", "abc", "attn_scale"), ("attn_scale", [2], "attn_scale"),
    ("n_layers", 10**9, "n_layers"), ("d_head", True, "d_head"), ("attn_scores_soft_cap", "x", "attn_scores_soft_cap"),
])
def test_transformer_lens_config_values(files, capsys, key, value, words):
    folder, paths = files

    def edit(header):
        config = json.loads(header["__metadata__"]["transformer_lens_config"])
        config[key] = value
        header["__metadata__"]["transformer_lens_config"] = json.dumps(config)

    path = safetensors_with_header(folder, "tl2.safetensors", paths["tl.safetensors"], edited_header(paths["tl.safetensors"], edit))
    refused(capsys, ["verify", path], "transformer_lens_config." + words)


def test_an_attn_scale_of_null_means_the_default(files, capsys):
    """TransformerLens writes null for 'use the default sqrt(d_head)': read as such, not refused."""
    folder, paths = files

    def edit(header):
        config = json.loads(header["__metadata__"]["transformer_lens_config"])
        config["attn_scale"] = None
        header["__metadata__"]["transformer_lens_config"] = json.dumps(config)

    path = safetensors_with_header(folder, "tl3.safetensors", paths["tl.safetensors"], edited_header(paths["tl.safetensors"], edit))
    code, _, err, _ = run(capsys, "verify", path)
    assert code in (0, 1, 2) and "Traceback" not in err and len(err.strip().splitlines()) <= 1


# ---- sizes read from a file: bounded before anything is allocated -----------------------------------------

def test_a_small_file_claiming_a_billion_layers_is_refused_at_once(files, capsys):
    folder, paths = files
    path = npz_with_meta(folder, "layers.npz", paths["m.npz"], lambda text: text.replace('"n_layers": 1', '"n_layers": 1000000000'))
    assert path.stat().st_size < 20_000
    for argv in (["verify", path], ["verify", path, "--path", "certify"], ["compare", path]):
        refused(capsys, argv, "n_layers", seconds=3)


def test_hops_beyond_reach(files, capsys):
    folder, paths = files
    refused(capsys, ["verify", paths["cot.npz"], "--hops", "100", "--max-queries", "10"], "--hops", "64")
    path = npz_with_meta(folder, "k40.npz", paths["cot.npz"], lambda text: text.replace('"max_hops": 3', '"max_hops": 40'))
    refused(capsys, ["verify", path], "depths 1..40", "--hops")


# ---- options: bounded integers, finite in-range floats, checked before any work ------------------------------

@pytest.mark.parametrize("argv, words", [
    (["verify", "{m}", "--memory-budget-mb", "nan"], "--memory-budget-mb"),
    (["verify", "{m}", "--memory-budget-mb", "inf"], "--memory-budget-mb"),
    (["verify", "{m}", "--memory-budget-mb", "-1"], "--memory-budget-mb"),
    (["build", "--N", str(10**30), "--out", "{x}"], "--N"),
    (["sizes", "--N", str(10**30)], "--N"),
    (["threshold", "--N", str(2**40)], "--N"),
    (["train", "--N", str(10**30)], "--N"),
    (["train", "--d", "1000000000"], "--d"),
    (["train", "--d-mlp", "1000000000"], "--d-mlp"),
    (["train", "--N", "1000000000"], ""),
    (["train", "--lr", "1e308"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--instances", "1000000000"], "--instances"),
    (["train", "--N", "16", "--R", "1000000"], ""),
    (["sweep", "--d-max", "0", "--out", "{x}"], "--d-max"),
    (["bounds", "--N", "4096", "--R", "4", "--delta", "1.5"], "--delta"),
    (["tradeoff", "--d", "16", "--R", "2", "--plot", "{x}.json"], "--plot"),
])
def test_options_out_of_range(files, capsys, tmp_path, argv, words):
    _, paths = files
    argv = [a.format(m=paths["m.npz"], x=tmp_path / "x") for a in argv]
    refused(capsys, argv, words, seconds=5)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_sizes_are_closed_forms_so_a_huge_N_costs_nothing(capsys):
    code, out, err, took = run(capsys, "sizes", "--N", 2**40, "--json")
    rows = json.loads(out)["rows"] if isinstance(json.loads(out), dict) else json.loads(out)
    assert code == 0 and took < 5 and any(row["N"] == 2**40 for row in rows)
