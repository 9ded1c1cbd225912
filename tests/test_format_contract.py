"""docs/FORMAT.md is a contract: this file re-implements its forward pass from the page alone.

Written with explicit loops over positions and heads, sharing no code with theory.model, and
reading the arrays straight from a saved .npz file as an outside tool would.
"""

import json
import math

import numpy as np

from helpers import random_weights
from georecall.theory.instance import Instance
from georecall.formats.containers import save_model
from georecall.theory.model import forward


def format_md_forward(path, tokens):
    data = np.load(path, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    x = [data["W_E"][t].astype(np.float64) + (data["W_pos"][i] if "W_pos" in data.files else 0.0) for i, t in enumerate(tokens)]
    for layer in range(meta["n_layers"]):
        p = f"blocks.{layer}."
        WQ, WK, WV, WO = (data[p + "attn." + n] for n in ("W_Q", "W_K", "W_V", "W_O"))
        new_x = []
        for i in range(len(tokens)):
            total = np.zeros_like(x[i])
            for h in range(WQ.shape[0]):
                q = x[i] @ WQ[h]
                scores = [meta["attn_scale"] * float(q @ (x[j] @ WK[h])) for j in range(i + 1)]
                top = max(scores)
                weights = [math.exp(s - top) for s in scores]
                norm = sum(weights)
                mixed = sum((w / norm) * (x[j] @ WV[h]) for j, w in enumerate(weights))
                total = total + mixed @ WO[h]
            new_x.append(x[i] + total)
        x = new_x
        x = [xi + np.maximum(xi @ data[p + "mlp.W_in"] + data[p + "mlp.b_in"], 0) @ data[p + "mlp.W_out"] + data[p + "mlp.b_out"] for xi in x]
    return x[-1] @ data["W_U"] + data["b_U"]


def test_independent_implementation_reproduces_logits(tmp_path):
    weights = random_weights(N=6, R=3, layers=3, heads=2, d_head=4, d_mlp=7, n_ctx=5, seed=11, special=("SEP",))
    path = tmp_path / "model.npz"
    save_model(path, weights, Instance.random(6, 3, seed=0))
    rng = np.random.default_rng(0)
    for length in (1, 2, 5):
        tokens = rng.integers(0, weights.meta.d_vocab_in, size=length)
        np.testing.assert_allclose(forward(weights, tokens[None])[0], format_md_forward(path, tokens), rtol=1e-11, atol=1e-11)


def test_meta_documents_the_token_layout(tmp_path):
    weights = random_weights(N=6, R=3, layers=1, special=("SEP",))
    path = tmp_path / "model.npz"
    save_model(path, weights, Instance.random(6, 3, seed=0))
    meta = json.loads(str(np.load(path, allow_pickle=False)["meta"]))
    assert meta["token_layout"] == {"subjects": [0, 6], "relations": [6, 9], "special": {"SEP": 9}}
    assert meta["d_vocab_in"] == 10 and meta["d_vocab_out"] == 6 and meta["format_version"] == 1
