"""Realistic SES traffic as EventBridge envelopes, for benchmarks and the local stack's demo data.

Each message gets a Send, then most a Delivery (some a delay or a transient bounce first), some a
permanent bounce; delivered messages get opens (some repeated, some through an image proxy),
clicks over several links, and now and then a complaint. The records follow the shapes of the
recorded events in tests/events/.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DETAIL_TYPE = {
    "Send": "Email Sent",
    "Delivery": "Email Delivered",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Open": "Email Opened",
    "Click": "Email Clicked",
    "DeliveryDelay": "Email Delivery Delayed",
}
LINKS = [
    "https://www.example.net/pricing",
    "https://www.example.net/blog/2026/autumn-recap",
    "https://www.example.net/docs/getting-started",
    "https://www.example.net/account/settings",
    "https://www.example.net/webinar?utm_source=ses",
]
USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)",
]
CAMPAIGNS = ["nov-newsletter", "product-update", "onboarding", "receipts"]


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass
class Profile:
    """Rates per message (delivered messages for engagement)."""

    permanent_bounce: float = 0.02
    transient_bounce: float = 0.01
    delay: float = 0.01
    open: float = 0.55
    repeat_open: float = 0.35
    click: float = 0.25
    complaint: float = 0.001


def message_id_for(ts: datetime) -> str:
    return f"0100{int(ts.timestamp() * 1000):012x}-{uuid.uuid4()}-000000"


def _envelope(
    account: str, event_type: str, at: datetime, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE[event_type],
        "source": "aws.ses",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [f"arn:aws:ses:us-east-1:{account}:configuration-set/sesami-events"],
        "detail": {"eventType": event_type, **detail},
    }


def _bounce(
    account: str, mail: dict[str, Any], recipient: str, at: datetime, *, permanent: bool
) -> dict[str, Any]:
    """A Permanent/General (5.1.1) or a Transient/MailboxFull bounce — the latter with the 5.x.x
    code real transient bounces carry."""
    kind, subtype, status, code = (
        ("Permanent", "General", "5.1.1", "smtp; 550 5.1.1 user unknown")
        if permanent
        else ("Transient", "MailboxFull", "5.2.2", "smtp; 552 5.2.2 Mailbox full")
    )
    bounce = {
        "feedbackId": f"{mail['messageId'][:16]}-{uuid.uuid4()}-000000",
        "bounceType": kind,
        "bounceSubType": subtype,
        "bouncedRecipients": [
            {
                "emailAddress": recipient,
                "action": "failed",
                "status": status,
                "diagnosticCode": code,
            }
        ],
        "timestamp": iso(at),
        "reportingMTA": "dns; a8-41.smtp-out.amazonses.com",
    }
    return _envelope(account, "Bounce", at, {"mail": mail, "bounce": bounce})


def message_events(
    rng: random.Random,
    account: str,
    recipient: str,
    sent_at: datetime,
    profile: Profile | None = None,
    message_id: str | None = None,
) -> list[dict[str, Any]]:
    """Every envelope one message produces, in the order SES would publish them."""
    p = profile or Profile()
    message_id = message_id or message_id_for(sent_at)
    campaign = rng.choice(CAMPAIGNS)
    mail = {
        "timestamp": iso(sent_at),
        "source": "SESami Demo <news@example.net>",
        "sourceArn": f"arn:aws:ses:us-east-1:{account}:identity/example.net",
        "sendingAccountId": account,
        "messageId": message_id,
        "destination": [recipient],
        "headersTruncated": False,
        "commonHeaders": {
            "from": ["SESami Demo <news@example.net>"],
            "to": [recipient],
            "messageId": message_id,
            "subject": f"{campaign.replace('-', ' ').title()} — {sent_at:%B %d}",
        },
        "tags": {
            "ses:operation": ["SendEmail"],
            "ses:configuration-set": ["sesami-events"],
            "ses:from-domain": ["example.net"],
            "campaign": [campaign],
        },
    }
    out = [_envelope(account, "Send", sent_at, {"mail": mail, "send": {}})]
    t = sent_at + timedelta(milliseconds=rng.randint(400, 3000))
    roll = rng.random()
    if roll < p.permanent_bounce:
        out.append(_bounce(account, mail, recipient, t, permanent=True))
        return out
    if roll < p.permanent_bounce + p.transient_bounce:
        out.append(_bounce(account, mail, recipient, t, permanent=False))
        t += timedelta(minutes=rng.randint(5, 90))
    elif roll < p.permanent_bounce + p.transient_bounce + p.delay:
        out.append(
            _envelope(
                account,
                "DeliveryDelay",
                t,
                {
                    "mail": mail,
                    "deliveryDelay": {
                        "timestamp": iso(t),
                        "delayType": "TransientCommunicationFailure",
                        "expirationTime": iso(t + timedelta(hours=14)),
                        "delayedRecipients": [
                            {
                                "emailAddress": recipient,
                                "status": "4.4.7",
                                "diagnosticCode": "smtp; 421 4.4.7 try again later",
                            }
                        ],
                    },
                },
            )
        )
        t += timedelta(minutes=rng.randint(2, 60))
    out.append(
        _envelope(
            account,
            "Delivery",
            t,
            {
                "mail": mail,
                "delivery": {
                    "timestamp": iso(t),
                    "processingTimeMillis": rng.randint(300, 4000),
                    "recipients": [recipient],
                    "smtpResponse": "250 2.0.0 Ok: queued",
                    "reportingMTA": "a8-41.smtp-out.amazonses.com",
                    "remoteMtaIp": "203.0.113.25",
                },
            },
        )
    )
    if rng.random() < p.open:
        opens = 1
        while rng.random() < p.repeat_open and opens < 12:
            opens += 1
        for _ in range(opens):
            t += timedelta(minutes=rng.randint(1, 600))
            out.append(
                _envelope(
                    account,
                    "Open",
                    t,
                    {
                        "mail": mail,
                        "open": {
                            "timestamp": iso(t),
                            "userAgent": rng.choice(USER_AGENTS),
                            "ipAddress": f"198.51.100.{rng.randint(1, 254)}",
                        },
                    },
                )
            )
        if rng.random() < p.click:
            for link in rng.sample(LINKS, rng.randint(1, 3)):
                t += timedelta(seconds=rng.randint(5, 300))
                out.append(
                    _envelope(
                        account,
                        "Click",
                        t,
                        {
                            "mail": mail,
                            "click": {
                                "timestamp": iso(t),
                                "ipAddress": f"198.51.100.{rng.randint(1, 254)}",
                                "userAgent": rng.choice(USER_AGENTS),
                                "link": link,
                                "linkTags": {"campaign": [campaign]}
                                if rng.random() < 0.5
                                else None,
                            },
                        },
                    )
                )
    if rng.random() < p.complaint:
        t += timedelta(hours=rng.randint(1, 48))
        out.append(
            _envelope(
                account,
                "Complaint",
                t,
                {
                    "mail": mail,
                    "complaint": {
                        "feedbackId": f"{message_id[:16]}-{uuid.uuid4()}-000000",
                        "complaintSubType": None,
                        "complaintFeedbackType": "abuse",
                        "complainedRecipients": [{"emailAddress": recipient}],
                        "timestamp": iso(t),
                        "userAgent": "Yahoo!-Mail-Feedback/2.0",
                        "arrivalDate": iso(t),
                    },
                },
            )
        )
    return out


def traffic(
    account: str,
    messages: int,
    *,
    start: datetime | None = None,
    span: timedelta = timedelta(days=1),
    seed: int = 1,
    profile: Profile | None = None,
    until: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """`messages` messages sent evenly over `span` from `start`, with all their events; events
    that would happen after `until` (opens hours later, say) are not produced."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - span
    step = span / max(1, messages)
    for i in range(messages):
        recipient = f"user{rng.randint(1, max(10, messages // 2))}@example.com"
        for envelope in message_events(rng, account, recipient, start + step * i, profile):
            if until is None or datetime.fromisoformat(envelope["time"]) <= until:
                yield envelope
