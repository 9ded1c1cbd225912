"""Result tables as CSV: the one writer every experiment script and the sweep use, and the
appender that streams a sweep's rows to disk as they finish (so a stopped sweep resumes)."""

from __future__ import annotations

import csv
import io
import os

from georecall.formats.files import write_atomically


def write_csv(path, rows: list[dict], columns: list[str] | None = None) -> None:
    """Write ``rows`` with a header, atomically; ``columns`` defaults to the first row's keys (missing cells are empty)."""
    columns = list(rows[0]) if columns is None else list(columns)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c) for c in columns})
    write_atomically(path, lambda handle: handle.write(text.getvalue().encode()))


class RowAppender:
    """Appends rows to a CSV file, each flushed and synced before the next: a kill loses at most the
    row being written, and a torn last line left by an earlier kill is cut off before appending."""

    def __init__(self, path, columns: list[str]):
        self.path, self.columns = os.fspath(path), list(columns)
        _cut_torn_last_line(self.path)
        fresh = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        self.handle = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=self.columns)
        if fresh:
            self.writer.writeheader()
            self._sync()

    def append(self, row: dict) -> None:
        self.writer.writerow({c: row.get(c) for c in self.columns})
        self._sync()

    def _sync(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def _cut_torn_last_line(path: str) -> None:
    if not os.path.exists(path):
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def read_rows(path, columns: list[str], types: dict) -> list[dict]:
    """Rows of a CSV written by ``RowAppender``, each cell converted by ``types[column]`` (empty → None);
    a file with other columns gives no rows, and a row that does not parse is left out (it is re-run)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != list(columns):
            return []
        for raw in reader:
            try:
                rows.append({c: None if raw[c] in ("", None) else types.get(c, str)(raw[c]) for c in columns})
            except (ValueError, KeyError):
                continue
    return rows
