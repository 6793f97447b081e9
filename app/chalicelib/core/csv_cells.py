"""CSV that a spreadsheet opens as text, never as formulas ("CSV injection", OWASP).

A cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets: a subject `=HYPERLINK("https://evil.example","open")` or an
address `=1+1@x.com` (a valid address) would run when the tenant opens SESami's export. OWASP's
advice, followed here: prefix such a cell with a single quote, which spreadsheets show as text,
and quote every data cell (embedded quotes doubled), so that no separator inside a cell, a `;` in a
locale that splits on it for instance, starts a new cell that could begin with `=`. The cost is
a visible `'` on the rare cell that starts so; a program reading the CSV sees it too, which is
why only those cells are touched.

Every CSV SESami writes goes through `writer()`. The dashboard's export is the API's CSV (pages
joined without repeating the header), so it is covered by the same cells.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def cell(value: object) -> object:
    """The value as written: a string starting like a formula gets a leading single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose every cell goes through `cell` and is quoted. The header, SESami's own
    column names, is written as plain names (`at,status,...`), as readers of the export expect."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        self._header = csv.writer(out)

    def writeheader(self, columns: Iterable[str]) -> None:
        self._header.writerow([cell(c) for c in columns])

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([cell(v) for v in row])


def writer(out: _Writable) -> SafeWriter:
    return SafeWriter(out)
