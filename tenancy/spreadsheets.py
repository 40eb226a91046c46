"""CSV that spreadsheets open safely: every cell goes through :func:`neutralise`. Shared by every CSV export
(campaign jobs, scheduled reports)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

# A cell starting with one of these is read as a formula by spreadsheets (OWASP "CSV injection"): tab and carriage
# return too, because some spreadsheets strip them and read what follows.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """``value`` as CSV cell text that no spreadsheet runs as a formula: text starting with ``= + - @`` (or a tab or
    carriage return) gets a leading apostrophe, which spreadsheets read as "this is text". Phone numbers in E.164
    start with ``+`` and so come out as ``'+61412345678``: that also stops a spreadsheet from turning them into
    numbers without their plus."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The header and the rows as CSV text (``\\r\\n`` line ends), every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(cell) for cell in header])
    writer.writerows([neutralise(cell) for cell in row] for row in rows)
    return buffer.getvalue()
