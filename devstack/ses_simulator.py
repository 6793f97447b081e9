"""What real SES does after a send, for the local stack: moto's SESv2 accepts mail but publishes
no events. `SimulatedSes` wraps a tenant's SES adapter; after each accepted message it produces
the events SES would publish to EventBridge, as envelopes from the tenant's account, and hands
them to the real ingest — following the SES mailbox simulator:

| recipient                               | events                                            |
|-----------------------------------------|---------------------------------------------------|
| success@simulator.amazonses.com         | Send, Delivery                                    |
| bounce@simulator.amazonses.com          | Send, Bounce (Permanent/General, 5.1.1)           |
| complaint@simulator.amazonses.com       | Send, Delivery, Complaint (abuse)                 |
| ooto@simulator.amazonses.com            | Send, Delivery (the auto-reply goes to the sender) |
| suppressionlist@simulator.amazonses.com | Send, Bounce (Permanent/OnAccountSuppressionList) |
| anyone else                             | Send, Delivery, and by chance Opens and a Click   |
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.tenant_aws.ses import OutgoingEmail, SendRate, Ses

from devstack.traffic import LINKS, USER_AGENTS, iso

SIMULATOR = "simulator.amazonses.com"
Deliver = Callable[[list[dict[str, Any]]], object]  # envelopes -> ingest


def _address(header_value: str) -> str:
    from email.utils import parseaddr

    return (parseaddr(header_value)[1] or header_value).lower()


def simulated_events(
    email: OutgoingEmail,
    message_id: str,
    account: str,
    *,
    at: datetime,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """The envelopes SES would publish for one accepted message."""
    rng = rng or random.Random()
    recipients = [_address(a) for a in (*email.to, *email.cc, *email.bcc)]
    tags: dict[str, list[str]] = {"ses:operation": ["SendEmail"]}
    if email.configuration_set:
        tags["ses:configuration-set"] = [email.configuration_set]
    for name, value in email.tags:
        tags.setdefault(name, []).append(value)
    mail = {
        "timestamp": iso(at),
        "source": email.sender,
        "sendingAccountId": account,
        "messageId": message_id,
        "destination": recipients,
        "headersTruncated": False,
        "commonHeaders": {
            "from": [email.sender],
            "to": list(email.to),
            "messageId": message_id,
            "subject": email.subject,
        },
        "tags": tags,
    }

    def envelope(event_type: str, detail_type: str, when: datetime, **data: Any) -> dict[str, Any]:
        return {
            "version": "0",
            "id": f"sim-{message_id}-{event_type}-{len(data)}-{iso(when)}",
            "detail-type": detail_type,
            "source": "aws.ses",
            "account": account,
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [],
            "detail": {"eventType": event_type, "mail": mail, **data},
        }

    t = at + timedelta(milliseconds=300)
    out = [envelope("Send", "Email Sent", at, send={})]
    delivered = []
    for address in recipients:
        local, _, domain = address.partition("@")
        t += timedelta(milliseconds=200)
        if domain == SIMULATOR and local in ("bounce", "suppressionlist"):
            subtype = "General" if local == "bounce" else "OnAccountSuppressionList"
            code = (
                "smtp; 550 5.1.1 user unknown"
                if local == "bounce"
                else "Amazon SES did not send the message to this address because it is on "
                "the suppression list for your account."
            )
            out.append(
                envelope(
                    "Bounce",
                    "Email Bounced",
                    t,
                    bounce={
                        "feedbackId": f"{message_id}-fb",
                        "bounceType": "Permanent",
                        "bounceSubType": subtype,
                        "timestamp": iso(t),
                        "bouncedRecipients": [
                            {
                                "emailAddress": address,
                                "action": "failed",
                                "status": "5.1.1",
                                "diagnosticCode": code,
                            }
                        ],
                    },
                )
            )
            continue
        delivered.append(address)
        out.append(
            envelope(
                "Delivery",
                "Email Delivered",
                t,
                delivery={
                    "timestamp": iso(t),
                    "recipients": [address],
                    "processingTimeMillis": 400,
                    "smtpResponse": "250 2.0.0 OK",
                    "reportingMTA": "a8-41.smtp-out.amazonses.com",
                },
            )
        )
        if domain == SIMULATOR and local == "complaint":
            out.append(
                envelope(
                    "Complaint",
                    "Email Complaint Received",
                    t + timedelta(seconds=1),
                    complaint={
                        "feedbackId": f"{message_id}-cf",
                        "complaintFeedbackType": "abuse",
                        "complainedRecipients": [{"emailAddress": address}],
                        "timestamp": iso(t + timedelta(seconds=1)),
                    },
                )
            )
    if len(recipients) == 1 and delivered and delivered[0].partition("@")[2] != SIMULATOR:
        opened = t
        while rng.random() < 0.5:
            opened += timedelta(seconds=rng.randint(4, 30))  # a person: not within 3 s
            out.append(
                envelope(
                    "Open",
                    "Email Opened",
                    opened,
                    open={
                        "timestamp": iso(opened),
                        "userAgent": rng.choice(USER_AGENTS),
                        "ipAddress": "198.51.100.7",
                    },
                )
            )
            if rng.random() < 0.4:
                out.append(
                    envelope(
                        "Click",
                        "Email Clicked",
                        opened + timedelta(seconds=3),
                        click={
                            "timestamp": iso(opened + timedelta(seconds=3)),
                            "link": rng.choice(LINKS),
                            "linkTags": None,
                            "ipAddress": "198.51.100.7",
                            "userAgent": rng.choice(USER_AGENTS),
                        },
                    )
                )
                break
    return out


class SimulatedSes:
    """A tenant's SES adapter whose accepted messages produce SES's events (local stack)."""

    def __init__(self, inner: Ses, account: str, deliver: Deliver, *, delay: float = 1.0) -> None:
        self._inner, self._account, self._deliver, self._delay = inner, account, deliver, delay

    def send(self, email: OutgoingEmail) -> str:
        message_id = self._inner.send(email)
        envelopes = simulated_events(email, message_id, self._account, at=datetime.now(UTC))
        if self._delay <= 0:
            self._deliver(envelopes)
        else:  # like SES: the events arrive a moment later, on their own

            def later() -> None:
                time.sleep(self._delay)
                self._deliver(envelopes)

            threading.Thread(target=later, daemon=True).start()
        return message_id

    def send_rate(self) -> SendRate:
        return self._inner.send_rate()
