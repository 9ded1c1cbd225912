"""The report: every theorem checked, every construction against the bounds, the tradeoff plotted, training summarised.

``georecall report`` writes them in one folder (checks.py defines the checks, run.py runs them,
render.py writes Markdown and HTML).

Writes report.md, a self-contained report.html (plots inlined), the PNG plots and results.json
(keys: ``passed``, ``theorems``, ``bounds_table``, ``tradeoff``, ``training``, ``quick``,
``elapsed_s``). A theorem check passes when every query is answered with at least the margin the
theorem promises (or the numeric inequality holds); any failure makes the report fail.
"""

from georecall.report.checks import TheoremCheck, construction_check, default_checks, inequality_check
from georecall.report.run import run_report

__all__ = ["TheoremCheck", "construction_check", "default_checks", "inequality_check", "run_report"]
