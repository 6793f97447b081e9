"""Stored content: what SESami sent (rendered subject, HTML, text, the headers it set), per
tenant, for the tenant's retention (default 30 days; 0 keeps nothing), shown on the message page.

    keep(tenant, message_id, email)      after SES accepted a message (POST /mail, bulk worker);
                                         never fails the send: a failure is logged and counted
    view(tenant, message_id)             the `content` of GET /messages/{id}
    frame(token)                         GET /frames/{token}: the HTML, sanitised, in the frame
    delete_content(tenant, ids or ALL)   recipient erasure and tenant deletion
    purge_past_retention(tenant, ...)    a lowered retention (a lifecycle job) deletes what is
                                         past the new one

Retention is enforced twice: S3 lifecycle rules delete objects by their retention tag (see
content/retention.py), and every read checks `stored_at` against the shorter of the retention
the object was stored with and the tenant's current one, so a lowered retention (or 0) hides
older content at once and nothing is shown past its time, however late S3's expiry runs. A
lowered retention also deletes what is past it (`purge_past_retention`, run as a lifecycle job):
the lifecycle rules would keep each object for the retention it was stored with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from chalicelib.content.display import frame_document, frame_token, read_frame_token
from chalicelib.content.retention import ALLOWED_DAYS, DEFAULT_DAYS
from chalicelib.core import keys
from chalicelib.core.errors import NotFound, ServiceUnavailable
from chalicelib.core.headers import bad
from chalicelib.core.tables import TenantModel
from chalicelib.tenant_aws.ses import OutgoingEmail

log = logging.getLogger("sesami.content")

ALL: Literal["all"] = "all"


class ContentStore(Protocol):
    def put(self, tenant_id: str, message_id: str, document: dict[str, Any], days: int) -> None: ...

    def get(self, tenant_id: str, message_id: str) -> dict[str, Any] | None: ...

    def delete(self, tenant_id: str, message_ids: Iterable[str]) -> int: ...

    def delete_all(self, tenant_id: str) -> int: ...

    def delete_older(
        self,
        tenant_id: str,
        cutoff: datetime,
        start_after: str | None,
        out_of_time: Callable[[], bool],
    ) -> tuple[int, str | None]: ...


def retention_days(tenant: TenantModel) -> int:
    days = getattr(tenant, "content_retention_days", None)
    return DEFAULT_DAYS if days is None else int(days)


@dataclass
class Counts:
    stored: int = 0
    failed: int = 0


class ContentService:
    def __init__(
        self,
        store: ContentStore | None,
        signer: Any,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        frame_base: str = "frames",
    ) -> None:
        self._store, self._signer, self._clock = store, signer, clock
        self._frame_base = frame_base
        self.counts = Counts()

    @property
    def enabled(self) -> bool:
        return self._store is not None

    # ------------------------------------------------------------------ writing

    def keep(self, tenant: TenantModel, message_id: str, email: OutgoingEmail) -> bool:
        """Store what was sent; False when it was not (retention 0, no bucket, S3 failed)."""
        days = retention_days(tenant)
        if self._store is None or days <= 0:
            return False
        headers = [("From", email.sender), ("Subject", email.subject)]
        headers += [("To", a) for a in email.to] + [("Cc", a) for a in email.cc]
        headers += [("Reply-To", a) for a in email.reply_to]
        headers += list(email.headers)
        document = {
            "message_id": message_id,
            "stored_at": keys.iso_ms(self._clock()),
            "retention_days": days,
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "headers": [[n, v] for n, v in headers],
            "bcc": list(email.bcc),
            "tags": [[n, v] for n, v in email.tags],
            "configuration_set": email.configuration_set,
        }
        try:
            self._store.put(tenant.tenant_id, message_id, document, days)
        except Exception:
            self.counts.failed += 1
            log.exception("could not store the content of message %s", message_id)
            return False
        self.counts.stored += 1
        return True

    # ------------------------------------------------------------------ reading

    def view(self, tenant: TenantModel, message_id: str) -> dict[str, Any]:
        """The `content` of a message's page: `status` stored | not_stored | expired | off |
        unavailable (S3 did not answer)."""
        days = retention_days(tenant)
        if self._store is None:
            return {"status": "off", "retention_days": 0}
        try:
            document = self._live(tenant, message_id)
        except ServiceUnavailable as exc:  # the page still shows the rest
            return {"status": "unavailable", "retention_days": days, "message": exc.message}
        if document is None:
            return {"status": "not_stored" if days else "off", "retention_days": days}
        if document is _EXPIRED:
            return {"status": "expired", "retention_days": days}
        assert isinstance(document, dict)
        tid = tenant.tenant_id
        frame = None
        if document.get("html"):
            ref = {"m": message_id}
            blocked = frame_token(self._signer, tid, "content", ref, remote=False)
            remote = frame_token(self._signer, tid, "content", ref, remote=True)
            frame = {
                "url": f"{self._frame_base}/{blocked}",
                "url_with_remote_content": f"{self._frame_base}/{remote}",
            }
        return {
            "status": "stored",
            "retention_days": days,
            "stored_at": document["stored_at"],
            "expires_at": document["expires_at"],
            "subject": document.get("subject"),
            "html": document.get("html"),
            "text": document.get("text"),
            "headers": [{"name": n, "value": v} for n, v in document.get("headers", [])],
            "bcc": document.get("bcc", []),
            "html_frame": frame,
        }

    def frame(self, token: str) -> tuple[str, bool]:
        """(document, remote) for GET /frames/{token} of kind content."""
        data = read_frame_token(self._signer, token, now=self._clock().timestamp())
        if data["kind"] != "content" or not isinstance(data["ref"].get("m"), str):
            raise bad("token", "token is not a valid token")
        tenant = _tenant(data["tenant_id"])
        document = self._live(tenant, data["ref"]["m"]) if tenant is not None else None
        if not isinstance(document, dict) or not document.get("html"):
            raise NotFound("this message's content is not stored (any more)")
        return frame_document(str(document["html"])), bool(data["remote"])

    def _live(self, tenant: TenantModel, message_id: str) -> dict[str, Any] | object | None:
        """The stored document (with `expires_at`), _EXPIRED past its retention, or None."""
        assert self._store is not None
        if not message_id or len(message_id) > 256:
            return None
        document = self._store.get(tenant.tenant_id, message_id)
        if document is None or document.get("message_id") != message_id:
            return None
        stored_at = datetime.strptime(document["stored_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=UTC
        )
        days = min(int(document.get("retention_days") or 0), retention_days(tenant))
        expires = stored_at + timedelta(days=days)
        if self._clock() >= expires:
            return _EXPIRED
        return {**document, "expires_at": keys.iso_ms(expires)}

    # ------------------------------------------------------------------ erasure

    def delete_content(self, tenant_id: str, message_ids: Iterable[str] | Literal["all"]) -> int:
        """Delete stored content: of these messages, or (`ALL`) every message of the tenant.
        Returns how many objects were asked to be deleted. Idempotent; S3 failures raise
        ServiceUnavailable (retryable) and leave nothing half-reported."""
        if self._store is None:
            return 0
        if message_ids == ALL:
            return self._store.delete_all(tenant_id)
        assert not isinstance(message_ids, str)
        return self._store.delete(tenant_id, message_ids)

    def purge_past_retention(
        self, tenant_id: str, cursor: str | None, out_of_time: Callable[[], bool]
    ) -> tuple[int, str | None]:
        """Delete the tenant's content older than its retention *now* (all of it at 0), from
        `cursor` on, until done (None) or out of time (where to go on). What a lowered retention
        runs (lifecycle/content_retention.py): S3's lifecycle rules expire an object by the
        retention it was stored with, so without this an object kept for 365 days stays in S3
        (hidden, since every read uses the shorter retention) long after the tenant chose 7.
        The tenant's current setting is read at each call: raised again meanwhile, the purge
        deletes only what reads hide anyway."""
        tenant = _tenant(tenant_id)
        if self._store is None or tenant is None:  # a deleted tenant's deletion takes it all
            return 0, None
        cutoff = self._clock() - timedelta(days=retention_days(tenant))
        return self._store.delete_older(tenant_id, cutoff, cursor, out_of_time)

    # ------------------------------------------------------------------ settings

    def settings(self, tenant: TenantModel) -> dict[str, Any]:
        return {
            "retention_days": retention_days(tenant),
            "allowed_retention_days": list(ALLOWED_DAYS),
            "available": self._store is not None,
        }


_EXPIRED = object()


def parse_retention(body: dict[str, Any]) -> int:
    for name in body:
        if name != "retention_days":
            raise bad(name, f"unknown field {name}")
    days = body.get("retention_days")
    if isinstance(days, bool) or not isinstance(days, int) or days not in ALLOWED_DAYS:
        raise bad(
            "retention_days",
            f"retention_days is one of {', '.join(map(str, ALLOWED_DAYS))} (0 stores nothing)",
        )
    return days


def _tenant(tenant_id: str) -> TenantModel | None:
    from chalicelib.core import dynamo

    return dynamo.get(TenantModel, tenant_id)
