"""The one CSV writer of every export (families, children, bookings, attendance lists).

Semicolons and a BOM, as French spreadsheets expect. Every cell that a spreadsheet would read as a
formula (=, +, -, @, a tab or a carriage return first, even after spaces) gets a leading apostrophe:
what a parent typed in a name, an allergy or a note is shown, never run (OWASP, CSV injection).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def cell(value) -> str:
    """``value`` as a cell that a spreadsheet shows as text."""
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip(" ")[:1] in FORMULA_STARTS and text.strip() else text


def to_csv(header: list[str], rows: Iterable[Iterable]) -> str:
    """The whole file: the header, then each row, every cell escaped."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow([cell(v) for v in header])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return "\ufeff" + out.getvalue()
