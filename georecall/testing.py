"""Assertion helpers for users' own constructions (also served as fixtures by the pytest plugin).

    from georecall.testing import assert_exact_recall, assert_respects_bounds
    assert_exact_recall(weights, instance)            # every query, strict margin
    assert_respects_bounds(spec_or_weights, precision=8)

Failure messages list the first failing queries with their margins, or the violated bound.
"""

from __future__ import annotations

import math

from georecall.bounds.compare import compare
from georecall.theory.instance import Instance
from georecall.formats.containers import LoadedModel
from georecall.theory.spec import ConstructionSpec
from georecall.verify.run import RecallReport
from georecall.verify.run import verify_model
from georecall.theory.weights import TransformerWeights


def assert_exact_recall(weights, instance: Instance | None = None, *, min_margin: float = 0.0, hops: int | None = None,
                        max_listed: int = 5, **options) -> RecallReport:
    """Verify every query (multi-hop files are sampled only above ``max_queries``, as the report says).

    ``weights`` is a TransformerWeights, a Construction or a LoadedModel; ``instance`` defaults to
    the one the object carries. Fails unless recall is exact and the least margin exceeds
    ``min_margin``. Returns the RecallReport.
    """
    weights, instance = _weights_and_instance(weights, instance)
    report = verify_model(weights, instance, hops=hops, max_listed=max_listed, **options)
    if report.exact_recall and report.min_margin > min_margin:
        return report
    lines = [report.summary()]
    if report.exact_recall:
        lines.append(f"every answer is the argmax, but the least margin {report.min_margin:.6g} is not above min_margin = {min_margin:g} "
                     f"(query {report.argmin_query})")
    for failure in report.first_failures:
        where = ", ".join(f"{k} {failure[k]}" for k in ("subject", "relation", "chain", "step") if k in failure)
        lines.append(f"  query {failure['query']} ({where}): expected {failure['expected']}, "
                     f"predicted {failure['predicted']}, margin {failure['margin']}" + (" (tie)" if failure["tie"] else ""))
    if report.failures > len(report.first_failures):
        lines.append(f"  ... and {report.failures - len(report.first_failures):,} more failing queries")
    raise AssertionError("\n".join(lines))


def assert_respects_bounds(subject, precision: int | None = None):
    """Fail when a spec (or weights file) claims fewer bits than a proven lower bound allows.

    ``subject``: a ConstructionSpec, a LoadedModel, a Construction or TransformerWeights (the
    last is judged with fact-dependent shared weights, as nothing says otherwise). Returns the
    Comparison.
    """
    result = compare(_comparable(subject), precision)
    broken = [b for b in result.bounds if not b["holds"]]
    if not broken:
        return result
    lines = [f"{result.construction} at p = {result.precision} claims fewer bits than a proven bound allows:"]
    lines += [f"  {b['name']}: {b['statement']}: needs {b['needed_bits']:,.6g} bits, spends {b['spent_bits']:,.6g} "
              f"(ratio {b['ratio']:.4g})" for b in broken]
    lines += [f"  note: {note}" for note in result.notes]
    raise AssertionError("\n".join(lines))


def _weights_and_instance(obj, instance):
    carried = getattr(obj, "instance", None)
    weights = getattr(obj, "weights", obj)
    if not isinstance(weights, TransformerWeights):
        raise TypeError(f"expected TransformerWeights, a Construction or a LoadedModel, got {type(obj).__name__}")
    instance = instance if instance is not None else carried
    if instance is None:
        raise TypeError("an Instance is needed: pass instance=, or an object that carries one")
    return weights, instance


def _comparable(subject):
    if isinstance(subject, (ConstructionSpec, LoadedModel)):
        return subject
    spec = getattr(subject, "spec", None)
    if isinstance(spec, ConstructionSpec):
        return spec
    if isinstance(subject, TransformerWeights):
        from georecall.theory.spec import spec_from_weights

        return spec_from_weights(subject, name=str(subject.meta.extra.get("construction", "user weights")),
                                 bits_per_coordinate=math.nan, guaranteed_margin=math.nan, fact_independent_shared=False)
    raise TypeError(f"expected a ConstructionSpec, LoadedModel, Construction or TransformerWeights, got {type(subject).__name__}")
