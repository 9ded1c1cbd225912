import json
import zipfile

import numpy as np
import pytest

from georecall.constructions import build_construction
from helpers import random_weights
from georecall.theory import Instance, forward
from georecall.formats import load_model, save_model
from georecall.verify import verify_single_hop


def test_round_trip_preserves_arrays_facts_spec_and_logits(tmp_path):
    inst = Instance.random(30, 3, seed=4)
    model = build_construction("block", inst, codebook="multilevel", precision=2)
    path = tmp_path / "m.npz"
    save_model(path, model.weights, inst, model.spec)
    loaded = load_model(path)
    assert loaded.instance == inst
    assert loaded.spec == model.spec
    for name, array in model.weights.named_arrays().items():
        assert np.array_equal(array, loaded.weights.named_arrays()[name]), name
    tokens = np.array([[3, 31], [7, 32]])
    assert np.array_equal(forward(model.weights, tokens), forward(loaded.weights, tokens))
    assert verify_single_hop(loaded.weights, loaded.instance).exact_recall


def test_files_without_spec_load_with_spec_none(tmp_path):
    weights = random_weights(N=5, R=2, layers=2)
    save_model(tmp_path / "m.npz", weights, Instance.random(5, 2, seed=0))
    assert load_model(tmp_path / "m.npz").spec is None


def _rewrite(path, out, **changes):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(out, **arrays)


@pytest.fixture
def saved(tmp_path):
    inst = Instance.random(8, 2, seed=0)
    model = build_construction("block", inst)
    path = tmp_path / "good.npz"
    save_model(path, model.weights, inst, model.spec)
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"meta": None}, "no 'meta' array"),
        ({"facts": None}, "no 'facts' array"),
        ({"W_U": None}, "missing the array 'W_U'"),
        ({"meta": np.array("{not json")}, "meta is not valid JSON"),
        ({"facts": np.array([[0, 0, 1, 2, 3, 4, 5, 6], list(range(8))])}, "row 0 is not a permutation"),
        ({"blocks.0.mlp.b_in": np.full(20, np.nan)}, "non-finite"),
        ({"blocks.0.mlp.b_in": np.zeros(3)}, r"b_in has shape \[3\]"),
        ({"blocks.1.mlp.b_in": np.zeros(3)}, "arrays the format does not define"),
        ({"W_E": np.array([object()], dtype=object)}, "not a readable"),
    ],
)
def test_malformed_files_raise_value_errors(saved, tmp_path, changes, message):
    out = tmp_path / "bad.npz"
    _rewrite(saved, out, **changes)
    with pytest.raises(ValueError, match=message):
        load_model(out)


def test_meta_with_wrong_layout_or_version_is_rejected(saved, tmp_path):
    meta = json.loads(str(np.load(saved, allow_pickle=False)["meta"]))
    for key, value, message in [("format_version", 99, "format_version"), ("token_layout", {"subjects": [0, 3], "relations": [3, 5]}, "token_layout")]:
        bad = dict(meta, **{key: value})
        _rewrite(saved, tmp_path / "bad.npz", meta=np.array(json.dumps(bad)))
        with pytest.raises(ValueError, match=message):
            load_model(tmp_path / "bad.npz")


def test_missing_and_non_npz_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_model(tmp_path / "nope.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable"):
        load_model(tmp_path / "text.npz")
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    with pytest.raises(ValueError, match="no 'meta'"):
        load_model(tmp_path / "empty.npz")


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path, monkeypatch):
    import numpy as np

    from georecall.constructions import build_construction
    from georecall.theory import Instance
    from georecall.formats.containers import load_model, save_model

    path = tmp_path / "m.npz"
    old = build_construction("block", Instance.random(16, 2, 0))
    save_model(path, old.weights, old.instance)
    before = path.read_bytes()
    new = build_construction("block", Instance.random(16, 2, 1))
    real_write = np.lib.format.write_array
    calls = []

    def interrupted(member, array, **options):
        calls.append(1)
        if len(calls) == 3:  # a few members in: as if Ctrl-C arrived mid-write
            raise KeyboardInterrupt
        return real_write(member, array, **options)

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    try:
        save_model(path, new.weights, new.instance)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(np.lib.format, "write_array", real_write)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    assert np.array_equal(load_model(path).instance.facts, old.instance.facts)


def test_a_zip_bomb_and_lying_headers_are_refused_before_anything_inflates(tmp_path):
    import json
    import resource
    import zipfile

    import numpy as np
    import pytest

    from georecall.constructions import build_construction
    from georecall.theory import Instance
    from georecall.formats.containers import load_model, save_model

    bomb = tmp_path / "bomb.npz"  # a 1 GiB W_E of zeros in about 1 MB; every other member valid
    model = build_construction("block", Instance.random(16, 2, 0))
    save_model(tmp_path / "good.npz", model.weights, model.instance)
    with np.load(tmp_path / "good.npz") as data:
        small = {k: data[k] for k in data.files}
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in (k for k in small if k != "W_E"):
            with archive.open(f"{name}.npy", "w") as member:
                np.lib.format.write_array(member, small[name])
        with archive.open("W_E.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (1 << 17, 1 << 10)})
            for _ in range(64):
                member.write(bytes(1 << 24))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="W_E declares shape \\[131072, 1024\\], but meta implies 18 rows"):
        load_model(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: nothing inflated

    liar = tmp_path / "liar.npz"
    with zipfile.ZipFile(liar, "w") as archive:
        with archive.open("W_E.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f8", "fortran_order": False, "shape": (10**9,)})
            member.write(bytes(80))
    with pytest.raises(ValueError, match="declares 8,000,000,128 bytes"):
        load_model(liar)
    assert json.loads(str(small["meta"]))["N"] == 16
