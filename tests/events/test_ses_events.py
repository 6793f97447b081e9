"""The parser at the boundary: every SES event type into typed models, every malformed class
into a MalformedEvent that names the problem."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from chalicelib.core.errors import MalformedEvent
from chalicelib.events.ses import (
    Bounce,
    Click,
    Complaint,
    Delivery,
    DeliveryDelay,
    Open,
    Reject,
    RenderingFailure,
    Send,
    Subscription,
    is_ses_event_record,
    parse_envelope,
    parse_event,
)
from chalicelib.events.status import EventType, Status
from hypothesis import example, given
from hypothesis import strategies as st

from tests.conftest import load_event


def parse(name: str):  # type: ignore[no-untyped-def]
    return parse_event(parse_envelope(load_event(name)))


@pytest.mark.parametrize(
    ("name", "event_type", "status", "detail_cls"),
    [
        ("send", EventType.SEND, Status.SENT, Send),
        ("delivery", EventType.DELIVERY, Status.DELIVERED, Delivery),
        ("bounce_permanent_multi", EventType.BOUNCE, Status.BOUNCED, Bounce),
        ("complaint", EventType.COMPLAINT, Status.COMPLAINED, Complaint),
        ("open", EventType.OPEN, Status.OPENED, Open),
        ("click", EventType.CLICK, Status.CLICKED, Click),
        ("reject", EventType.REJECT, Status.REJECTED, Reject),
        (
            "rendering_failure",
            EventType.RENDERING_FAILURE,
            Status.RENDERING_FAILED,
            RenderingFailure,
        ),
        ("delivery_delay", EventType.DELIVERY_DELAY, Status.DELIVERY_DELAYED, DeliveryDelay),
        ("subscription", EventType.SUBSCRIPTION, Status.SUBSCRIPTION, Subscription),
    ],
)
def test_every_event_type_parses_into_its_model(name, event_type, status, detail_cls):  # type: ignore[no-untyped-def]
    event = parse(name)
    assert event.event_type is event_type
    assert event.status is status
    assert isinstance(event.detail, detail_cls)
    assert event.timestamp.tzinfo is UTC
    assert len(event.key) == 32


def test_permanent_bounce_lists_only_the_bounced_recipients():
    event = parse("bounce_permanent_multi")
    assert event.recipients == ("bob@example.com", "carol@example.com")
    assert "dave@example.org" in event.mail.destination
    assert isinstance(event.detail, Bounce) and event.detail.permanent
    assert event.detail.bounced[0].diagnostic_code == "smtp; 550 5.1.1 user unknown"


def test_transient_bounce_with_5xx_status_is_not_permanent():
    event = parse("bounce_transient_5xx")
    assert isinstance(event.detail, Bounce)
    assert event.detail.bounce_type == "Transient"
    assert event.detail.bounced[0].status.startswith("5.")  # type: ignore[union-attr]
    assert not event.detail.permanent


def test_complaint_without_feedback_type_or_subtype():
    event = parse("complaint_no_feedback_type")
    assert isinstance(event.detail, Complaint)
    assert event.detail.feedback_type is None and event.detail.subtype is None
    assert event.recipients


def test_click_with_null_link_tags_and_tags_as_lists():
    event = parse("click_null_linktags")
    assert isinstance(event.detail, Click)
    assert event.detail.link_tags == {}
    tagged = parse("click")
    assert isinstance(tagged.detail, Click)
    assert all(isinstance(v, tuple) for v in tagged.detail.link_tags.values())
    assert all(isinstance(v, tuple) for v in tagged.mail.tags.values())


def test_rendering_failure_reads_failure_section_and_absent_tags():
    event = parse("rendering_failure")
    assert isinstance(event.detail, RenderingFailure)
    assert event.detail.template_name == "MyTemplate"
    assert event.mail.tags == {}


def test_open_through_image_proxy_keeps_user_agent():
    event = parse("open_image_proxy")
    assert isinstance(event.detail, Open)
    assert "GoogleImageProxy" in (event.detail.user_agent or "")


def test_same_record_under_two_envelopes_has_one_key():
    raw = load_event("delivery")
    again = copy.deepcopy(raw)
    again["id"] = "another-envelope-id"
    again["time"] = "2026-11-03T00:00:00Z"
    assert parse_event(parse_envelope(raw)).key == parse_event(parse_envelope(again)).key


def test_distinct_events_of_one_message_have_distinct_keys():
    names = [
        "send",
        "delivery",
        "open",
        "open_second",
        "open_image_proxy",
        "click",
        "click_null_linktags",
    ]
    keys = {parse(n).key for n in names}
    assert len(keys) == len(names)


def test_other_ses_detail_types_are_not_event_records():
    for name in ("other_detail_type_advisor", "other_detail_type_sending_status"):
        assert not is_ses_event_record(parse_envelope(load_event(name)))
    assert is_ses_event_record(parse_envelope(load_event("send")))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("missing_mail", "detail.mail"),
        ("unknown_event_type", "eventType"),
        ("mismatched_detail_type", "disagrees"),
        ("detail_not_object", "detail must be an object"),
        ("bounce_missing_type", "bounceType"),
        ("bad_timestamp", "timestamp"),
    ],
)
def test_malformed_events_name_their_problem(name, words):  # type: ignore[no-untyped-def]
    raw = load_event(f"malformed/{name}")
    envelope = parse_envelope(raw)
    with pytest.raises(MalformedEvent) as info:
        parse_event(envelope)
    assert words in info.value.reason


def test_oversized_link_is_malformed():
    raw = load_event("click")
    raw["detail"]["click"]["link"] = "https://example.com/" + "a" * 9000
    with pytest.raises(MalformedEvent, match="over the 8192 limit"):
        parse_event(parse_envelope(raw))


def test_envelope_without_account_is_malformed():
    raw = load_event("send")
    del raw["account"]
    with pytest.raises(MalformedEvent, match="account is missing"):
        parse_envelope(raw)


def test_open_on_multi_recipient_message_is_unattributed():
    raw = load_event("open")
    raw["detail"]["mail"]["destination"] = ["a@example.com", "b@example.com"]
    event = parse_event(parse_envelope(raw))
    assert event.recipients == ()


def test_display_name_addresses_are_normalised():
    raw = load_event("send")
    raw["detail"]["mail"]["destination"] = ["Alice Example <Alice@Example.com>"]
    assert parse_event(parse_envelope(raw)).recipients == ("alice@example.com",)


def test_timestamps_are_utc():
    event = parse("delivery")
    assert event.timestamp > datetime(2026, 1, 1, tzinfo=UTC)


_ATEXT = "abcxyzABCXYZ0189!#$%&'*+/=?^_`{|}~.-"
_AWKWARD = ' <>()[]\\,;:"@\t\u00e9\u00df'  # what only parseaddr knows what to do with


@given(
    st.text(alphabet=_ATEXT + _AWKWARD, min_size=1, max_size=12),
    st.text(alphabet="abz09.-" + _AWKWARD, min_size=1, max_size=12),
)
@example("user3", "example.com")
@example("a..b", "x.com")
@example(".a", "-x.")
@example("Zoe <zoe", "example.com>")
def test_a_bare_address_reads_as_parseaddr_reads_it(local: str, domain: str) -> None:
    """The short cut past parseaddr (ses._BARE_ADDRESS) reads every address as parseaddr does."""
    from email.utils import parseaddr

    from chalicelib.events import ses

    raw = f"{local}@{domain}"
    if ses._BARE_ADDRESS.fullmatch(raw):
        assert (parseaddr(raw)[1] or raw) == raw
    try:
        slow: str | None = _slow_address(raw)
    except MalformedEvent:
        slow = None
    try:
        fast: str | None = ses._address(raw, "x")
    except MalformedEvent:
        fast = None
    assert fast == slow


def _slow_address(raw: str) -> str:
    from unittest import mock

    from chalicelib.events import ses

    with mock.patch.object(ses, "_BARE_ADDRESS", mock.Mock(fullmatch=lambda _: None)):
        return ses._address(raw, "x")
