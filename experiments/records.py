"""Result tables as CSV: the one writer every experiment script and the sweep use."""

from __future__ import annotations

import csv


def write_csv(path, rows: list[dict], columns: list[str] | None = None) -> None:
    """Write ``rows`` with a header; ``columns`` defaults to the first row's keys (missing cells are empty)."""
    columns = list(rows[0]) if columns is None else list(columns)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c) for c in columns})
