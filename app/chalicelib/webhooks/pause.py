"""A tenant's sending, paused by a reputation alert with auto-pause (alerts.py) until an admin
resumes it: every send through SES is refused with a 423 naming the alert.

Sending calls `refuse_if_paused` before it does anything for POST /mail and POST /mail/bulk
(423 `sending_paused`), and the composition root (core/wiring.py) builds each tenant's SES
sender through `guard`, so a bulk batch already running when the pause comes stops at its next
slice (the worker records the recipient as failed and stops the batch with the reason:
`SendingPaused` is an account-level `SesRefused`). A paused tenant's account is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.tenant_aws.ses import (
    DEFAULT_MAX_SEND_RATE,
    OutgoingEmail,
    SendRate,
    Ses,
    SesRefused,
)


class SendingPaused(SesRefused):
    status, code = 423, "sending_paused"

    def __init__(self, paused: Mapping[str, Any]) -> None:
        label = str(paused.get("label") or paused.get("rule") or "a reputation alert")
        value = paused.get("value")
        rate = f" at {100 * float(value):.2f} %" if isinstance(value, int | float) else ""
        super().__init__(
            f"sending is paused by SESami's alert {paused.get('alert_id')} ({label}{rate}) since "
            f"{paused.get('since')}; an admin resumes it on the Alerts page or with "
            "POST /alerts/resume",
            ses_code="SESamiSendingPaused",
            per_message=False,
        )
        self.details = {"alert": dict(paused)}


class PausedSes:
    """The sender of a paused tenant: refuses every message."""

    def __init__(self, paused: Mapping[str, Any]) -> None:
        self._paused = paused

    def send(self, email: OutgoingEmail) -> str:
        raise SendingPaused(self._paused)

    def send_rate(self) -> SendRate:
        return SendRate(DEFAULT_MAX_SEND_RATE, "default", "sending is paused")


def refuse_if_paused(paused: Mapping[str, Any] | None) -> None:
    """Sending's one call (POST /mail and /mail/bulk, before anything else is done)."""
    if paused:
        raise SendingPaused(paused)


def guard(paused: Mapping[str, Any] | None, build: Callable[[], Ses]) -> Ses:
    """The tenant's sender, or one that refuses while its sending is paused."""
    return PausedSes(paused) if paused else build()
