"""A message with thousands of opens, written as ingest writes it (its aggregate and one
timeline entry per event), for the timeline paging test and `make bench`. Writing 5,000 events
through the whole ingest path would take minutes on DynamoDB Local; the items are the same."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.tables import MessageEventModel
from chalicelib.events.engagement import signal_of
from chalicelib.events.messages import message_item, timeline_entry
from chalicelib.events.ses import SesEvent, parse_envelope, parse_event
from chalicelib.events.state import MessageState, apply

ACCOUNT = "111122223333"
AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
)


def _iso(ts: datetime) -> str:
    return keys.iso_ms(ts)


def _envelope(
    kind: str,
    detail_type: str,
    at: datetime,
    mail: dict[str, Any],
    section: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    detail: dict[str, Any] = {"eventType": kind, "mail": mail}
    if section:
        detail[section] = data
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "detail": detail,
    }


def events(opens: int, sent: datetime, message_id: str | None = None) -> list[SesEvent]:
    """Send, Delivery, then `opens` opens a minute apart by four kinds of client."""
    mail = {
        "timestamp": _iso(sent),
        "source": "news@example.net",
        "messageId": message_id or f"0100-{uuid.uuid4()}-000000",
        "destination": ["alice@example.com"],
        "commonHeaders": {"subject": "A newsletter everybody opens"},
        "tags": {"campaign": ["big"]},
    }
    delivered = sent + timedelta(seconds=2)
    raw = [
        _envelope("Send", "Email Sent", sent, mail, "send", {}),
        _envelope(
            "Delivery",
            "Email Delivered",
            delivered,
            mail,
            "delivery",
            {
                "timestamp": _iso(delivered),
                "recipients": ["alice@example.com"],
                "smtpResponse": "250 2.0.0 OK",
                "processingTimeMillis": 900,
            },
        ),
    ]
    for i in range(opens):
        at = delivered + timedelta(minutes=1 + i)
        raw.append(
            _envelope(
                "Open",
                "Email Opened",
                at,
                mail,
                "open",
                {
                    "timestamp": _iso(at),
                    "userAgent": AGENTS[i % len(AGENTS)],
                    "ipAddress": f"198.51.100.{i % 250}",
                },
            )
        )
    return [parse_event(parse_envelope(e)) for e in raw]


def write(tenant_id: str, evs: list[SesEvent], expires: datetime | None = None) -> MessageState:
    """The aggregate and the timeline entries of `evs`, as ingest's transaction writes them."""
    expires = expires or datetime.now(UTC) + timedelta(days=30)
    state: MessageState | None = None
    pk = keys.message_pk(tenant_id, evs[0].mail.message_id)
    with MessageEventModel.batch_write() as batch:
        for event in evs:
            signal = signal_of(event)
            state = apply(state, event, signal=signal)
            fields = (
                {"signal": signal.engagement.value, "signal_reason": signal.reason}
                if signal
                else {}
            )
            batch.save(
                timeline_entry(
                    pk, event, state.destination, shard=0, extra=fields, expires_at=expires
                )
            )
    assert state is not None
    message_item(pk, state, None, expires).save()
    return state
