"""Plain-text tables for the command line: columns sized to what is shown, long cells cut."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

Column = tuple[str, Callable[[Mapping[str, Any]], Any]]
MAX_WIDTH = 48


def field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda row: row.get(name)


def cell(value: Any, width: int = MAX_WIDTH) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value) or "-"
    else:
        text = str(value)
    text = " ".join(text.split())  # no line breaks or tabs inside a cell
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], out: TextIO) -> int:
    """Writes the rows under a header; returns how many rows there were. The last column is
    never cut (it holds what one copies: a message ID, a note), the others at MAX_WIDTH."""
    last = len(columns) - 1
    cells = [
        [cell(get(row), 10_000 if i == last else MAX_WIDTH) for i, (_, get) in enumerate(columns)]
        for row in rows
    ]
    widths = [
        max([len(header), *(len(line[i]) for line in cells)])
        for i, (header, _) in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out.write(line([header for header, _ in columns]) + "\n")
    for values in cells:
        out.write(line(values) + "\n")
    return len(cells)


def pairs(items: Sequence[tuple[str, Any]], out: TextIO) -> None:
    """`label  value` lines, labels aligned."""
    width = max((len(label) for label, _ in items), default=0)
    for label, value in items:
        out.write(f"{label.ljust(width)}  {cell(value, 200)}\n")
