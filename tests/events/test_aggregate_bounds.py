"""The message aggregate stays far under DynamoDB's 400 KB item limit whatever SES reports, and
what its bounds leave out is counted (links_other, recipients_other, tags_dropped, the facts'
overflow), not lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from chalicelib.core.item_size import compact_json, item_bytes
from chalicelib.events import links
from chalicelib.events.engagement import MAX_FACTS
from chalicelib.events.messages import (
    MAX_DETAIL_TEXT,
    MAX_TIMELINE_BOUNCE_BYTES,
    MAX_TIMELINE_RECIPIENTS,
    event_detail,
    message_item,
    state_of,
)
from chalicelib.events.ses import Click
from chalicelib.events.state import MAX_LINKS_PER_MESSAGE, MAX_RECIPIENTS_PER_MESSAGE, MAX_TAG_BYTES
from hypothesis import example, given
from hypothesis import strategies as st

from devstack.worst_case import events, worst_state

# The worst case computed from the bounds (see events/state.py): destination 50 x 320 control
# characters (~94 KB), recipient states (~126 KB), tags (<= 32 KB), links (50 x 200 ~ 10 KB),
# facts and their overflow (~5 KB), subject/source/message ID in 4-byte characters (~7 KB).
WORST_AGGREGATE_BYTES = 280_000
DYNAMODB_ITEM_LIMIT = 400 * 1024


@pytest.fixture(scope="module")
def state():
    return worst_state()


def _size(state) -> int:
    item = message_item("T#t#M#" + state.message_id, state, None, datetime.now(UTC))
    return item_bytes(item.serialize())


def test_the_worst_aggregate_any_events_make_is_under_the_item_limit(state) -> None:
    size = _size(state)
    assert size <= WORST_AGGREGATE_BYTES < DYNAMODB_ITEM_LIMIT, size
    assert size > WORST_AGGREGATE_BYTES * 0.9  # the builder does reach the bounds


def test_what_the_bounds_leave_out_is_counted(state) -> None:
    assert len(state.links) == MAX_LINKS_PER_MESSAGE
    assert state.links_other == 10 * 6  # 10 links past the bound, clicked by 6 agents each
    assert state.clicks == 60 * 6 and sum(state.links.values()) + state.links_other == 360
    assert len(state.recipients) == MAX_RECIPIENTS_PER_MESSAGE
    assert state.recipients_other == 50  # the bounce's 50 other addresses
    assert 0 < state.tags_dropped < 50
    assert len(json.dumps(state.tags, ensure_ascii=False).encode()) <= MAX_TAG_BYTES
    assert len(state.engagement.facts) == MAX_FACTS
    overflowed = sum(o.n for o in state.engagement.overflow)
    assert len(state.engagement.facts) + overflowed == state.opens + state.clicks
    back = state_of(message_item("T#t#M#m", state, None, datetime.now(UTC)))
    assert back is not None
    assert (back.links_other, back.recipients_other, back.tags_dropped) == (60, 50, 40)
    assert back.engagement == state.engagement


def test_every_link_is_kept_in_a_bounded_display_form() -> None:
    assert links.display_form("https://example.com/a?b=1#c") == "https://example.com/a?b=1#c"
    long_a = "https://example.com/" + "a" * 8000 + "/one"
    long_b = "https://example.com/" + "a" * 8000 + "/two"
    a, b = links.display_form(long_a), links.display_form(long_b)
    assert len(a) == len(b) == links.MAX_LINK_CHARS and a != b
    assert links.is_truncated(a) and not links.is_truncated("https://example.com/")
    odd = links.display_form('https://example.com/é "x"\\\x01')
    assert odd.isascii() and json.dumps(odd) == f'"{odd}"'  # one byte a character, stored
    clicked = {e.detail.link for e in events() if isinstance(e.detail, Click)}
    assert len(clicked) == 60 and all(len(u) <= links.MAX_LINK_CHARS for u in clicked)


def test_item_sizes_are_counted_as_dynamodb_counts_them() -> None:
    assert item_bytes({"ab": {"S": "xyz"}, "n": {"N": "12345"}}) == 2 + 3 + 1 + 4
    assert item_bytes({"s": {"SS": ["é", "ab"]}}) == 1 + 2 + 2
    assert item_bytes({"m": {"M": {"k": {"BOOL": True}}}}) == 1 + 3 + 1 + 1 + 1
    assert compact_json({"a": ["é", "\ud800"]}) == '{"a":["é","\ufffd"]}'


def test_a_bounce_timeline_entry_keeps_its_first_recipients_facts_and_counts_the_rest() -> None:
    bounce = next(e for e in events() if e.event_type.value == "Bounce")
    detail = event_detail(bounce, None)
    # 320 control characters + 200 of diagnostic code each, 6 bytes a character in JSON: the
    # byte budget keeps the first one or two, and counts every other recipient.
    assert 1 <= len(detail["recipients"]) < MAX_TIMELINE_RECIPIENTS
    assert len(detail["recipients"]) + detail["recipients_other"] == 50
    assert list(detail["recipients"]) == list(bounce.recipients[: len(detail["recipients"])])
    assert len(compact_json(detail["recipients"]).encode()) <= MAX_TIMELINE_BOUNCE_BYTES
    mine = event_detail(bounce, bounce.recipients[-1])  # the recipient's own row: its facts
    assert len(mine["diagnostic_code"]) == MAX_DETAIL_TEXT


@given(st.text(alphabet=st.characters(max_codepoint=0x2100), max_size=20))
@example('plain "quoted" \\ tab\there \x7f')
def test_a_tag_costs_the_bytes_of_its_compact_json(text: str) -> None:
    """state._json_bytes's short cut (printable ASCII with nothing to escape) is exact."""
    from chalicelib.events.state import _json_bytes

    assert _json_bytes(text) == len(compact_json(text).encode())
