"""Compare a construction's spend against every applicable lower bound.

Spend at precision p (bits per stored number):
- subject bits per subject: subject_embedding_dim * p (the ``d p`` of the generic bound);
- fact-carrying bits: N * subject_embedding_dim * p, plus shared_params * p when the shared
  weights depend on the facts (then only the any-model bound applies).

ratio = spent / needed. Verdict on the primary bound (generic if the shared weights are
fact-independent, else any-model): ``impossible`` if any ratio < 1 (the claim beats a proven
bound), ``tight`` if the primary ratio <= tight_factor, ``slack`` otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import mpmath

from georecall.bounds.any_model import any_model_min_bits
from georecall.bounds.generic import generic_min_bits
from georecall.bounds.numbers import mp
from georecall.theory.checks import InputError, require_int
from georecall.theory.io import LoadedModel
from georecall.theory.spec import ConstructionSpec, checked_spec, spec_from_weights

TIGHT_FACTOR = 2.0


@dataclass(frozen=True)
class BoundCheck:
    name: str
    statement: str
    needed_bits: float
    spent_bits: float
    ratio: float
    holds: bool


@dataclass
class Comparison:
    construction: str
    precision: int
    N: int
    R: int
    hops: int
    cot: bool
    subject_bits_per_subject: float
    subject_bits_total: float
    shared_bits: float
    shared_bits_nonzero: float
    fact_independent_shared: bool
    bounds: list
    bound: str
    ratio: float
    verdict: str
    tight_factor: float
    notes: list = field(default_factory=list)

    def to_json_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return f"{self.construction} at p={self.precision}: {self.verdict} (ratio {self.ratio:.4g} against the {self.bound} bound)"

    def __repr__(self) -> str:
        return f"Comparison({self.summary()})"


def _spec_of(subject) -> tuple[ConstructionSpec, list]:
    if isinstance(subject, ConstructionSpec):
        return subject, []
    if isinstance(subject, LoadedModel):
        if subject.spec is not None:
            return checked_spec(subject.spec, subject.weights), []
        spec = spec_from_weights(
            subject.weights,
            name=str(subject.weights.meta.extra.get("construction", "unknown")),
            bits_per_coordinate=float("nan"),
            guaranteed_margin=float("nan"),
            fact_independent_shared=False,
        )
        return spec, ["the file carries no spec: its shared weights are assumed to depend on the facts"]
    raise InputError(f"compare takes a ConstructionSpec or a LoadedModel, got {type(subject).__name__}")


def compare(subject, precision: int | None = None, tight_factor: float = TIGHT_FACTOR) -> Comparison:
    """Bits spent by ``subject`` (a spec or a loaded weights file) against the lower bounds at precision p.

    ``precision`` defaults to the spec's bits_per_coordinate.
    """
    spec, notes = _spec_of(subject)
    if precision is None:
        if not mpmath.isfinite(spec.bits_per_coordinate):
            raise InputError("precision must be given: the file declares no bits per coordinate")
        precision = int(mpmath.ceil(spec.bits_per_coordinate))
    precision = require_int("precision", precision, minimum=1)
    chains = spec.extra.get("chains", "exact")
    d_bits = spec.subject_embedding_dim * precision
    subject_total = spec.N * d_bits
    shared_bits = spec.shared_params * precision
    fact_bits = subject_total if spec.fact_independent_shared else subject_total + shared_bits

    checks = []
    with mp():
        needed = any_model_min_bits(spec.N, spec.R)
        checks.append(_check("any_model", "P p >= R log2(N!) over every fact-carrying parameter", needed, fact_bits))
        if spec.fact_independent_shared:
            needed = generic_min_bits(spec.N, spec.R, spec.hops, spec.cot, chains)
            kind = "chain-of-thought" if spec.cot else ("single-hop" if spec.hops == 1 else f"{spec.hops}-hop ({chains} chains)")
            checks.append(_check("generic", f"d p >= log2(#answer tuples of one subject), {kind}", needed, d_bits))
        else:
            notes.append("fact-dependent shared weights: compared against the any-model bound only")
    if spec.bits_per_coordinate > precision:
        notes.append(
            f"the spec declares {spec.bits_per_coordinate:g} bits per subject coordinate; at p = {precision} its "
            "subject embeddings cannot be stored exactly, so exact recall at this precision is not established"
        )
    primary = checks[-1]
    broken = [c for c in checks if not c.holds]
    if broken:
        verdict = "impossible"
        for c in broken:
            notes.append(
                f"spends {c.spent_bits:.6g} bits where the {c.name} bound proves {c.needed_bits:.6g} are needed: "
                "a bug, or a hidden precision assumption"
                + (f" (the spec declares {spec.bits_per_coordinate:g} bits per coordinate, compared at p = {precision})"
                   if spec.bits_per_coordinate > precision else "")
            )
    elif primary.ratio <= tight_factor:
        verdict = "tight"
    else:
        verdict = "slack"
    return Comparison(
        construction=spec.name,
        precision=precision,
        N=spec.N,
        R=spec.R,
        hops=spec.hops,
        cot=spec.cot,
        subject_bits_per_subject=float(d_bits),
        subject_bits_total=float(subject_total),
        shared_bits=float(shared_bits),
        shared_bits_nonzero=float(spec.shared_params_nonzero * precision),
        fact_independent_shared=spec.fact_independent_shared,
        bounds=[asdict(c) for c in checks],
        bound=primary.name,
        ratio=primary.ratio,
        verdict=verdict,
        tight_factor=tight_factor,
        notes=notes,
    )


def _check(name: str, statement: str, needed, spent) -> BoundCheck:
    with mp():
        needed = mpmath.mpf(needed)
        ratio = mpmath.inf if needed <= 0 else mpmath.mpf(spent) / needed
        return BoundCheck(name, statement, float(needed), float(spent), float(ratio), bool(spent >= needed))
