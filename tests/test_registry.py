"""One registry of constructions (issue 20): its closed-form shapes are the built ones, and every
command and doc table that lists constructions lists all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from georecall.cli import main
from georecall.constructions.codebooks import make_codebook
from georecall.constructions.registry import CONSTRUCTIONS, REGISTRY, CodeSize, build_construction, check_cases, construction_shape
from georecall.constructions.shared_space import code_min_hamming
from georecall.theory import Instance

CASES = [(name, codebook, precision, N, R, options) for name in CONSTRUCTIONS
         for codebook, precision in (("binary", 1), ("multilevel", 2), ("rademacher", 1)) if codebook in REGISTRY[name].codebooks
         for N, R in ((16, 2), (40, 3))
         for options in ([{}] if "hops" not in REGISTRY[name].reads else
                         [{"hops": 1}, {"hops": 2}, {"hops": 3}] + ([{"hops": 3, "chains": "up_to"}] if name == "chains" else [])
                         + ([{"hops": 4, "cot_steps": 2}] if name == "cot" else []))]


@pytest.mark.parametrize("name, codebook, precision, N, R, options", CASES)
def test_the_closed_form_shape_is_what_the_builder_builds(name, codebook, precision, N, R, options):
    instance = Instance.random(N, R, 0)
    model = build_construction(name, instance, codebook=codebook, precision=precision, **options)
    book = make_codebook(codebook, N, precision=precision)
    shape = construction_shape(name, N, R, CodeSize(codebook, book.d0, code_min_hamming(book) if name == "shared-space" else 1),
                               **options)
    w = model.weights
    assert shape.d_model == w.d_model
    assert [(b.attn.n_heads, b.attn.d_head, b.mlp.d_mlp) for b in w.blocks] == list(shape.layers)
    assert shape.n_ctx == (0 if w.W_pos is None else w.W_pos.shape[0]) and shape.specials == len(w.meta.special_tokens)
    counts = shape.parameter_counts(N, R)
    assert (counts["subject_params"], counts["shared_params"]) == (model.spec.subject_params, model.spec.shared_params)
    assert shape.subject_dim == model.spec.subject_embedding_dim


def test_sizes_lists_every_construction_in_the_registry(capsys):
    assert main(["sizes", "--N", "256", "--R", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["construction"].split()[1].split("/")[0] for row in rows} == set(CONSTRUCTIONS)
    planar = [row for row in rows if row["construction"] == "K1′ planar/binary"][0]
    assert planar["d_model"] == 4 * 8 + 2  # R d0 + 2


def test_sizes_answers_any_size_at_once_and_build_refuses_what_will_not_fit(capsys):
    assert main(["sizes", "--N", str(2**40), "--R", "8", "--json"]) == 0
    capsys.readouterr()
    assert main(["build", "--N", str(2**30), "--R", "8", "--out", "never.npz"]) == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "limit" in err and not Path("never.npz").exists()


def test_check_runs_every_registry_case_and_the_docs_table_names_every_label():
    assert {case[0] for case in check_cases()} == set(CONSTRUCTIONS)
    index = (Path(__file__).resolve().parent.parent / "docs" / "index.md").read_text()
    for name, entry in REGISTRY.items():
        assert f"| {entry.label} |" in index, f"docs/index.md has no row for {entry.label} ({name})"
