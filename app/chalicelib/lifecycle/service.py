"""What the lifecycle routes call: each action done, and audited, in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.core import keys
from chalicelib.core.errors import Conflict, NotFound
from chalicelib.lifecycle import deletion, erasure
from chalicelib.lifecycle.audit import AuditLog
from chalicelib.lifecycle.deletion import TenantDeletion
from chalicelib.lifecycle.jobs import MORE, Job, Jobs

# DELETE /recipients/{email} works this long itself (API Gateway allows 29 s); what is left of a
# large erasure goes on in the background.
INLINE_SECONDS = 20.0


class Accounts(Protocol):
    """tenants.accounts.AccountService"""

    def disconnect(self, tenant: Any) -> tuple[Any, str | None]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Lifecycle:
    def __init__(
        self,
        accounts: Accounts,
        audit: AuditLog,
        jobs: Jobs,
        tenant_deletion: TenantDeletion,
        normalize: Callable[[object], str],
        *,
        clock: Callable[[], datetime] = _utcnow,
        inline_seconds: float = INLINE_SECONDS,
    ) -> None:
        self._accounts, self._audit, self._jobs = accounts, audit, jobs
        self._deletion, self._normalize = tenant_deletion, normalize
        self._clock, self._inline = clock, inline_seconds

    # ------------------------------------------------------------------ DELETE /account

    def disconnect(self, membership: Any) -> dict[str, Any]:
        tenant, account = self._accounts.disconnect(membership.tenant)
        if account is not None:
            self._audit.record(
                tenant.tenant_id,
                actor=membership.actor,
                action="account.disconnected",
                target=account,
                detail={"history": "kept"},
            )
        return {
            "disconnected": account,
            "connected": False,
            "history": "kept: events, messages and the suppression list stay",
        }

    # ------------------------------------------------------------------ erasure

    def erase(self, membership: Any, raw_email: object) -> tuple[int, dict[str, Any]]:
        address = self._normalize(raw_email)
        tid = membership.tenant.tenant_id
        job = self._jobs.create(
            tid, erasure.KIND, erasure.new_job_doc(tid, address, membership.actor, self._clock())
        )
        self._audit.record(
            tid,
            actor=membership.actor,
            action="recipient.erasure_requested",
            target=keys.address_hash(tid, address),
            detail={"job_id": job.job_id},
        )
        if self._jobs.advance(job, self._inline) == MORE:
            self._jobs.start(job)
            return 202, job.view()
        if job.doc.get("refused"):
            raise Conflict(str(job.doc["refused"]), details={"job_id": job.job_id})
        return 200, job.view()

    def erasure(self, membership: Any, job_id: str) -> dict[str, Any]:
        job = self._job(membership, job_id, erasure.KIND)
        self._jobs.resume_if_stalled(job)
        return job.view()

    # ------------------------------------------------------------------ tenant deletion

    def deletion_confirmation(self, membership: Any) -> dict[str, Any]:
        return self._deletion.confirmation(membership.tenant, _sub(membership))

    def delete_tenant(self, membership: Any, token: object) -> dict[str, Any]:
        tenant = membership.tenant
        self._deletion.verify(tenant, _sub(membership), token)
        started = self._deletion.begin(tenant)
        job = self._jobs.latest(tenant.tenant_id, deletion.KIND)
        if job is None:
            self._audit.record(
                tenant.tenant_id,
                actor=membership.actor,
                action="tenant.deletion_started",
                target=tenant.tenant_id,
            )
            doc = TenantDeletion.new_job_doc(tenant, membership.actor, _sub(membership), started)
            job = self._jobs.create(tenant.tenant_id, deletion.KIND, doc)
        self._jobs.start(job)
        return job.view()

    def deletion_progress(self, membership: Any) -> dict[str, Any]:
        job = self._jobs.latest(membership.tenant.tenant_id, deletion.KIND)
        if job is None:
            raise NotFound("this tenant is not being deleted")
        self._jobs.resume_if_stalled(job)
        return job.view()

    # ------------------------------------------------------------------ GET /audit

    def audit(self, membership: Any, limit: str | None, cursor: str | None) -> dict[str, Any]:
        return self._audit.entries(membership.tenant.tenant_id, limit, cursor)

    def _job(self, membership: Any, job_id: str, kind: str) -> Job:
        job = self._jobs.get(membership.tenant.tenant_id, job_id[:64]) if job_id else None
        if job is None or job.kind != kind:
            raise NotFound(f"no {kind} {job_id[:64]!r}")
        return job


def _sub(membership: Any) -> str:
    caller = membership.caller
    return str(caller.sub) if caller is not None else ""
