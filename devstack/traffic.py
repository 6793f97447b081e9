"""Realistic SES traffic as EventBridge envelopes, for benchmarks and the local stack's demo data.

Each message gets a Send, then most a Delivery (some a delay or a transient bounce first), some a
permanent bounce; delivered messages get opens (some repeated), clicks on some of the message's
links, and now and then a complaint. The records follow the shapes of the recorded events in
tests/events/.

Opens and clicks come from people and from machines, as they do in real mail:
- each recipient reads in one client: Apple Mail with Mail Privacy Protection (its relays fetch
  the images minutes after delivery, read or not, user agent `Mozilla/5.0`, a relay address; a
  person's later clicks come from Safari), Gmail (opens through GoogleImageProxy), Yahoo (its
  proxy) or a client that loads images itself (a desktop or phone mail app, webmail);
- some recipients sit behind a security gateway, which fetches the images and follows every link
  of the message within a second of delivery, most with an ordinary browser user agent.
`traffic(..., truth=...)` records what each generated open and click is, for the benchmarks.
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
# Clients that load images themselves (a person's device, with its own address).
USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/4.0 (compatible; ms-office; MSOffice 16)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.4.0",
]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
]
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
APPLE_MPP = "Mozilla/5.0"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
# Gateways mostly look like a browser; a few say who they are.
GATEWAY_AGENTS = [*BROWSERS[:1] * 4, "Barracuda Sentinel (EE)"]
# Addresses inside the shipped sample of Apple's relay ranges (app/.../apple_relay_egress.csv):
# 172.224.226.0/27 and 104.28.38.183-185, so the last digit is 3 to 5 (RELAY_DIGITS).
APPLE_RELAY = ["172.224.226.{}", "104.28.38.18{}"]
RELAY_DIGITS = (3, 5)
CAMPAIGNS = ["nov-newsletter", "product-update", "onboarding", "receipts"]


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


@dataclass
class Profile:
    """Rates per message (delivered messages for engagement) and the recipients' clients.
    The client shares are assumptions in the range of published mail-client market shares
    (Apple Mail leads, Gmail second); the gateway share is an assumption for B2B-ish lists."""

    permanent_bounce: float = 0.02
    transient_bounce: float = 0.01
    delay: float = 0.01
    open: float = 0.45  # a person opens (and lets images load)
    repeat_open: float = 0.35
    click: float = 0.25  # of those who open
    complaint: float = 0.001
    apple_mpp: float = 0.40
    gmail: float = 0.28
    yahoo: float = 0.04  # the rest: clients that load images themselves
    gateway: float = 0.10  # recipients behind a link-following security gateway


Truth = dict[str, str]  # envelope id -> human | apple_privacy | image_proxy | scanner


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
    truth: Truth | None = None,
) -> list[dict[str, Any]]:
    """Every envelope one message produces, in the order SES would publish them (opens and
    clicks of a message in time order; the message's events in SES order otherwise)."""
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
    t = _engagement(rng, account, mail, t, p, campaign, out, truth)
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
    truth: Truth | None = None,
) -> Iterator[dict[str, Any]]:
    """`messages` messages sent evenly over `span` from `start`, with all their events; events
    that would happen after `until` (opens hours later, say) are not produced. `truth`, if
    given, receives what each open and click is (the generator's intent)."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - span
    step = span / max(1, messages)
    for i in range(messages):
        recipient = f"user{rng.randint(1, max(10, messages // 2))}@example.com"
        sent = start + step * i
        for envelope in message_events(rng, account, recipient, sent, profile, truth=truth):
            if until is None or datetime.fromisoformat(envelope["time"]) <= until:
                yield envelope


def _engagement(
    rng: random.Random,
    account: str,
    mail: dict[str, Any],
    delivered: datetime,
    p: Profile,
    campaign: str,
    out: list[dict[str, Any]],
    truth: Truth | None,
) -> datetime:
    """The opens and clicks of one delivered message, by machines and by its reader, in time
    order; returns the time of the last one (or of the delivery)."""
    links = rng.sample(LINKS, rng.randint(2, 4))
    happened: list[tuple[datetime, str, dict[str, Any], str]] = []

    def open_(at: datetime, ua: str, ip: str, who: str) -> None:
        happened.append((at, "Open", {"userAgent": ua, "ipAddress": ip}, who))

    def click(at: datetime, ua: str, ip: str, link: str, who: str) -> None:
        tags = {"campaign": [campaign]} if rng.random() < 0.5 else None
        data = {"ipAddress": ip, "userAgent": ua, "link": link, "linkTags": tags}
        happened.append((at, "Click", data, who))

    if rng.random() < p.gateway:  # scanned on arrival: the images, then every link at once
        ua, ip = rng.choice(GATEWAY_AGENTS), f"192.0.2.{rng.randint(1, 254)}"
        # All within a second of delivery: the open by 0.5 s, each of up to 4 links 30-120 ms
        # after the one before (at most 0.98 s).
        at = delivered + timedelta(milliseconds=rng.randint(200, 500))
        open_(at, ua, ip, "scanner")
        for link in links:
            at += timedelta(milliseconds=rng.randint(30, 120))
            click(at, ua, ip, link, "scanner")
    roll = rng.random()
    client = (
        "apple"
        if roll < p.apple_mpp
        else "gmail"
        if roll < p.apple_mpp + p.gmail
        else "yahoo"
        if roll < p.apple_mpp + p.gmail + p.yahoo
        else "direct"
    )

    def relay_ip() -> str:
        return rng.choice(APPLE_RELAY).format(rng.randint(*RELAY_DIGITS))

    if client == "apple":  # MPP fetches when the device syncs, whether or not anyone reads
        open_(
            delivered + timedelta(seconds=rng.randint(2, 900)),
            APPLE_MPP,
            relay_ip(),
            "apple_privacy",
        )
    reads = rng.random() < p.open
    t = delivered
    if reads:
        opens = 1
        while rng.random() < p.repeat_open and opens < 12:
            opens += 1
        for _ in range(opens):
            t += timedelta(minutes=rng.randint(1, 600))
            if client == "apple":  # the person's opens go through the proxy too
                if rng.random() < 0.5:
                    open_(t, APPLE_MPP, relay_ip(), "apple_privacy")
            elif client == "gmail":
                open_(t, GMAIL_PROXY, f"66.249.84.{rng.randint(1, 254)}", "image_proxy")
            elif client == "yahoo":
                open_(t, YAHOO_PROXY, f"203.0.113.{rng.randint(1, 254)}", "image_proxy")
            else:
                open_(t, rng.choice(USER_AGENTS), f"198.51.100.{rng.randint(1, 254)}", "human")
        if rng.random() < p.click:
            for link in rng.sample(links, rng.randint(1, min(2, len(links)))):
                t += timedelta(seconds=rng.randint(5, 300))
                if client == "apple":
                    ip = relay_ip() if rng.random() < 0.3 else f"198.51.100.{rng.randint(1, 254)}"
                    click(t, SAFARI_IOS, ip, link, "human")
                else:
                    click(
                        t, rng.choice(BROWSERS), f"198.51.100.{rng.randint(1, 254)}", link, "human"
                    )
    happened.sort(key=lambda h: h[0])
    for at, kind, data, who in happened:
        section = "open" if kind == "Open" else "click"
        envelope = _envelope(
            account, kind, at, {"mail": mail, section: {"timestamp": iso(at), **data}}
        )
        if truth is not None:
            truth[envelope["id"]] = who
        out.append(envelope)
    return max([delivered, *(h[0] for h in happened)])
