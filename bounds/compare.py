"""Compare a construction's spend against every lower bound whose proof covers its query set.

Spend at precision p (bits per stored number):
- subject bits per subject: subject_embedding_dim * p (the ``d p`` of the generic bound), and,
  as a second ratio, d_model * p: the paper's d is the residual width;
- fact-carrying bits: N * subject_embedding_dim * p, plus shared_params * p when the shared
  weights depend on the facts (then only the any-model bound applies).

Which bound (docs/theorems/bounds.md B7): the any-model count of B2, or Lemma B2' for chains of
length exactly k >= 2; the generic count of B3 (single hop), B4 (k hops, exact or <= k) or B5/B5'
(full or partial chain-of-thought). A construction that fails with probability f > 0 is held to
the random-instance form with success = 1 - f where that form is proved, and to no bound where it
is not. A bound that is vacuous (needs 0 bits) is reported as such and carries no ratio.

Verdict: ``impossible`` if some non-vacuous bound is beaten (spent < needed on subject
coordinates or fact-carrying bits); ``unbounded`` if no bound applies or every one is vacuous;
otherwise ``tight`` if the stricter ratio, max(subject, d_model), is at most tight_factor,
``slack`` if not.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import mpmath

from georecall.bounds.any_model import any_model_min_bits
from georecall.bounds.generic import generic_min_bits
from georecall.bounds.numbers import mp
from georecall.theory.checks import InputError, require_int
from georecall.formats.containers import LoadedModel
from georecall.theory.describe import MAX_BITS, coordinate_needing_more_than, describe, measured_spec
from georecall.theory.spec import ConstructionSpec, checked_spec

TIGHT_FACTOR = 2.0


@dataclass(frozen=True)
class BoundCheck:
    """One bound: bits needed and spent; ``ratio`` is spent/needed (None when vacuous), and
    ``ratio_d_model`` the same with d_model in place of the subject dimension (generic only)."""

    name: str
    statement: str
    needed_bits: float
    spent_bits: float
    ratio: float | None
    holds: bool
    vacuous: bool = False
    ratio_d_model: float | None = None
    success: float = 1.0


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
    bound: str | None
    ratio: float | None
    verdict: str
    tight_factor: float
    notes: list = field(default_factory=list)
    ratio_d_model: float | None = None
    d_model: int = 0

    def to_json_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        head = f"{self.construction} at p={self.precision}: {self.verdict}"
        if self.bound is None:
            return f"{head} (no non-vacuous bound covers its query set)"
        if self.ratio_d_model is None:
            return f"{head} (ratio {self.ratio:.4g} against the {self.bound} bound)"
        return (f"{head} (ratio {self.ratio:.4g} on subject coordinates, {self.ratio_d_model:.4g} on d_model = {self.d_model}, "
                f"against the {self.bound} bound)")

    def __repr__(self) -> str:
        return f"Comparison({self.summary()})"


def _spec_of(subject, precision):
    """(the spec compared, notes, the precision): from the file itself where there is one (its own
    spec only as a claim, checked field by field), else the given spec, range-checked."""
    if isinstance(subject, ConstructionSpec):
        _check_bits("bits_per_coordinate", subject.bits_per_coordinate)
        if precision is None:
            if not mpmath.isfinite(subject.bits_per_coordinate):
                raise InputError("precision must be given: the spec declares no bits per coordinate")
            precision = int(mpmath.ceil(subject.bits_per_coordinate))
        return subject, [], precision
    if not isinstance(subject, LoadedModel):
        raise InputError(f"compare takes a ConstructionSpec or a LoadedModel, got {type(subject).__name__}")
    weights, facts, notes = subject.weights, describe(subject.weights), []
    if subject.spec is not None:
        claim = checked_spec(subject.spec, weights)
        _check_claim(claim, weights, facts)
        spec = measured_spec(weights, name=claim.name, guaranteed_margin=claim.guaranteed_margin,
                             failure_probability=claim.failure_probability, fact_independent_shared=claim.fact_independent_shared,
                             subject_embedding_dim=claim.subject_embedding_dim)
        if claim.bits_per_coordinate > facts.bits_per_coordinate:
            notes.append(f"the spec declares {claim.bits_per_coordinate:g} bits per subject coordinate; the file's values need "
                         f"{facts.bits_per_coordinate} (each coordinate takes at most 2^{facts.bits_per_coordinate} values)")
    else:
        spec = measured_spec(weights, name=str(weights.meta.extra.get("construction", "unknown")), guaranteed_margin=float("nan"),
                             fact_independent_shared=False)
        notes.append("the file carries no spec: its shared weights are assumed to depend on the facts")
    if precision is None:
        precision = facts.bits_per_coordinate
    else:
        precision = require_int("precision", precision, minimum=1)
        wider = coordinate_needing_more_than(weights, precision)
        if wider is not None:
            column, count = wider
            raise InputError(f"precision {precision} (--precision) contradicts the file: subject coordinate {column} takes {count:,} "
                             f"distinct values, which need {math.ceil(math.log2(count))} bits; leave --precision out to use the "
                             f"file's own {facts.bits_per_coordinate}")
    return spec, notes, precision


def _check_bits(name: str, bits) -> None:
    if isinstance(bits, bool) or not isinstance(bits, (int, float)) or not (0 < bits <= MAX_BITS):
        raise InputError(f"{name} must be a number in (0, {MAX_BITS}] (a float64 coordinate carries at most 64 bits), got {bits!r}")


def _check_claim(claim: ConstructionSpec, weights, facts) -> None:
    """The semantics a spec claims must be the file's, and its bits per coordinate must hold its values."""
    _check_bits("meta.extra.spec.bits_per_coordinate", claim.bits_per_coordinate)
    if facts.hops > 1 and not facts.cot and claim.extra.get("chains", "exact") != facts.chains:
        raise InputError(f"meta.extra.spec.extra.chains is {claim.extra.get('chains', 'exact')!r} but meta.extra.chains is {facts.chains!r}")
    if facts.cot and claim.extra.get("hops_per_step", 1) != facts.hops_per_step:
        raise InputError(f"meta.extra.spec.extra.hops_per_step is {claim.extra.get('hops_per_step', 1)!r} but meta.extra.hops_per_step "
                         f"is {facts.hops_per_step}")
    wider = coordinate_needing_more_than(weights, claim.bits_per_coordinate)
    if wider is not None:
        raise InputError(f"meta.extra.spec.bits_per_coordinate is {claim.bits_per_coordinate:g} but subject coordinate {wider[0]} takes "
                         f"{wider[1]:,} distinct values")


def compare(subject, precision: int | None = None, tight_factor: float = TIGHT_FACTOR) -> Comparison:
    """Bits spent by ``subject`` (a spec or a loaded weights file) against the lower bounds at precision p.

    For a weights file the query set, sizes and bits per coordinate are read from the file
    (theory.describe); a spec it carries is a claim checked field by field. ``precision``
    defaults to the bits the file's values need (a spec's bits_per_coordinate for a bare spec),
    and a smaller one is refused: it would call a correct file impossible.
    """
    spec, notes, precision = _spec_of(subject, precision)
    precision = require_int("precision", precision, minimum=1)
    chains = spec.extra.get("chains", "exact")
    d_bits = spec.subject_embedding_dim * precision
    subject_total = spec.N * d_bits
    shared_bits = spec.shared_params * precision
    fact_bits = subject_total if spec.fact_independent_shared else subject_total + shared_bits

    cot_h = spec.extra.get("hops_per_step", 1) if spec.cot else 1
    if isinstance(cot_h, bool) or not isinstance(cot_h, int) or cot_h < 1:
        raise InputError(f"spec.extra.hops_per_step must be an integer >= 1, got {cot_h!r}")
    success = 1.0 - float(spec.failure_probability)
    checks = []
    if success <= 0:
        notes.append("the construction guarantees nothing at these sizes (failure probability 1): no bound applies")
    else:
        success = min(1.0, success)
        exact_chains = spec.hops >= 2 and chains == "exact" and not spec.cot
        if success < 1 and exact_chains:
            notes.append(f"the construction fails with probability {spec.failure_probability:g}, and no random-instance (success) "
                         "form is proved for chains of length exactly k: the any-model bound does not apply")
        else:
            what = ("P p >= max((R-1) log2(N!), log2 |T_k|) (Lemma B2')" if exact_chains
                    else "P p >= R log2(N!) - log2(1/success) (B2)")
            needed = any_model_min_bits(spec.N, spec.R, success, spec.hops, chains, spec.cot)
            checks.append(_check("any_model", what + " over every fact-carrying parameter", needed, fact_bits, success=success))
        uniform = spec.hops == 1 or spec.cot and cot_h == 1  # where the success form of the generic bound is proved
        if not spec.fact_independent_shared:
            notes.append("fact-dependent shared weights: compared against the any-model bound only")
        elif success < 1 and not uniform:
            notes.append("no random-instance (success) form is proved for this query set's generic bound: not applied")
        else:
            needed = generic_min_bits(spec.N, spec.R, spec.hops, spec.cot, chains, success, cot_h)
            if spec.cot:
                kind = "chain-of-thought" if cot_h == 1 else f"partial chain-of-thought, {cot_h} hops per token (Lemma B5')"
            else:
                kind = "single-hop" if spec.hops == 1 else f"{spec.hops}-hop ({chains} chains)"
            checks.append(_check("generic", f"d p >= log2(#answer tuples of one subject), {kind}", needed, d_bits,
                                 spent_d_model=spec.d_model * precision, success=success))
    if spec.bits_per_coordinate > precision:
        notes.append(
            f"the spec declares {spec.bits_per_coordinate:g} bits per subject coordinate; at p = {precision} its "
            "subject embeddings cannot be stored exactly, so exact recall at this precision is not established"
        )
    live = [c for c in checks if not c.vacuous]
    for c in checks:
        if c.vacuous:
            notes.append(f"the {c.name} bound is vacuous here (it proves 0 bits are needed)")
    primary = live[-1] if live else None
    broken = [c for c in live if not c.holds]
    if broken:
        verdict = "impossible"
        for c in broken:
            notes.append(
                f"spends {c.spent_bits:.6g} bits where the {c.name} bound proves {c.needed_bits:.6g} are needed: "
                "a bug, or a hidden precision assumption"
                + (f" (the spec declares {spec.bits_per_coordinate:g} bits per coordinate, compared at p = {precision})"
                   if spec.bits_per_coordinate > precision else "")
            )
    elif primary is None:
        verdict = "unbounded"
    elif max(primary.ratio, primary.ratio_d_model or 0.0) <= tight_factor:
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
        bound=None if primary is None else primary.name,
        ratio=None if primary is None else primary.ratio,
        ratio_d_model=None if primary is None else primary.ratio_d_model,
        d_model=spec.d_model,
        verdict=verdict,
        tight_factor=tight_factor,
        notes=notes,
    )


def _check(name: str, statement: str, needed, spent, spent_d_model=None, success: float = 1.0) -> BoundCheck:
    with mp():
        needed = mpmath.mpf(needed)
        if needed <= 0:
            return BoundCheck(name, statement, 0.0, float(spent), None, True, vacuous=True, success=success)
        ratio = mpmath.mpf(spent) / needed
        ratio_d_model = None if spent_d_model is None else float(mpmath.mpf(spent_d_model) / needed)
        return BoundCheck(name, statement, float(needed), float(spent), float(ratio), bool(spent >= needed),
                          ratio_d_model=ratio_d_model, success=success)
