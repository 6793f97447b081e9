"""The tenant's audit trail: who did what to the tenant's account and data, when, and what it
changed. Entries live in the tenant's partition of the lifecycle table (T#t#AUDIT, newest last
by time), are written by the service that acts, and are listed by GET /audit. An erasure's
entry names the address only by its salted hash (keys.address_hash): the trail must not
keep what the erasure removed, and whoever knows the address can still find its entry.

A tenant deletion removes the tenant's trail with everything else; what remains of it is the
receipt (keys.receipt_pk): who asked, when, and how many items of each kind were deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import api, dynamo, keys
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.signing import Signer
from chalicelib.core.tables import AuditModel

CURSOR_PURPOSE = "audit-cursor"
MAX_LIMIT, DEFAULT_LIMIT = 100, 50


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    def __init__(self, signer: Signer, clock: Callable[[], datetime] = _utcnow) -> None:
        self._signer, self._clock = signer, clock

    def record(
        self,
        tenant_id: str,
        *,
        actor: str,
        action: str,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        now = self._clock()
        entry = AuditModel(
            keys.audit_pk(tenant_id),
            keys.audit_sk(now, uuid.uuid4().hex[:12]),
            at=keys.iso_ms(now),
            actor=actor,
            action=action,
            target=target,
            detail=dict(detail or {}) or None,
        )
        with dynamo.storage("audit write"):
            entry.save()
        return view(entry)

    def entries(self, tenant_id: str, limit: str | None, cursor: str | None) -> dict[str, Any]:
        """Newest first, a page at a time (a signed cursor bound to the tenant)."""
        size = _limit(limit)
        start = None
        if cursor:
            data = self._signer.verify(CURSOR_PURPOSE, cursor, field="next")
            if data.get("t") != tenant_id:
                raise InvalidRequest("next is not a valid token", details={"field": "next"})
            start = {"pk": {"S": keys.audit_pk(tenant_id)}, "sk": {"S": str(data["sk"])}}
        with dynamo.storage("audit read"):
            page = AuditModel.query(
                keys.audit_pk(tenant_id),
                scan_index_forward=False,
                limit=size,
                last_evaluated_key=start,
            )
            items = list(page)
            last = page.last_evaluated_key
        nxt = (
            self._signer.sign(CURSOR_PURPOSE, {"t": tenant_id, "sk": last["sk"]["S"]})
            if last and len(items) == size
            else None
        )
        return {"entries": [view(e) for e in items], "next": nxt}


def view(entry: AuditModel) -> dict[str, Any]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": entry.detail or {},
    }


def _limit(raw: str | None) -> int:
    return api.parse_limit(raw, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
