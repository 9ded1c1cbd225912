"""Exact float64 evaluation, proven (docs/theorems/soundness.md, Lemma S8).

Where every value entering a stage is a multiple of 2^E and every partial product and partial
sum of every association stays below 2^(53 + E), each operation's exact result is a float64
number, so every conforming evaluation computes the stage exactly, in any order: its radius is 0.
``single_hop_is_exact(weights)`` proves this for every stage of every single-hop prompt [s, r]
at once, from magnitude envelopes (the largest |value| over all subjects, coordinate by
coordinate) and exponent floors (``exponent_floor``). Integer constructions (K1, K1') pass at
every size whose values stay below 2^53; attention must be uniform (structurally zero scores),
which makes the pattern exactly 1/2 in every evaluation (exp(0) / (exp(0) + exp(0))).
"""

from __future__ import annotations

import numpy as np

from georecall.verify.error_model import OVERFLOW_LIMIT
from georecall.theory.arrays import as_single, nonzero_rows, read_columns, row_blocks, stored
from georecall.theory.weights import TransformerWeights

NO_FLOOR = 10**6  # the floor of an all-zero array: every zero product is exact
LOWEST_FLOOR = -1000  # below it a value could be subnormal; the lemma is not used there
_PREFIX = 1 << 16  # entries whose floor is found bit by bit before the rest is tested at it


def _floor_bits(values: np.ndarray) -> int:
    """min over non-zero entries of the exponent of the lowest set bit, read from the bits."""
    bits = np.ascontiguousarray(values, dtype=np.float64).reshape(-1).view(np.uint64) & np.uint64(0x7FFF_FFFF_FFFF_FFFF)
    bits = bits[bits != 0]
    if not len(bits):
        return NO_FLOOR
    field = (bits >> np.uint64(52)).astype(np.int64)
    significand = (bits & np.uint64((1 << 52) - 1)).astype(np.int64)
    significand = np.where(field > 0, significand | (1 << 52), significand)  # the implicit bit of normal numbers
    lowest = significand & -significand
    trailing = np.frexp(lowest.astype(np.float64))[1] - 1  # a power of two <= 2^52: exact
    return int((np.maximum(field, 1) - 1075 + trailing).min())


def _all_multiples(values: np.ndarray, floor: int) -> bool:
    """Every entry is an integer multiple of 2^floor (scaling by a power of two is exact; an
    entry scaled out of range is caught: a zero that was not zero, or an infinity)."""
    if floor == 0:  # the common case, integers: no scaling, two passes
        return bool(np.array_equal(np.rint(values), values))
    scaled = np.ldexp(values, -floor)
    whole = np.array_equal(np.rint(scaled), scaled)
    if floor > 0:  # scaling down: a non-multiple may underflow to a zero that looks whole
        return whole and bool(np.all((scaled != 0) | (values == 0)))
    return whole and bool(np.all(np.isfinite(scaled)))  # scaling up: an entry may overflow


def exponent_floor(values: np.ndarray, at_most: int = NO_FLOOR) -> int:
    """min(at_most, the largest E with every entry an integer multiple of 2^E) (NO_FLOOR when all are 0).

    The floor of a prefix is read bit by bit; the rest is tested at it in one vectorised pass
    (the common case: one codebook throughout), and read bit by bit only if that test fails.
    ``at_most`` (a floor found already, block by block) is tested first: when every entry is a
    multiple of 2^at_most, nothing is read bit by bit.
    """
    flat = np.asarray(values).reshape(-1)
    if flat.dtype not in (np.float32, np.float64):  # float32 is tested as it is: scaling by 2^k is as exact there
        flat = flat.astype(np.float64)
    at_most = min(at_most, NO_FLOOR)  # NO_FLOOR stands for "no entry but 0": nothing lies above it
    if at_most != NO_FLOOR and all(_all_multiples(flat[b : b + (1 << 20)], at_most) for b in range(0, len(flat), 1 << 20)):
        return at_most
    return min(at_most, _floor_of(flat))


def _floor_of(flat: np.ndarray) -> int:
    floor = _floor_bits(flat[:_PREFIX])
    rest = flat[_PREFIX:]
    if not len(rest):
        return floor
    step = 1 << 20
    for begin in range(0, len(rest), step):
        part = rest[begin : begin + step]
        if floor == NO_FLOOR or not _all_multiples(part, floor):
            floor = min(floor, _floor_bits(part))
    return floor


def _below(envelope, floor: int) -> bool:
    """Every value of an envelope lies below 2^(53 + floor), and below the overflow limit. The
    envelope is a float64 product of magnitudes: 1 + 2^-20 covers its rounding (gamma_n for any
    n < 2^30), and a floor >= LOWEST_FLOOR keeps every non-zero monomial of it normal."""
    largest = float(np.max(envelope, initial=0.0)) * (1.0 + 2.0**-20)
    return largest < min(2.0 ** min(53 + floor, 1023), OVERFLOW_LIMIT)


def _chain_is_exact(first: np.ndarray, first_floor: int, weights: list[tuple[np.ndarray, int]], scalar_floor: int) -> tuple[bool, np.ndarray, int]:
    """A chain ``scalar * first @ W_1 @ ... @ W_k`` (first: magnitude rows, W_i stored) in any
    association: every contiguous sub-product below 2^(53 + its floor). The movable scalar is 1
    or 1/2, so multiplying by it is exact; its floor is charged to every sub-product anyway.
    Returns (exact, |first| |W_1| ... |W_k| row by row, the chain's floor)."""
    first = np.atleast_2d(first)
    factors = [(first, first_floor)] + [(np.abs(w), f) for w, f in weights]
    # No shortcut for a zero factor: every monomial is then 0, but a sub-product without it (W_V W_O)
    # is still computed by some association, and may round or overflow. A sub-product with it has
    # magnitude 0 and a floor near NO_FLOOR, which passes.
    for i in range(len(factors)):
        product, floor = factors[i][0], factors[i][1] + scalar_floor
        for j in range(i + 1, len(factors)):
            product, floor = product @ factors[j][0], floor + factors[j][1]
            if floor < LOWEST_FLOOR or not _below(product, floor):
                return False, product, floor
    full = factors[0][0]
    for w, _ in factors[1:]:
        full = full @ w
    return True, full, sum(f for _, f in factors) + scalar_floor


class _Box:
    """Signed intervals [lo, hi] of a position's residual, one row per relation (or one row shared
    by all prompts), and the exponent floor every value of it is a multiple of."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, floor: int):
        self.lo, self.hi, self.floor = np.atleast_2d(lo), np.atleast_2d(hi), floor

    @property
    def magnitude(self) -> np.ndarray:
        return np.maximum(np.abs(self.lo), np.abs(self.hi))

    def times(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[lo, hi] @ W, rounded outward: a slack of 2^-40 of the magnitudes covers float64's rounding."""
        positive, negative = np.maximum(W, 0.0), np.minimum(W, 0.0)
        slack = (self.magnitude @ np.abs(W)) * 2.0**-40
        return self.lo @ positive + self.hi @ negative - slack, self.hi @ positive + self.lo @ negative + slack


def _scores_structurally_zero(attn, supports: list[np.ndarray], queries: list[int], scale: float) -> bool:
    """Every score of the query positions is 0 in every evaluation: for each head, the columns a
    query vector can reach meet none a key can reach, so every product has a stored or
    structural zero factor (a coordinate whose envelope is 0 is exactly 0 for every prompt)."""
    if scale == 0.0:
        return True
    for h in range(attn.n_heads):
        reach_q = [np.any(attn.W_Q[h][support], axis=0) for support in supports]
        reach_k = [np.any(attn.W_K[h][support], axis=0) for support in supports]
        if any(np.any(reach_q[i] & reach_k[j]) for i in queries for j in range(i + 1)):
            return False
    return True


def _scores_in_range(attn, boxes: list["_Box"], scale: float) -> bool:
    """Structurally zero scores are 0 in every evaluation that does not overflow on the way: every
    sub-product of scale x_i W_Q W_K^T x_j^T (W_Q W_K^T among them) must stay below the limit."""
    for h in range(attn.n_heads):
        for box in boxes:
            factors = [box.magnitude.max(axis=0)[None, :], np.abs(attn.W_Q[h]), np.abs(attn.W_K[h]).T, box.magnitude.max(axis=0)[:, None]]
            for i in range(len(factors)):
                product = factors[i]
                for j in range(i + 1, len(factors)):
                    product = product @ factors[j]
                    if not float(np.max(product, initial=0.0)) * max(1.0, abs(scale)) * (1.0 + 2.0**-20) < OVERFLOW_LIMIT:
                        return False
    return True


_AHEAD: dict[int, bool] = {}  # id(weights) -> an answer decided ahead (verify.run), taken by the next call


def decide_ahead(weights: TransformerWeights) -> None:
    """Decide Lemma S8 for ``weights`` now (on another thread, say) for the next single_hop_is_exact."""
    _AHEAD[id(weights)] = _single_hop_is_exact(weights)


def forget_ahead(weights: TransformerWeights) -> None:
    """Drop an answer decided ahead and not taken: the arrays may change before the next call."""
    _AHEAD.pop(id(weights), None)


def single_hop_is_exact(weights: TransformerWeights) -> bool:
    """``_single_hop_is_exact``, or the answer ``decide_ahead`` left for this call (taken once)."""
    ahead = _AHEAD.pop(id(weights), None)
    return _single_hop_is_exact(weights) if ahead is None else ahead


@np.errstate(over="ignore", invalid="ignore")  # an envelope that overflows fails the lemma; it is not a warning
def _single_hop_is_exact(weights: TransformerWeights) -> bool:
    """Lemma S8 for every single-hop prompt [s, N + r]: every stage of every conforming
    evaluation is exact, so the float64 logits are the exact logits and every radius is 0.

    The subject position is one interval per coordinate over all subjects; the relation position
    is one row per relation, so a ReLU unit that relation r's gate shuts (its pre-activation is
    <= 0 for every subject) contributes exactly 0 to r's prompts.
    """
    if weights.W_pos is not None and weights.W_pos.shape[0] < 2:
        return False
    N, R = weights.meta.N, weights.meta.R
    boxes = []
    for p, (floor, lo, hi) in enumerate((_subject_envelope(weights.W_E, N), _relation_rows(weights.W_E[N : N + R]))):
        if weights.W_pos is not None:
            floor = min(floor, exponent_floor(weights.W_pos[p]))
            largest = np.maximum(np.abs(lo), np.abs(hi)).max(axis=0)
            lo, hi = lo + weights.W_pos[p], hi + weights.W_pos[p]
            if not _below(largest + np.abs(weights.W_pos[p]), floor):  # the sum itself must be exact
                return False
        boxes.append(_Box(lo, hi, floor))
    last = weights.n_layers - 1
    for layer, block in enumerate(weights.blocks):
        attn = block.attn
        queries = [1] if layer == last else [0, 1]  # position 0 attends to itself alone: weight 1
        supports = [np.any(box.magnitude > 0, axis=0) for box in boxes]
        if not (_scores_structurally_zero(attn, supports, queries, weights.meta.attn_scale)
                and _scores_in_range(attn, boxes, weights.meta.attn_scale)):
            return False
        updated = []
        for i in queries:
            z = _attention_box(attn, boxes, i)
            z = None if z is None else _mlp_box(block.mlp, z)
            if z is None:
                return False
            updated.append(z)
        boxes = updated
    return _logits_are_exact(weights, boxes[-1])


SUBJECT_BLOCK = 1 << 12  # subject rows widened at a time (W_E may be kept narrow); 4,096 keeps each block in cache: 0.96 s to 0.61 s at 2^20


def _subject_envelope(W_E, N: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(exponent floor, coordinate minima, coordinate maxima) of the subject rows, a block of rows at a time."""
    floor, lo, hi = NO_FLOOR, None, None
    for _, block in row_blocks(stored(W_E)[:N], SUBJECT_BLOCK):  # a mapped W_E's pages released as it goes
        rows = as_single(block)  # float16 read as float32, exactly: 8 ms to 1.2 ms a block of 4,096 rows at d_model 224
        floor = exponent_floor(rows, at_most=floor)
        low, high = rows.min(axis=0), rows.max(axis=0)
        lo, hi = (low, high) if lo is None else (np.minimum(lo, low), np.maximum(hi, high))
    return floor, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)


def _relation_rows(rows: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    return exponent_floor(rows), rows, rows


def _logits_are_exact(weights: TransformerWeights, y: "_Box", columns: int = 1 << 16) -> bool:
    """x W_U + b_U in any order, read on W_U's non-zero rows, a block of columns at a time (W_U
    has one column per subject: no copy of it is made)."""
    rows = nonzero_rows(weights.W_U)
    magnitude = y.magnitude[:, rows]
    floor, largest = exponent_floor(weights.b_U), 0.0
    for c0 in range(0, weights.W_U.shape[1], columns):
        block = as_single(read_columns(weights.W_U, rows, c0, c0 + columns, as_stored=True))  # float16 as float32, exactly
        floor = min(floor, y.floor + exponent_floor(block))
        largest = max(largest, float(np.max(magnitude @ np.abs(block) + np.abs(weights.b_U[c0 : c0 + columns]), initial=0.0)))
    return floor >= LOWEST_FLOOR and _below(np.array([largest]), floor)


def _attention_box(attn, boxes: list[_Box], i: int):
    """z_i = x_i + sum_h sum_{j <= i} A_ij (x_j W_V[h]) W_O[h] with uniform A (1 or 1/2), or None
    when some association of it could round."""
    share, share_floor = (1.0, 0) if i == 0 else (0.5, -1)
    x = boxes[i]
    lo, hi, floor = x.lo.copy(), x.hi.copy(), x.floor
    magnitude = x.magnitude.copy()
    for h in range(attn.n_heads):
        head = [(attn.W_V[h], exponent_floor(attn.W_V[h])), (attn.W_O[h], exponent_floor(attn.W_O[h]))]
        for j in range(i + 1):
            exact, product, chain_floor = _chain_is_exact(boxes[j].magnitude, boxes[j].floor, head, share_floor)
            if not exact:
                return None
            if chain_floor >= NO_FLOOR // 2:
                continue  # a zero factor: every monomial is exactly 0 (and every sub-product was checked)
            part_lo, part_hi = boxes[j].times(attn.W_V[h] @ attn.W_O[h])  # in range: W_V W_O's magnitudes passed
            lo, hi = lo + share * part_lo, hi + share * part_hi
            magnitude = magnitude + share * product
            floor = min(floor, chain_floor)
    if not _below(magnitude, floor):
        return None
    return _Box(lo, hi, floor)


def _mlp_box(mlp, z: _Box):
    """z + ReLU(z W_in + b_in) W_out + b_out as a box, or None when some association could round."""
    exact, pre_magnitude, pre_floor = _chain_is_exact(z.magnitude, z.floor, [(mlp.W_in, exponent_floor(mlp.W_in))], 0)
    pre_floor = min(pre_floor, exponent_floor(mlp.b_in))
    if not exact or pre_floor < LOWEST_FLOOR or not _below(pre_magnitude + np.abs(mlp.b_in), pre_floor):
        return None
    pre_lo, pre_hi = z.times(mlp.W_in)
    hidden = _Box(np.maximum(pre_lo + mlp.b_in, 0.0), np.maximum(pre_hi + mlp.b_in, 0.0), pre_floor)  # a shut unit is exactly 0
    exact, out_magnitude, out_floor = _chain_is_exact(hidden.magnitude, hidden.floor, [(mlp.W_out, exponent_floor(mlp.W_out))], 0)
    floor = min(z.floor, out_floor, exponent_floor(mlp.b_out))
    if not exact or floor < LOWEST_FLOOR or not _below(z.magnitude + out_magnitude + np.abs(mlp.b_out), floor):
        return None
    out_lo, out_hi = hidden.times(mlp.W_out)
    return _Box(z.lo + out_lo + mlp.b_out, z.hi + out_hi + mlp.b_out, floor)
