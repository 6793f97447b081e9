"""Which designated tags a GET /events range may read from their tag view: only those named
long enough before the range starts (core/tables.py `indexed_tags_covering`). A tag named today
has no view of last month's events, so a range reaching back reads the time view, filtered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.core import keys
from chalicelib.core.tables import TAG_VIEW_SETTLE, TenantModel, indexed_tags_covering

NAMED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def tenant(**since: datetime) -> TenantModel:
    return TenantModel(
        "t1",
        indexed_tags=set(since) | {"legacy"},
        indexed_tags_since={name: keys.iso_ms(at) for name, at in since.items()},
    )


def test_a_range_from_before_the_naming_reads_the_time_view() -> None:
    t = tenant(campaign=NAMED)
    assert "campaign" not in indexed_tags_covering(t, NAMED - timedelta(days=30))
    assert "campaign" not in indexed_tags_covering(t, NAMED + TAG_VIEW_SETTLE / 2)


def test_a_range_from_after_the_views_settled_reads_the_tag_view() -> None:
    t = tenant(campaign=NAMED, plan=NAMED + timedelta(days=2))
    covering = indexed_tags_covering(t, NAMED + TAG_VIEW_SETTLE)
    assert covering == {"campaign", "legacy"}  # plan was named later; legacy has no time
