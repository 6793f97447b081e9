"""The largest message aggregate SES's events can make, for the bound test and `make bench`.

Every string is as long as the parser lets it be and made of the characters that cost most as
stored: 4-byte UTF-8 characters in top-level attributes, control characters (6 bytes each as
`\\u0001` in a JSON document) inside the aggregate's document. The message has 50 recipients of
320 characters, 50 tags of 256 + 256, a Bounce for 50 other addresses (past the per-message
bound), clicks on 60 links of 8 KB (past the link bound) with every signal, opens with every
signal, more facts than the log keeps, over most of a year; then every recipient state is given
every field at its largest.

`item_events()` adds what makes the largest single items rather than the largest aggregate: a
Bounce and a Complaint to 50 addresses of 998 bytes in 4-byte characters (a string set counts
UTF-8) with 4 KB diagnostic codes, a Click with 50 link tags of 256 + 256 control characters,
a Subscription with 1,000 topics, a DeliveryDelay to 50 addresses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.events.ses import SesEvent, parse_envelope, parse_event
from chalicelib.events.state import MessageState, RecipientState, apply
from chalicelib.events.status import Status

WIDE = "\U0001f600"  # 4 bytes of UTF-8
CTRL = "\x01"  # 6 bytes in JSON
SENT = datetime(2026, 1, 1, tzinfo=UTC)
_UAS = (
    "curl/8.0",
    "Mozilla/5.0 (Windows NT 10.0) Thunderbird/115",
    "Mozilla/5.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0",
    "weird agent",
    None,
)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def address(i: int, prefix: str = "r", fill: str = CTRL) -> str:
    local = f"{prefix}{i:03d}" + fill * (320 - 4 - len(prefix) - 2)
    return f"{local}@x"


def _mail() -> dict[str, Any]:
    return {
        "timestamp": _iso(SENT),
        "source": WIDE * 320,
        "messageId": WIDE * 256,
        "destination": [address(i) for i in range(50)],
        "commonHeaders": {"subject": WIDE * 998},
        "tags": {f"{i:02d}" + CTRL * 254: [CTRL * 256] for i in range(50)},
    }


def _envelope(kind: str, detail_type: str, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    section = {
        "Bounce": "bounce",
        "Open": "open",
        "Click": "click",
        "Delivery": "delivery",
        "Complaint": "complaint",
        "Subscription": "subscription",
        "DeliveryDelay": "deliveryDelay",
    }
    body = {"eventType": kind, "mail": _mail()}
    if kind in section:
        body[section[kind]] = data
    return {
        "version": "0",
        "id": f"{kind}-{at.timestamp()}-{len(str(data))}",
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": "111122223333",
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "detail": body,
    }


def events() -> list[SesEvent]:
    raw = [_envelope("Send", "Email Sent", SENT, {})]
    at = SENT + timedelta(seconds=5)
    raw.append(
        _envelope(
            "Delivery",
            "Email Delivered",
            at,
            {
                "timestamp": _iso(at),
                "recipients": [address(i) for i in range(50)],
                "smtpResponse": CTRL * 4096,
            },
        )
    )
    raw.append(
        _envelope(
            "Bounce",
            "Email Bounced",
            at,
            {
                "bounceType": "Permanent",
                "bounceSubType": CTRL * 64,
                "timestamp": _iso(at),
                "bouncedRecipients": [
                    {"emailAddress": address(i, "b"), "diagnosticCode": CTRL * 4096}
                    for i in range(50)
                ],
            },
        )
    )
    n = 0
    for link in range(60):
        for ua in _UAS:
            n += 1
            t = SENT + timedelta(days=300, seconds=n * 7)
            url = f"https://example.com/{link:02d}/" + "\u00e9" * 2700  # ~8 KB percent-encoded
            data = {"timestamp": _iso(t), "link": url[:8192], "ipAddress": "203.0.113.9"}
            if ua is not None:
                data["userAgent"] = ua
            raw.append(_envelope("Click", "Email Clicked", t, data))
    for i in range(200):
        ua = _UAS[i % len(_UAS)]
        t = SENT + timedelta(days=300, hours=1, seconds=i)
        data = {"timestamp": _iso(t), "ipAddress": "17.0.0.1" if i % 2 else "203.0.113.9"}
        if ua is not None:
            data["userAgent"] = ua
        raw.append(_envelope("Open", "Email Opened", t, data))
    return [parse_event(parse_envelope(e)) for e in raw]


def item_events() -> list[SesEvent]:
    """Events that make the largest single items (module docstring), of the same message."""
    at = SENT + timedelta(seconds=9)
    # 4-byte characters, 998 bytes: the longest address a key can hold (the suppression list's
    # sort key is the address, and DynamoDB's sort keys hold 1,024 bytes).
    wide = [f"w{i:03d}" + WIDE * 248 + "@x" for i in range(50)]
    text = CTRL * 4096
    raw = [
        _envelope(
            "Bounce",
            "Email Bounced",
            at,
            {
                "bounceType": "Transient",
                "bounceSubType": CTRL * 64,
                "timestamp": _iso(at),
                "bouncedRecipients": [
                    {
                        "emailAddress": a,
                        "status": CTRL * 64,
                        "action": CTRL * 64,
                        "diagnosticCode": text,
                    }
                    for a in wide
                ],
            },
        ),
        _envelope(
            "Complaint",
            "Email Complaint Received",
            at,
            {
                "timestamp": _iso(at),
                "userAgent": text,
                "complaintFeedbackType": CTRL * 64,
                "complainedRecipients": [{"emailAddress": a} for a in wide],
            },
        ),
        _envelope(
            "Click",
            "Email Clicked",
            at,
            {
                "timestamp": _iso(at),
                "link": "https://example.com/" + "\u00e9" * 2700,
                "userAgent": text,
                "ipAddress": "203.0.113.9",
                "linkTags": {f"{i:02d}" + CTRL * 254: [CTRL * 256] for i in range(50)},
            },
        ),
        _envelope(
            "Subscription",
            "Email Subscribed",
            at,
            {
                "timestamp": _iso(at),
                "contactList": CTRL * 256,
                "newTopicPreferences": {
                    "unsubscribeAll": False,
                    "topicSubscriptionStatus": [
                        {"topicName": f"{i:04d}" + CTRL * 252, "subscriptionStatus": "OptOut"}
                        for i in range(1_000)
                    ],
                },
            },
        ),
        _envelope(
            "DeliveryDelay",
            "Email Delivery Delayed",
            at,
            {
                "timestamp": _iso(at),
                "delayType": CTRL * 64,
                "delayedRecipients": [
                    {"emailAddress": a, "status": CTRL * 64, "diagnosticCode": text} for a in wide
                ],
            },
        ),
    ]
    return [parse_event(parse_envelope(e)) for e in raw]


def worst_state() -> MessageState:
    state = None
    for event in events():
        state = apply(state, event)
    assert state is not None
    late = SENT + timedelta(days=364)
    full = RecipientState(
        Status.COMPLAINED,
        99,
        late,
        opens=10**9,
        clicks=10**9,
        first_open_at=late,
        last_open_at=late,
        bounce_type=CTRL * 64,
        unsubscribed=True,
    )
    return replace(state, recipients={a: full for a in state.recipients})
