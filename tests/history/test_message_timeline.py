"""GET /messages/{id} pages the timeline: a message with 5,000 opens comes in pages of at most
256 KB, every event exactly once across them, in time order; the summary (from the aggregate
alone) is the same on every page; a tampered or foreign cursor is refused."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.signing import Signer
from chalicelib.history import timeline

from devstack import big_message

pytestmark = pytest.mark.ddb_local

OPENS = 5_000
PAGE_LIMIT = 256 * 1024
SIGNER = Signer(b"t" * 32)


@pytest.fixture(scope="module")
def big(settings: Any) -> dict[str, Any]:
    tenant_id = uuid.uuid4().hex
    sent = datetime.now(UTC) - timedelta(days=5)
    evs = big_message.events(OPENS, sent)
    big_message.write(tenant_id, evs)
    return {"tenant": tenant_id, "message": evs[0].mail.message_id, "events": evs}


def _pages(big: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    pages, cursor = [], None
    for _ in range(10_000):
        page = timeline.message_detail(
            big["tenant"], big["message"], signer=SIGNER, limit=limit, cursor=cursor
        )
        pages.append(page)
        cursor = page["next"]
        if cursor is None:
            return pages
    raise AssertionError("the timeline did not end")


@pytest.mark.parametrize("limit", [timeline.DEFAULT_LIMIT, timeline.MAX_LIMIT])
def test_every_event_once_in_pages_under_256_kb(big: dict[str, Any], limit: int) -> None:
    pages = _pages(big, limit)
    sizes = [len(json.dumps(p).encode()) for p in pages]
    assert max(sizes) <= PAGE_LIMIT, max(sizes)
    ids = [e["id"] for p in pages for e in p["events"]]
    assert len(ids) == len(set(ids)) == OPENS + 2
    assert set(ids) == {e.key for e in big["events"]}
    times = [e["at"] for p in pages for e in p["events"]]
    assert times == sorted(times)
    assert all(len(p["events"]) <= limit for p in pages)
    assert len(pages) == -(-(OPENS + 2) // limit)  # a full page each, none empty
    first = pages[0]
    assert first["opens"]["count"] == OPENS and first["event_count"] == OPENS + 2
    assert first["bounded"]["engagement_unjudged"] == OPENS - 64
    summary = {k: v for k, v in first.items() if k not in ("events", "next", "opens")}
    assert all({k: p[k] for k in summary} == summary for p in pages)
    assert {p["opens"]["user_agents_scope"] for p in pages} == {"page"}


def test_opens_on_the_page_are_judged_by_the_final_verdict(big: dict[str, Any]) -> None:
    page = timeline.message_detail(big["tenant"], big["message"], signer=SIGNER, limit=10)
    opened = [e for e in page["events"] if e["status"] == "OPENED"]
    assert {e["detail"]["engagement"] for e in opened} == {"human", "apple_privacy", "image_proxy"}
    by_ua = {u["user_agent"]: u["count"] for u in page["opens"]["user_agents"]}
    assert sum(by_ua.values()) == len(opened) == 8


def test_a_tampered_or_foreign_cursor_is_refused(big: dict[str, Any]) -> None:
    cursor = timeline.message_detail(big["tenant"], big["message"], signer=SIGNER, limit=5)["next"]
    assert cursor
    body, mac = cursor.split(".")
    forged = SIGNER.sign(timeline.CURSOR_PURPOSE, {"t": "other", "m": big["message"], "a": "E#"})
    other_message = SIGNER.sign(
        timeline.CURSOR_PURPOSE, {"t": big["tenant"], "m": "m2", "a": "E#2026"}
    )
    events_cursor = SIGNER.sign("events-cursor", {"t": big["tenant"]})
    for bad in (body[:-2] + "xx." + mac, forged, other_message, events_cursor, "x"):
        with pytest.raises(InvalidRequest) as caught:
            timeline.message_detail(
                big["tenant"], big["message"], signer=SIGNER, limit=5, cursor=bad
            )
        assert caught.value.details == {"field": "next"}
    with pytest.raises(InvalidRequest):  # the other tenant's own request with this one's cursor
        timeline.message_detail("other", big["message"], signer=SIGNER, limit=5, cursor=cursor)
