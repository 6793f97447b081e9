"""Message status by precedence, not by arrival order."""

from __future__ import annotations

import itertools

from chalicelib.events.ses import parse_envelope, parse_event
from chalicelib.events.state import apply
from chalicelib.events.status import Status
from chalicelib.suppression.from_events import suppression_targets

from tests.conftest import load_event


def ev(name: str):
    return parse_event(parse_envelope(load_event(name)))


def fold(names):
    state = None
    for n in names:
        state = apply(state, ev(n))
    return state


def test_every_order_of_a_message_lifecycle_gives_the_same_state():
    names = ["send", "delivery", "open", "open_second", "click", "click_null_linktags"]
    state = fold(names)
    for order in itertools.permutations(names):
        assert fold(order) == state, order
    assert state.status is Status.CLICKED
    assert state.opens == 2 and state.clicks == 2
    alice = state.recipients["alice@example.com"]
    assert alice.opens == 2 and alice.clicks == 2
    assert alice.first_open_at < alice.last_open_at


def test_delivery_after_open_does_not_move_the_message_back():
    state = fold(["send", "open", "delivery"])
    assert state.status is Status.OPENED


def test_soft_bounce_and_delay_do_not_hide_a_later_delivery():
    delayed = load_event("delivery_delay")
    delivered = load_event("delivery")
    # Re-address the delivery to the delayed message and recipient.
    delivered["detail"]["mail"] = delayed["detail"]["mail"]
    delivered["detail"]["delivery"]["recipients"] = ["grace@example.com"]
    delivered["detail"]["delivery"]["timestamp"] = "2026-11-30T00:00:00.000Z"
    for order in ([delayed, delivered], [delivered, delayed]):
        state = None
        for raw in order:
            state = apply(state, parse_event(parse_envelope(raw)))
        assert state is not None
        assert state.status is Status.DELIVERED


def test_permanent_bounce_outranks_delivery_of_the_same_recipient():
    send, bounce = load_event("send_multi"), load_event("bounce_permanent_multi")
    delivery = load_event("delivery_multi")
    delivery["detail"]["delivery"]["recipients"] = ["bob@example.com"]
    state = None
    for raw in (bounce, delivery, send):
        state = apply(state, parse_event(parse_envelope(raw)))
    assert state is not None
    assert state.recipients["bob@example.com"].status is Status.BOUNCED
    assert state.recipients["bob@example.com"].bounce_type == "Permanent"


def test_multi_recipient_bounce_touches_only_bounced_recipients():
    state = fold(["send_multi", "bounce_permanent_multi", "delivery_multi"])
    assert state.recipients["bob@example.com"].status is Status.BOUNCED
    assert state.recipients["carol@example.com"].status is Status.BOUNCED
    assert state.recipients["dave@example.org"].status is Status.DELIVERED


def test_suppression_targets_follow_bounce_type_and_listed_recipients():
    assert suppression_targets(ev("bounce_permanent_multi")) == (
        "bob@example.com",
        "carol@example.com",
    )
    assert suppression_targets(ev("bounce_transient_5xx")) == ()
    assert suppression_targets(ev("bounce_undetermined")) == ()
    assert suppression_targets(ev("complaint")) == ("frank@example.com",)
    assert suppression_targets(ev("delivery")) == ()
