"""Rendering a report's results as Markdown and as one self-contained HTML page (plots inlined)."""

from __future__ import annotations

import base64
import html
from pathlib import Path


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> list[list[str]]:
    return [[title for _, title in columns]] + [[_fmt(row.get(key)) for key, _ in columns] for row in rows]


THEOREM_COLUMNS = [("theorem", "theorem"), ("statement", "statement"), ("sizes", "sizes checked"), ("exhaustive", "exhaustive"),
                   ("queries", "queries"), ("min_margin", "min margin"), ("passed", "pass"), ("doc", "proof")]
BOUND_COLUMNS = [("construction", "construction"), ("N", "N"), ("R", "R"), ("hops", "hops"), ("cot", "CoT"), ("d_model", "d_model"),
                 ("precision", "p"), ("bound", "bound"), ("ratio", "spent / needed"), ("verdict", "verdict")]
TRAIN_KEYS = ["train_accuracy", "superposition_r2", "superposition_r2_null", "probe_accuracy", "gating_selectivity",
              "swap_success", "swap_preservation", "transfer_accuracy"]


def _sections(results: dict) -> list[tuple[str, object]]:
    """(heading, content) pairs; content is text, a table (list of rows) or ('image', filename)."""
    verdict = "PASSED: every theorem check holds" if results["passed"] else "FAILED: some theorem checks fail"
    parts = [("Geometric factual recall: verification report", f"{verdict}. Mode: {'quick' if results['quick'] else 'full'}; "
              f"{results['elapsed_s']} s. Every construction check verifies every query unless 'exhaustive' says no.")]
    parts.append(("Theorems", _table(results["theorems"], THEOREM_COLUMNS)))
    parts.append(("Constructions against the bounds", _table(results["bounds_table"], BOUND_COLUMNS)))
    parts.append(("Capacity-depth tradeoff", ("image", "tradeoff.png")))
    training = results["training"]
    if not training.get("available"):
        parts.append(("Gradient descent", training.get("note", "not run")))
    else:
        c = training["config"]
        rows = [{"metric": key, "value": training.get(key)} for key in TRAIN_KEYS]
        parts.append(("Gradient descent", f"One model trained at N={c['N']}, R={c['R']}, d_model={c['d_model']}, d_mlp={c['d_mlp']}, "
                      f"init scale {c['embed_init_scale']}, weight decay {c['weight_decay']}, {c['steps']} steps."))
        parts.append(("Structure and transfer", _table(rows, [("metric", "metric"), ("value", "value")])))
        if "threshold" in training:
            parts.append(("Threshold (measured now)", _table(training["threshold"], [("N", "N"), ("R", "R"), ("d_star", "d*"),
                                                                                   ("failing_d_below", "largest failing d")])))
        if "archived_sweep" in training:
            sweep = training["archived_sweep"]
            parts.append((f"Threshold sweep (archived: {sweep['source']})",
                          _table(sweep["medians"], [("N", "N"), ("R", "R"), ("seeds", "seeds"), ("d_star_median", "d* median"),
                                                    ("d_star_min", "min"), ("d_star_max", "max")])))
    return parts


def render_markdown(results: dict) -> str:
    lines = []
    for i, (heading, content) in enumerate(_sections(results)):
        lines.append(("# " if i == 0 else "## ") + heading)
        lines.append("")
        if isinstance(content, str):
            lines.append(content)
        elif isinstance(content, tuple):
            lines.append(f"![{heading}]({content[1]})")
        else:
            lines.append("| " + " | ".join(content[0]) + " |")
            lines.append("|" + "---|" * len(content[0]))
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in content[1:]]
        lines.append("")
    return "\n".join(lines)


def render_html(results: dict, folder: Path) -> str:
    body = []
    for i, (heading, content) in enumerate(_sections(results)):
        body.append(f"<h{1 if i == 0 else 2}>{html.escape(heading)}</h{1 if i == 0 else 2}>")
        if isinstance(content, str):
            body.append(f"<p>{html.escape(content)}</p>")
        elif isinstance(content, tuple):
            data = base64.b64encode((folder / content[1]).read_bytes()).decode()
            body.append(f'<img alt="{html.escape(heading)}" src="data:image/png;base64,{data}" style="max-width:100%">')
        else:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in content[0])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in content[1:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#eee}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>georecall report</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"
