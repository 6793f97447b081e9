"""Round two of a merged page: the bound below which no source needs to read, from each
source's own density, counting the rows a sparse source already read below the cut."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.core import keys
from chalicelib.core.tables import EventModel
from chalicelib.history.event_list import _below, _ms, _page_end, _Source

TOP = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _source(name: str, every_minutes: float, n: int) -> _Source:
    """A source that read `n` rows, one every `every_minutes`, from TOP down."""
    rows = [
        EventModel("T#t#S#0", keys.event_sk(TOP - timedelta(minutes=every_minutes * i), f"k{i}", 0))
        for i in range(n)
    ]
    source = _Source(name, lambda *_: ([], 0, None), _below(rows[-1].sk))
    source.buffer.extend(rows)
    return source


def test_the_page_ends_where_the_sources_together_hold_what_is_wanted() -> None:
    dense, sparse = _source("a", 1, 8), _source("b", 4, 8)  # 1 a minute, 1 every 4 minutes
    cut = max(dense.upper, sparse.upper)
    low = keys.iso_ms(TOP - timedelta(days=1))
    end, expect = _page_end([dense, sparse], cut, low, wanted=50)
    minutes = (TOP.timestamp() * 1000 - _ms(end)) / 60_000
    # 50 rows at 1.25 a minute: ~40 minutes down (the sparse source's 8 rows reach 28).
    assert 36 <= minutes <= 44, minutes
    assert expect["a"] > 3 * expect["b"]  # the dense source is asked for more
    assert sum(expect.values()) + 16 > 45


def test_without_a_density_it_reads_to_the_range_end() -> None:
    lone = _source("a", 1, 1)
    low = keys.iso_ms(TOP - timedelta(days=1))
    assert _page_end([lone], lone.upper, low, wanted=50) == (low, {})
