"""Containers and TransformerLens interop (docs/interop.md): exact round trips, the same margins
in a TransformerLens forward pass, and clean refusals of what the format cannot hold."""

import json
import struct

import numpy as np
import pytest

from georecall.cli import main
from georecall.constructions.registry import build_construction
from georecall.theory.checks import InputError
from georecall.theory.instance import Instance
from georecall.formats.containers import load_model, save_model, save_model_as
from georecall.theory.model import forward
from georecall.formats.transformer_lens import from_transformer_lens_state, to_transformer_lens_state
from georecall.theory.weights import ModelMeta

KINDS = [("block", {}), ("planar", {}), ("chains", {"hops": 2}), ("cot", {"hops": 3}), ("cot", {"hops": 4, "cot_steps": 2}),
         ("associative", {"hops": 2}), ("shared-space", {})]


def built(name, options, N=32, R=2):
    instance = Instance.random(N, R, seed=1)
    return build_construction(name, instance, **options), instance


def assert_same_model(a, b):
    A, B = a.weights.named_arrays(), b.weights.named_arrays()
    assert A.keys() == B.keys()
    for name in A:
        assert A[name].shape == B[name].shape and np.array_equal(A[name], B[name]), name
    assert a.weights.meta == b.weights.meta
    assert np.array_equal(a.instance.facts, b.instance.facts) and a.spec == b.spec


@pytest.mark.parametrize("name,options", KINDS)
@pytest.mark.parametrize("container", ["safetensors", "transformer-lens"])
def test_every_kind_round_trips_exactly_through_every_container(tmp_path, name, options, container):
    model, instance = built(name, options)
    save_model(tmp_path / "m.npz", model.weights, instance, model.spec)
    original = load_model(tmp_path / "m.npz")
    save_model_as(tmp_path / "m.st", container, original.weights, original.instance, original.spec)
    assert_same_model(original, load_model(tmp_path / "m.st"))


def test_padding_and_scale_folding_are_undone_and_a_power_of_two_scale_survives(tmp_path):
    model, instance = built("associative", {"hops": 2})  # layers of different head counts and MLP widths
    config, state, shapes = to_transformer_lens_state(model.weights)
    assert shapes[0] != shapes[1] and config["attn_scale"] == 2.0  # scale 1 with d_head > 1: W_Q doubled, t = 2
    assert np.array_equal(state["blocks.0.attn.q.weight"][: shapes[0][1]], 2 * model.weights.blocks[0].attn.W_Q[0].T)
    arrays, meta = from_transformer_lens_state(config, state, model.weights.meta, shapes, True)
    assert meta.attn_scale == 1.0 and arrays["blocks.1.attn.W_Q"].shape == model.weights.blocks[1].attn.W_Q.shape
    # without the shapes the padding stays (exact zeros) and the function is unchanged
    arrays, _ = from_transformer_lens_state(config, state, model.weights.meta, None, True)
    assert arrays["blocks.1.attn.W_Q"].shape[0] == shapes[0][0]


def test_a_scale_without_an_exact_reciprocal_is_refused_naming_it(tmp_path):
    model, instance = built("block", {})
    from dataclasses import replace

    weights = replace(model.weights, meta=replace(model.weights.meta, attn_scale=0.3))
    with pytest.raises(InputError, match="meta.attn_scale = 0.3"):
        save_model_as(tmp_path / "m.st", "transformer-lens", weights, instance)
    save_model_as(tmp_path / "m.st", "safetensors", weights, instance)  # our own naming holds any scale
    assert load_model(tmp_path / "m.st").weights.meta.attn_scale == 0.3


def test_a_negative_power_of_two_scale_folds_its_sign_into_W_Q(tmp_path):
    model, instance = built("block", {})
    from dataclasses import replace

    weights = replace(model.weights, meta=replace(model.weights.meta, attn_scale=-0.25))
    config, state, shapes = to_transformer_lens_state(weights)
    assert config["attn_scale"] == 4.0
    arrays, meta = from_transformer_lens_state(config, state, weights.meta, shapes, False)
    assert meta.attn_scale == -0.25 and np.array_equal(arrays["blocks.0.attn.W_Q"], weights.blocks[0].attn.W_Q)


@pytest.mark.parametrize("change,message", [
    (lambda c, s: s.__setitem__("blocks.0.attn.o.bias", s["blocks.0.attn.o.bias"] + 1e-300), "blocks.0.attn.o.bias is not zero"),
    (lambda c, s: c.__setitem__("normalization_type", "LN"), "normalization_type"),
    (lambda c, s: c.__setitem__("act_fn", "gelu"), "act_fn"),
    (lambda c, s: c.__setitem__("attn_scale", 3.0), "attn_scale divides scores by 3.0"),
    (lambda c, s: c.__setitem__("n_key_value_heads", 7), "n_key_value_heads"),
    (lambda c, s: c.__setitem__("output_logits_soft_cap", 30.0), "output_logits_soft_cap"),
    (lambda c, s: s.__setitem__("blocks.0.ln1.w", np.ones(3)), "keys this format does not hold"),
    (lambda c, s: s.pop("unembed.bias"), "lacks keys it needs"),
    (lambda c, s: s.__setitem__("blocks.0.attn.q.weight", np.zeros((3, 3))), "blocks.0.attn.q.weight has shape"),
    (lambda c, s: s.__setitem__("embed.weight", s["embed.weight"].astype(np.int64)), "embed.weight has dtype int64"),
])
def test_what_the_format_cannot_hold_is_refused_naming_it(change, message):
    model, _ = built("block", {})
    config, state, shapes = to_transformer_lens_state(model.weights)
    change(config, state)
    with pytest.raises(InputError, match=message):
        from_transformer_lens_state(config, state, model.weights.meta, shapes, False)


def _safetensors_bytes(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _hostile_safetensors(folder):
    model, instance = built("block", {})
    good = folder / "good.st"
    save_model_as(good, "safetensors", model.weights, instance)
    raw = good.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    data = raw[8 + length :]
    meta = header["__metadata__"]
    cases = {
        "truncated.st": (raw[: len(raw) - 10], "tile"),
        "huge_header.st": (struct.pack("<Q", 2**40) + raw[8:], "header claims"),
        "not_json.st": (struct.pack("<Q", 5) + b"{abcd" + data, "not valid JSON"),
        "lying_shape.st": (_safetensors_bytes({**header, "W_U": {**header["W_U"], "shape": [10**9, 10**3]}}, data), "declares shape"),
        "bool_dtype.st": (_safetensors_bytes({**header, "b_U": {**header["b_U"], "dtype": "BOOL"}}, data), "dtype 'BOOL'"),
        "no_meta.st": (_safetensors_bytes({**header, "__metadata__": {}}, data), "georecall_meta"),
        "bad_meta.st": (_safetensors_bytes({**header, "__metadata__": {**meta, "georecall_meta": "{"}}, data), "meta is not valid JSON"),
        "bad_format.st": (_safetensors_bytes({**header, "__metadata__": {**meta, "format": "gguf"}}, data), "format is 'gguf'"),
        "tl_no_config.st": (_safetensors_bytes({**header, "__metadata__": {**meta, "format": "transformer-lens"}}, data), "transformer_lens_config"),
    }
    for name, (content, _) in cases.items():
        (folder / name).write_bytes(content)
    return {name: message for name, (_, message) in cases.items()}


def test_hostile_safetensors_files_exit_2_with_one_line(tmp_path, capsys):
    for name, message in _hostile_safetensors(tmp_path).items():
        code = main(["verify", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        assert message in err and len(err.strip().splitlines()) == 1, (name, err)


def test_our_safetensors_files_are_what_the_safetensors_library_reads(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model, instance = built("chains", {"hops": 2})
    save_model_as(tmp_path / "ours.st", "safetensors", model.weights, instance, model.spec)
    theirs = safetensors_numpy.load_file(str(tmp_path / "ours.st"))
    for name, array in model.weights.named_arrays().items():
        assert np.array_equal(theirs[name], array), name
    # and a file the library writes is one we read
    arrays = {**model.weights.named_arrays(), "facts": instance.facts.astype(np.int64)}
    safetensors_numpy.save_file(arrays, str(tmp_path / "lib.st"),
                                metadata={"georecall_meta": json.dumps(model.weights.meta.to_json_dict())})
    assert load_model(tmp_path / "lib.st").weights.named_arrays()["W_U"].tobytes() == model.weights.W_U.tobytes()


def test_export_cli_refuses_to_overwrite_and_round_trips(tmp_path, capsys):
    assert main(["build", "--N", "64", "--R", "2", "--out", str(tmp_path / "m.npz")]) == 0
    assert main(["export", str(tmp_path / "m.npz"), "--to", "transformer-lens", str(tmp_path / "m.tl")]) == 0
    assert main(["export", str(tmp_path / "m.npz"), "--to", "transformer-lens", str(tmp_path / "m.tl")]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "m.tl")]) == 0
    assert main(["export", str(tmp_path / "m.tl"), "--to", "npz", str(tmp_path / "back.npz")]) == 0
    assert_same_model(load_model(tmp_path / "m.npz"), load_model(tmp_path / "back.npz"))


def test_a_trained_model_has_a_power_of_two_scale_and_exports(tmp_path):
    pytest.importorskip("torch")
    from georecall.experiments.model import init_weights

    weights = init_weights(16, 2, 32, 8, np.random.default_rng(0))
    assert weights.meta.attn_scale == 0.125
    instance = Instance.random(16, 2, 0)
    save_model_as(tmp_path / "t.st", "transformer-lens", weights, instance)
    assert np.array_equal(load_model(tmp_path / "t.st").weights.W_E, weights.W_E)


# ----- a live TransformerLens model (the interop extra; installed in CI) -----

@pytest.fixture(scope="module")
def transformer_lens():
    return pytest.importorskip("transformer_lens")


def _prompts(model, instance, name, options, rng):
    meta = model.weights.meta
    N, R = instance.N, instance.R
    if name in ("block", "planar", "shared-space"):
        return np.array([[s, N + r] for s in range(N) for r in range(R)])
    hops = options["hops"]
    subjects = rng.integers(0, N, (64, 1))
    relations = N + rng.integers(0, R, (64, hops))
    if name != "cot":
        return np.concatenate([subjects, relations], axis=1)
    special = meta.special_tokens
    return np.concatenate([subjects, relations, np.full((64, 1), special["SEP"])], axis=1)


@pytest.mark.parametrize("name,options", KINDS)
def test_transformer_lens_forward_gives_the_same_margins_and_imports_back(transformer_lens, tmp_path, name, options):
    from georecall.interop import from_transformer_lens, to_transformer_lens, transformer_lens_logits

    model, instance = built(name, options)
    tokens = _prompts(model, instance, name, options, np.random.default_rng(0))
    ours = forward(model.weights, tokens)
    bridge = to_transformer_lens(model.weights)
    assert all(p.dtype.is_floating_point and p.dtype.itemsize == 8 for p in bridge.state_dict().values())
    theirs = transformer_lens_logits(bridge, tokens)

    def margins(logits):
        answer = logits.argmax(axis=1)
        rival = np.where(np.arange(logits.shape[1]) == answer[:, None], -np.inf, logits).max(axis=1)
        return answer, logits[np.arange(len(logits)), answer] - rival

    (a_ours, m_ours), (a_theirs, m_theirs) = margins(ours), margins(theirs)
    assert np.array_equal(a_ours, a_theirs) and np.max(np.abs(m_ours - m_theirs)) <= 1e-12
    back = from_transformer_lens(bridge, instance, model.weights.meta)
    for key, array in model.weights.named_arrays().items():
        assert np.array_equal(back.named_arrays()[key], array), key


def test_cli_export_loads_into_transformer_lens_from_the_file_alone(transformer_lens, tmp_path):
    import torch
    from safetensors.torch import load_file, safe_open

    assert main(["build", "--construction", "chains", "--hops", "2", "--N", "32", "--R", "2", "--out", str(tmp_path / "m.npz")]) == 0
    assert main(["export", str(tmp_path / "m.npz"), "--to", "transformer-lens", str(tmp_path / "m.safetensors")]) == 0
    with safe_open(str(tmp_path / "m.safetensors"), "pt") as handle:
        metadata = handle.metadata()
    state = load_file(str(tmp_path / "m.safetensors"))
    facts = state.pop("georecall.facts")
    bridge = transformer_lens.TransformerBridge.boot_native(json.loads(metadata["transformer_lens_config"]), dtype=torch.float64)
    bridge.load_state_dict(state, strict=True)
    loaded = load_model(tmp_path / "m.npz")
    tokens = np.array([[s, 32 + a, 32 + b] for s in range(32) for a in range(2) for b in range(2)])
    with torch.no_grad():
        predicted = bridge(torch.as_tensor(tokens))[:, -1].argmax(-1).numpy()
    f = facts.numpy()
    assert np.array_equal(predicted, f[tokens[:, 2] - 32, f[tokens[:, 1] - 32, tokens[:, 0]]])
    assert np.array_equal(predicted, forward(loaded.weights, tokens).argmax(1))


def test_from_transformer_lens_refuses_a_model_with_layer_norms(transformer_lens):
    import torch

    from georecall.interop import from_transformer_lens

    bridge = transformer_lens.TransformerBridge.boot_native(
        dict(d_model=8, d_head=4, n_heads=2, n_layers=1, n_ctx=2, d_vocab=6, d_vocab_out=4, d_mlp=8, act_fn="relu",
             normalization_type="LN", attn_scale=2.0), dtype=torch.float64)
    with pytest.raises(InputError, match="normalization_type is 'LN'"):
        from_transformer_lens(bridge, Instance.random(4, 2, 0), ModelMeta(N=4, R=2, n_layers=1, attn_scale=0.5))


def test_the_interop_walkthrough_runs(transformer_lens, tmp_path, monkeypatch):
    import pathlib
    import re

    pytest.importorskip("safetensors")
    monkeypatch.chdir(tmp_path)
    assert main(["build", "--N", "256", "--R", "4", "--out", "block.npz"]) == 0
    assert main(["export", "block.npz", "--to", "transformer-lens", "block.safetensors"]) == 0
    text = (pathlib.Path(__file__).parents[1] / "docs" / "interop.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 3  # one call, without georecall, the walkthrough
    for block in blocks:
        exec(compile(block, "docs/interop.md", "exec"), {})


def test_load_transformer_lens_gives_the_facts_and_a_model_that_recalls_them(transformer_lens, tmp_path):
    import torch

    from georecall.interop import load_transformer_lens

    path = tmp_path / "m.npz"
    assert main(["build", "--N", "16", "--R", "2", "--out", str(path)]) == 0
    model, instance, meta = load_transformer_lens(path)
    assert (meta.N, meta.R) == (16, 2) and instance.facts.shape == (2, 16)
    prompts = torch.tensor([[s, 16 + r] for r in range(2) for s in range(16)])
    with torch.no_grad():
        predicted = model(prompts)[:, -1].argmax(-1).numpy()
    assert np.array_equal(predicted, instance.facts.reshape(-1))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    with pytest.raises(InputError):
        load_transformer_lens(broken)


def test_export_refuses_a_missing_folder_or_a_folder_as_out_naming_it(tmp_path, capsys):
    assert main(["build", "--N", "16", "--R", "1", "--out", str(tmp_path / "m.npz")]) == 0
    (tmp_path / "folder").mkdir()
    for out, message in ((tmp_path / "none" / "x.st", "does not exist"), (tmp_path / "folder", "is a folder")):
        assert main(["export", str(tmp_path / "m.npz"), "--to", "safetensors", str(out), "--force"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
