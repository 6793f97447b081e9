"""Telling a tenant's admins by email (an alert fired or resolved, an endpoint was disabled).

The mail goes out through SES in SESami's own account (not the tenant's, whose sending may be
what is in trouble), from `SESAMI_ALERTS_FROM`, an identity the operator verified there. Without
it, alerts still reach the webhooks and the dashboard, and this says once that email is off. A
failure to email is logged, never raised: an alert is recorded and its webhooks sent regardless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chalicelib.core import aws
from chalicelib.core.headers import check_header

log = logging.getLogger("sesami.alerts")
MAX_RECIPIENTS = 50  # SES's limit per message


class AdminMailer:
    def __init__(
        self,
        client: Callable[[], Any] | None,
        sender: str,
        admins: Callable[[str], list[str]],
    ) -> None:
        self._client, self._sender, self._admins = client, sender, admins
        self._said_off = False

    def tell(self, tenant_id: str, subject: str, text: str) -> int:
        """Email the tenant's admins; how many were mailed."""
        if not self._sender or self._client is None:
            if not self._said_off:
                log.info("alert emails are off: SESAMI_ALERTS_FROM is not set")
                self._said_off = True
            return 0
        to = self._admins(tenant_id)[:MAX_RECIPIENTS]
        if not to:
            return 0
        check_header(subject, "subject")
        try:
            self._client().send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": to},
                Content={
                    "Simple": {
                        "Subject": {"Data": subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                    }
                },
            )
        except aws.errors() as exc:
            log.error("could not email the admins of tenant %s: %s", tenant_id, aws.failure(exc))
            return 0
        return len(to)
