"""Plain-text tables for the command line."""

from __future__ import annotations


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """``columns`` is [(key, header)]; floats print with 4 significant digits."""

    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    cells = [[cell(row.get(key, "")) for key, _ in columns] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.rjust(w) for (_, h), w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
