import numpy as np
import pytest

from helpers import random_weights
from georecall.theory.model import attention, embed, forward
from georecall.theory.weights import AttentionWeights, Block, MLPWeights, ModelMeta, TransformerWeights


def tiny_model():
    """d_model = 2, one head, d_head = 1, d_mlp = 1, hand-checkable numbers."""
    meta = ModelMeta(N=2, R=1, n_layers=1, attn_scale=1.0)
    W_E = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    attn = AttentionWeights(
        W_Q=np.array([[[1.0], [0.0]]]), W_K=np.array([[[1.0], [0.0]]]),
        W_V=np.array([[[1.0], [1.0]]]), W_O=np.array([[[2.0, 0.0]]]),
    )
    mlp = MLPWeights(np.array([[1.0], [-1.0]]), np.array([0.5]), np.array([[0.0, 3.0]]), np.array([0.0, 0.0]))
    W_U = np.eye(2)
    return TransformerWeights(W_E, (Block(attn, mlp),), W_U, np.array([0.0, 0.1]), meta)


def test_forward_matches_hand_computation():
    weights = tiny_model()
    # prompt [0, 2]: x0 = (1,0), x1 = (1,1). q1 = 1, k0 = 1, k1 = 1 -> pattern (1/2, 1/2)
    # v0 = 1, v1 = 2 -> mixed 1.5 -> W_O -> (3, 0); x1 = (4, 1)
    # MLP: relu(4 - 1 + 0.5) = 3.5 -> (0, 10.5); x1 = (4, 11.5); logits = (4, 11.6)
    np.testing.assert_allclose(forward(weights, np.array([[0, 2]])), [[4.0, 11.6]])


def test_causal_mask_hides_later_positions():
    weights = random_weights(N=5, R=2, seed=3)
    x = embed(weights, np.array([[0, 5, 6], [0, 5, 1]]))
    out = attention(weights.blocks[0].attn, x, weights.meta.attn_scale, last_only=False)
    np.testing.assert_allclose(out[0, :2], out[1, :2])  # positions 0, 1 cannot see position 2
    assert not np.allclose(out[0, 2], out[1, 2])


def test_last_only_shortcut_equals_full_computation():
    weights = random_weights(N=5, R=2, seed=4)
    x = embed(weights, np.array([[0, 5, 6, 2]]))
    full = attention(weights.blocks[1].attn, x, weights.meta.attn_scale, last_only=False)
    last = attention(weights.blocks[1].attn, x, weights.meta.attn_scale, last_only=True)
    np.testing.assert_allclose(full[:, -1:], last, rtol=0, atol=1e-12)


def test_softmax_is_stable_for_huge_scores():
    weights = random_weights(N=4, R=1, seed=5)
    big = TransformerWeights(weights.W_E * 1e3, weights.blocks, weights.W_U, weights.b_U, weights.meta, weights.W_pos)
    assert np.all(np.isfinite(forward(big, np.array([[0, 4, 1]]))))


def test_positional_embeddings_change_the_output():
    weights = random_weights(N=4, R=1, seed=6)
    without = TransformerWeights(weights.W_E, weights.blocks, weights.W_U, weights.b_U, weights.meta, None)
    tokens = np.array([[0, 4]])
    assert not np.allclose(forward(weights, tokens), forward(without, tokens))


def test_bad_tokens_are_rejected():
    weights = random_weights(N=4, R=1, seed=0)
    with pytest.raises(ValueError, match="tokens must lie in"):
        forward(weights, np.array([[0, 99]]))
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        forward(weights, np.zeros((1, 9), dtype=int))
    with pytest.raises(ValueError, match="2-D"):
        forward(weights, np.array([0, 1]))


def test_weights_container_validates_shapes_and_values():
    w = tiny_model()
    with pytest.raises(ValueError, match=r"W_U has shape \[2, 3\], expected \[2, 2\]"):
        TransformerWeights(w.W_E, w.blocks, np.zeros((2, 3)), w.b_U, w.meta)
    bad = w.W_E.copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"W_E holds a non-finite value \(nan\) at index \(1, 1\)"):
        TransformerWeights(bad, w.blocks, w.W_U, w.b_U, w.meta)
    with pytest.raises(ValueError, match="float64"):
        TransformerWeights(w.W_E.astype(np.float32), w.blocks, w.W_U, w.b_U, w.meta)
    with pytest.raises(ValueError, match="n_layers is 1 but 2 blocks"):
        TransformerWeights(w.W_E, w.blocks * 2, w.W_U, w.b_U, w.meta)
