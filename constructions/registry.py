"""The one registry of constructions: build, sizes, check, compare and the docs tables all read it.

Each entry names a construction (its CLI name and its label K1..K5), the codebooks it takes, the
options it reads, the shape of the weights it builds (closed form, no allocation: what ``sizes``
prints and what the build refuses before allocating) and the cases ``georecall check`` runs.
A construction added here appears in every command at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from georecall.constructions.associative import build_associative_multi_hop
from georecall.constructions.base import Construction, StreamedConstruction
from georecall.constructions.block_superposition import build_block_superposition, stream_block_superposition
from georecall.constructions.chains import build_chain_of_thought, build_multi_hop_chains
from georecall.constructions.codebooks import CODEBOOKS, make_codebook, multilevel_d0, rademacher_d0
from georecall.constructions.planar import build_block_planar
from georecall.constructions.shared_space import build_shared_space, code_min_hamming, shared_space_sufficient_d
from georecall.theory.checks import InputError, require_int
from georecall.theory.instance import Instance

BUILD_MEMORY_LIMIT_BYTES = 8 * 2**30  # a third of this machine: refuse before allocating, never thrash


@dataclass(frozen=True)
class Shape:
    """The arrays a construction builds: d_model, (n_heads, d_head, d_mlp) per layer, W_pos rows, special tokens."""

    d_model: int
    layers: tuple
    n_ctx: int = 0
    specials: int = 0
    subject_dim: int = 0

    def parameter_counts(self, N: int, R: int) -> dict:
        """Dense entry counts: the N subject rows of W_E, and every other array (docs/FORMAT.md §2)."""
        D = self.d_model
        per_layer = sum(4 * h * D * e + 2 * D * m + m + D for h, e, m in self.layers)
        shared = (R + self.specials) * D + self.n_ctx * D + per_layer + D * N + N
        return {"subject_params": N * D, "shared_params": shared}

    def float64_bytes(self, N: int, R: int) -> int:
        counts = self.parameter_counts(N, R)
        return 8 * (counts["subject_params"] + counts["shared_params"])


@dataclass(frozen=True)
class CodeSize:
    """What a shape needs of a codebook, known before its codes exist: the code length d0 and a
    lower bound on the least Hamming distance between two codes (1 unless measured)."""

    name: str
    d0: int
    h_min: int = 1


def code_size(codebook: str, N: int, precision: int = 1, delta: float = 1e-3) -> CodeSize:
    """d0 of a codebook from its closed form: nothing N-sized is allocated."""
    if codebook not in CODEBOOKS:
        raise InputError(f"codebook must be one of {', '.join(CODEBOOKS)}; got {codebook!r}")
    if codebook == "rademacher":
        return CodeSize(codebook, rademacher_d0(N, delta))
    return CodeSize(codebook, multilevel_d0(require_int("N", N, minimum=2), 1 if codebook == "binary" else precision))


@dataclass(frozen=True)
class Entry:
    name: str
    label: str
    title: str
    build: Callable  # (instance, codebook, options) -> Construction
    shape: Callable  # (N, R, CodeSize, options) -> Shape
    codebooks: tuple = CODEBOOKS
    reads: tuple = ()  # the options this construction reads beyond the codebook's
    defaults: dict = field(default_factory=dict)  # options `sizes` and the docs use
    check: tuple = ()  # (codebook, precision, N, R, options) cases of `georecall check`
    stream: Callable | None = None  # (instance, precision) -> StreamedConstruction, for the streamed codebooks
    stream_codebooks: tuple = ()


def _chain_count(R: int, hops: int, kind: str) -> int:
    return R**hops if kind == "exact" else sum(R**length for length in range(1, hops + 1))


def _routing_shape(R: int, d0: int, chains: int, slots: int, n_ctx: int, specials: int, slot_readout: bool = False) -> Shape:
    D = n_ctx + chains * d0 + R + slots * R + (d0 if slot_readout else 0)
    d_mlp = 2 * chains * d0 + (0 if slot_readout else 2 * d0)
    return Shape(D, ((1 + slots, max(n_ctx, chains * d0, R), d_mlp),), n_ctx, specials, chains * d0)


def _chains_shape(N, R, book, options):
    hops, kind = options.get("hops", 1), options.get("chains", "exact")
    return _routing_shape(R, book.d0, _chain_count(R, hops, kind), hops, hops + 1, 0)


def _cot_shape(N, R, book, options):
    hops = options.get("hops", 1)
    steps_asked = options.get("cot_steps") or hops
    h = math.ceil(hops / steps_asked)
    return _routing_shape(R, book.d0, _chain_count(R, h, "up_to"), h, hops + 1 + math.ceil(hops / h), 2)


def _associative_shape(N, R, book, options):
    hops, d0 = options.get("hops", 1), book.d0
    D = (hops + 1) + R * d0 + R + hops * R + d0
    first = (1 + hops, max(hops + 1, R * d0, R))
    layers = [(first if layer == 1 else (1, 1)) + ((2 * R * d0 + N * R) if layer < hops else 2 * R * d0,)
              for layer in range(1, hops + 1)]
    return Shape(D, tuple(layers), hops + 1, 0, R * d0)


def _shared_d(N, R, book, options) -> int:
    d = options.get("d")
    return d if d is not None else shared_space_sufficient_d(N, R, book.d0, book.h_min, options.get("delta", 1e-3))


def _cot_build(instance, book, options):
    hops = require_int("hops", options.get("hops", 1), minimum=1)
    steps = hops if options.get("cot_steps") is None else require_int("cot_steps", options["cot_steps"], minimum=1, maximum=hops)
    return build_chain_of_thought(instance, book, hops, math.ceil(hops / steps))


REGISTRY = {entry.name: entry for entry in (
    Entry("block", "K1", "single hop, block superposition (output slot)",
          lambda instance, book, o: build_block_superposition(instance, book),
          lambda N, R, book, o: Shape(R * book.d0 + R + book.d0, ((1, R * book.d0, 2 * R * book.d0),), 0, 0, R * book.d0),
          check=(("binary", 1, 256, 4, {}), ("multilevel", 2, 256, 4, {}), ("multilevel", 4, 256, 4, {}), ("rademacher", 1, 256, 4, {}),
                 ("binary", 1, 4096, 8, {}), ("multilevel", 2, 4096, 8, {}), ("rademacher", 1, 4096, 8, {})),
          stream=stream_block_superposition, stream_codebooks=("binary", "multilevel")),
    Entry("planar", "K1′", "single hop, read in place, planar relation code (d_model = R d0 + 2)",
          lambda instance, book, o: build_block_planar(instance, book),
          lambda N, R, book, o: Shape(R * book.d0 + 2, ((1, R * book.d0, 2 * (R + 1) * book.d0),), 0, 0, R * book.d0),
          check=(("binary", 1, 256, 4, {}), ("multilevel", 2, 4096, 8, {}))),
    Entry("shared-space", "K2", "single hop, shared-space superposition at Theorem 3's d",
          lambda instance, book, o: build_shared_space(instance, book, _shared_d(instance.N, instance.R, _measured(book), o),
                                                       o.get("maps_seed", 0), o.get("delta", 1e-3)),
          lambda N, R, book, o: (lambda d: Shape(d + R + book.d0, ((1, d, 2 * R * book.d0),), 0, 0, d))(_shared_d(N, R, book, o)),
          codebooks=("binary", "rademacher"), reads=("d", "maps_seed", "delta"),
          check=(("binary", 1, 64, 2, {}), ("binary", 1, 256, 4, {}))),
    Entry("chains", "K3", "k hops without chain-of-thought, one block per chain",
          lambda instance, book, o: build_multi_hop_chains(instance, book, o.get("hops", 1), o.get("chains", "exact")),
          _chains_shape, reads=("hops", "chains"), defaults={"hops": 2},
          check=(("binary", 1, 256, 3, {"hops": 2}), ("binary", 1, 64, 2, {"hops": 3, "chains": "up_to"}))),
    Entry("associative", "K4", "k hops, associative route (facts in k lookup MLPs)",
          lambda instance, book, o: build_associative_multi_hop(instance, book, o.get("hops", 1)),
          _associative_shape, codebooks=("binary", "rademacher"), reads=("hops",), defaults={"hops": 2},
          check=(("binary", 1, 256, 3, {"hops": 2}),)),
    Entry("cot", "K5", "chain-of-thought for every depth <= k, full or partial",
          _cot_build, _cot_shape, reads=("hops", "cot_steps"), defaults={"hops": 2},
          check=(("binary", 1, 256, 3, {"hops": 3}), ("binary", 1, 64, 2, {"hops": 4, "cot_steps": 2}))),
)}
CONSTRUCTIONS = tuple(REGISTRY)


def _measured(book) -> CodeSize:
    return CodeSize(book.name, book.d0, code_min_hamming(book))


def entry(name: str) -> Entry:
    if name not in REGISTRY:
        raise InputError(f"construction must be one of {', '.join(CONSTRUCTIONS)}; got {name!r}")
    return REGISTRY[name]


def construction_shape(name: str, N: int, R: int, code: CodeSize, **options) -> Shape:
    """The shape ``build_construction`` would build, without building it (shared-space's d with
    the code distance ``code.h_min``; 1 bounds it from below, so the d is an upper estimate)."""
    return entry(name).shape(N, R, code, options)


def refuse_out_of_reach(name: str, N: int, R: int, code: CodeSize, options: dict, streamed: bool = False) -> Shape:
    """The shape, or InputError (before anything N-sized is allocated) when its arrays would not fit;
    ``streamed``: what build_streamed holds instead (streams(name, code.name) must hold)."""
    shape = entry(name).shape(N, R, code, options)
    if streamed:
        estimate = streamed_bytes(N, R, code)
        if estimate > BUILD_MEMORY_LIMIT_BYTES:
            raise InputError(f"{name} at N = {N:,}, R = {R:,} built streamed would hold about {estimate / 2**30:,.3g} GiB "
                             f"(limit {BUILD_MEMORY_LIMIT_BYTES / 2**30:.0f} GiB); lower N or R")
        return shape
    estimate = shape.float64_bytes(N, R)
    if estimate > BUILD_MEMORY_LIMIT_BYTES:
        raise InputError(f"{name} at N = {N:,}, R = {R:,}: d_model = {shape.d_model:,} and the MLP widths "
                         f"{[m for _, _, m in shape.layers]} would need about {estimate / 2**30:,.3g} GiB "
                         f"(limit {BUILD_MEMORY_LIMIT_BYTES / 2**30:.0f} GiB); lower N, R, hops or the precision")
    return shape


def streams(name: str, codebook: str) -> bool:
    """Whether ``name`` with ``codebook`` can be written a block at a time (build_streamed)."""
    chosen = entry(name)
    return chosen.stream is not None and codebook in chosen.stream_codebooks


def streamed_bytes(N: int, R: int, code: CodeSize) -> int:
    """What build_streamed holds: the facts twice while they are drawn (int64), b_U twice (float64 and
    narrowed), and the blocks in flight (codes are made from the facts a block at a time)."""
    return 16 * N * R + 16 * N + 64 * 2**20


def build_streamed(name: str, instance: Instance, *, codebook: str = "binary", precision: int = 1) -> StreamedConstruction:
    """``name`` with ``codebook`` (streams(name, codebook) must hold) as arrays its file writer takes a block
    at a time (formats.containers.save_arrays): the same file as build_construction's, in a fraction of its memory."""
    if not streams(name, codebook):
        raise InputError(f"construction {name!r} with codebook {codebook!r} is not built streamed; use build_construction")
    refuse_out_of_reach(name, instance.N, instance.R, code_size(codebook, instance.N, precision), {}, streamed=True)
    return entry(name).stream(instance, 1 if codebook == "binary" else require_int("precision", precision, minimum=1, maximum=16))


def build_construction(
    name: str,
    instance: Instance,
    *,
    codebook: str = "binary",
    precision: int = 1,
    delta: float = 1e-3,
    codebook_seed: int = 0,
    d: int | None = None,
    maps_seed: int = 0,
    hops: int = 1,
    chains: str = "exact",
    cot_steps: int | None = None,
) -> Construction:
    """``name`` is one of CONSTRUCTIONS (the registry above: K1 "block", K1' "planar", K2
    "shared-space", K3 "chains", K4 "associative", K5 "cot"). codebook: "binary", "multilevel"
    (``precision`` bits per coordinate) or "rademacher" (d0 from ``delta``, drawn from
    ``codebook_seed``). ``delta`` is a failure probability, here as everywhere in georecall."""
    chosen = entry(name)
    if codebook not in chosen.codebooks:
        raise InputError(f"codebook must be one of {', '.join(chosen.codebooks)} for construction {name!r}; got {codebook!r}")
    options = {"delta": delta, "d": d, "maps_seed": maps_seed, "hops": hops, "chains": chains, "cot_steps": cot_steps}
    refuse_out_of_reach(name, instance.N, instance.R, code_size(codebook, instance.N, precision, delta), options)
    book = make_codebook(codebook, instance.N, precision=precision, delta=delta, seed=codebook_seed)
    return chosen.build(instance, book, options)


def check_cases() -> list[tuple]:
    """Every (construction, codebook, precision, N, R, options) case ``georecall check`` runs, in registry order."""
    return [(name, *case) for name, e in REGISTRY.items() for case in e.check]
