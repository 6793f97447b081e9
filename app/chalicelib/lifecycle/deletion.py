"""Tenant deletion: everything of the tenant, in every table, in the background.

Long by design: the purge steps share one cursor and one count; each is a few lines.

    POST /tenant/deletion   -> a confirmation token (signed: this tenant, this admin, 10 minutes)
                               and what will be deleted
    DELETE /tenant          with {"confirmation": token} -> 202: the deletion starts
    GET /tenant/deletion    -> its progress (counts per table, the step it is at)

Starting (in the request, one transaction): the tenant is marked `deletion_started_at`, its AWS
account's binding is removed and its role forgotten. From then on every API call of its users is
a 410 (tenants/membership.py), nobody is bound to it again, ingest drops its account's events as
unknown, and its unfinished bulk batches are stopped. Then the job (jobs.py) deletes, table by
table, every item under the tenant's keys or in its index entries (items.py): events with their
tag copies, messages, counters and link counters, the suppression list with its tombstones and
erased entries, idempotency records and batches, quarantined events, templates and stored
content, webhook endpoints (with the marks of deleted ones and of erased addresses), every
endpoint's delivery log, alert rules and their history. Writers that were already
running when it started (a bulk slice: up to the worker's 5-minute timeout; an ingest instance
with a cached binding: 60 s; an API request: 30 s) may still add an item, so after
`SETTLE_SECONDS` a second pass sweeps the same places. Last: the tenant's users (the users
table and the user pool), its audit trail and jobs, and the tenant record. A receipt is kept
under `DELETED#<tenant>` (not a tenant key): who asked, when, and the counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.core import dynamo, keys
from chalicelib.core.errors import Conflict, InvalidRequest
from chalicelib.core.signing import Signer
from chalicelib.core.tables import (
    AccountModel,
    AlertHistoryModel,
    AlertRuleModel,
    AuditModel,
    BatchModel,
    CounterModel,
    EventModel,
    JobModel,
    LinkCounterModel,
    MessageModel,
    QuarantineModel,
    SuppressionModel,
    SuppressionVersionModel,
    TemplateModel,
    TenantModel,
    UserModel,
    WebhookDeliveryModel,
    WebhookMarkModel,
)
from chalicelib.lifecycle import items
from chalicelib.lifecycle.audit import AuditLog
from chalicelib.lifecycle.jobs import DONE, MORE, REMOVED, RUNNING, WAITING, Job

log = logging.getLogger("sesami.lifecycle")

KIND = "deletion"
CONFIRM_PURPOSE = "tenant-deletion"
CONFIRM_SECONDS = 600
# Longer than any writer that may still be running when the deletion starts: a bulk worker
# slice (its Lambda timeout, 300 s), an ingest instance's cached binding (60 s), an API call.
SETTLE_SECONDS = 420
RECEIPT_DAYS = 400
PURGE = (
    "batches",
    "events",
    "pending",
    "counters",
    "suppression",
    "sending",
    "quarantine",
    "templates",
    "content",
    "webhooks",
)
# Stored content is deleted through chalicelib.content (S3); tenant id -> objects deleted.
DeleteContent = Callable[[str], int]
STEPS = (*PURGE, "settle", *(f"sweep_{s}" for s in PURGE), "users", "lifecycle", "finish")


class Users(Protocol):
    """The user pool (tenants.membership.CognitoUserDirectory)."""

    def delete_user(self, username: str) -> bool: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TenantDeletion:
    """Confirmation and start (the API), and the job handler (jobs.Handler)."""

    def __init__(
        self,
        signer: Signer,
        audit: AuditLog,
        users: Callable[[], Users],
        retention_days: int,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        settle_seconds: float = SETTLE_SECONDS,
        delete_content: DeleteContent = lambda tenant_id: 0,
    ) -> None:
        self._signer, self._audit, self._users = signer, audit, users
        self._delete_content = delete_content
        self._retention, self._clock = retention_days, clock
        self._sleep, self._settle = sleep, settle_seconds

    # ------------------------------------------------------------------ the request side

    def confirmation(self, tenant: TenantModel, actor_sub: str) -> dict[str, Any]:
        expires = self._clock() + timedelta(seconds=CONFIRM_SECONDS)
        token = self._signer.sign(
            CONFIRM_PURPOSE,
            {"t": tenant.tenant_id, "u": actor_sub, "exp": int(expires.timestamp())},
        )
        return {
            "confirmation": token,
            "expires_at": keys.iso_ms(expires),
            "tenant_id": tenant.tenant_id,
            "will_delete": [
                "every event, message, counter and link click of the tenant",
                "the suppression list, its removed and erased entries",
                "bulk batches and idempotency records, quarantined events",
                "stored templates and their versions, the stored content of sent mail",
                "webhook endpoints and their delivery logs, alert rules and their history",
                "the connection to the AWS account (its events are no longer accepted)",
                "the tenant's users and their logins, the audit trail, the tenant",
            ],
            "then": 'DELETE /tenant with {"confirmation": <this token>} within 10 minutes',
        }

    def verify(self, tenant: TenantModel, actor_sub: str, token: object) -> None:
        if not isinstance(token, str) or not token:
            raise InvalidRequest(
                "confirmation is required: POST /tenant/deletion gives one",
                details={"field": "confirmation"},
            )
        data = self._signer.verify(CONFIRM_PURPOSE, token, field="confirmation")
        if data.get("t") != tenant.tenant_id or data.get("u") != actor_sub:
            raise InvalidRequest(
                "confirmation is not a valid token", details={"field": "confirmation"}
            )
        if int(data.get("exp", 0)) < self._clock().timestamp():
            raise InvalidRequest(
                "the confirmation has expired: ask for a new one",
                details={"field": "confirmation"},
            )

    def begin(self, tenant: TenantModel) -> datetime:
        """Mark the tenant, drop its binding and role, in one transaction. Returns when it
        started (the earlier start, if a deletion had already begun)."""
        if tenant.deletion_started_at is not None:
            return tenant.deletion_started_at
        now = self._clock()
        binding = dynamo.get(AccountModel, tenant.account_id) if tenant.account_id else None

        def build(txn: Any) -> None:
            txn.update(
                TenantModel(tenant.tenant_id),
                actions=[
                    TenantModel.deletion_started_at.set(now),
                    TenantModel.role_arn.remove(),
                ],
                condition=TenantModel.tenant_id.exists()
                & TenantModel.deletion_started_at.does_not_exist(),
            )
            if binding is not None and binding.tenant_id == tenant.tenant_id:
                txn.delete(
                    AccountModel(binding.account_id),
                    condition=(AccountModel.tenant_id == tenant.tenant_id)
                    & (AccountModel.bound_at == binding.bound_at),
                )

        if dynamo.transact("tenant deletion start", build) is not None:
            fresh = dynamo.get(TenantModel, tenant.tenant_id)
            if fresh is None or fresh.deletion_started_at is None:
                raise Conflict("the tenant changed meanwhile; try again")
            return fresh.deletion_started_at
        return now

    @staticmethod
    def new_job_doc(
        tenant: TenantModel, actor: str, actor_sub: str, started: datetime
    ) -> dict[str, Any]:
        return {
            "requested_by": actor,
            "_requested_by_sub": actor_sub,
            "started_at": keys.iso_ms(started),
            "step": STEPS[0],
            "counts": {},
            "account_id": tenant.account_id,
        }

    # ------------------------------------------------------------------ the job

    def advance(self, job: Job, out_of_time: Callable[[], bool], save: Callable[[], None]) -> str:
        tenant = dynamo.get(TenantModel, job.tenant_id)
        if tenant is None:
            return DONE
        run = _Purge(
            tenant, job.doc["counts"], self._clock(), self._retention, self._delete_content
        )
        doc = job.doc
        while doc["step"] != "finish":
            step = doc["step"]
            if step == "settle":
                if not self._settled(job, out_of_time, save):
                    return MORE
            elif step == "users":
                self._delete_users(job.tenant_id, run)
            elif step == "lifecycle":
                run.lifecycle(job.job_id)
            else:
                name = step.removeprefix("sweep_")
                if not getattr(run, name)(doc, out_of_time):
                    save()
                    return MORE
            doc["step"] = STEPS[STEPS.index(step) + 1]
            doc.pop("cursor", None)
            job.state = RUNNING
            save()
            if out_of_time():
                return MORE
        self._finish(job, tenant)
        return REMOVED

    def _settled(self, job: Job, out_of_time: Callable[[], bool], save: Callable[[], None]) -> bool:
        started = datetime.fromisoformat(str(job.doc["started_at"]).replace("Z", "+00:00"))
        ready = started + timedelta(seconds=self._settle)
        job.doc["sweep_after"] = keys.iso_ms(ready)
        while self._clock() < ready:
            if out_of_time():
                if job.state != WAITING:
                    job.state = WAITING
                    save()
                return False
            self._sleep(min(5.0, max(0.0, (ready - self._clock()).total_seconds())))
        return True

    def _delete_users(self, tenant_id: str, run: _Purge) -> None:
        users = [u.sub for u in items.everything(UserModel, tenant_id, index=UserModel.by_tenant)]
        pool = self._users()
        for sub in users:
            user = dynamo.get(UserModel, sub)
            if user is None or user.tenant_id != tenant_id:
                continue
            if pool.delete_user(user.email or sub):
                run.count("user_logins")
            run.count("users", items.delete(UserModel, [(sub, None)]))

    def _finish(self, job: Job, tenant: TenantModel) -> None:
        doc = job.doc
        now = self._clock()
        receipt = JobModel(
            keys.receipt_pk(tenant.tenant_id),
            "RECEIPT",
            kind=KIND,
            state="finished",
            doc={
                "tenant_id": tenant.tenant_id,
                "requested_by_sub": doc.get("_requested_by_sub"),
                "started_at": doc["started_at"],
                "finished_at": keys.iso_ms(now),
                "counts": {**doc["counts"], "tenants": 1},
            },
            expires_at=now + timedelta(days=RECEIPT_DAYS),
        )
        items.save([receipt])
        items.delete(JobModel, [(keys.job_pk(tenant.tenant_id), job.job_id)])
        with dynamo.storage("tenant delete"):
            TenantModel(tenant.tenant_id).delete(condition=TenantModel.deletion_started_at.exists())
        log.info("tenant %s deleted: %s", tenant.tenant_id, receipt.doc)


class _Purge:
    """Deletes what is under the tenant's keys, table by table, resumable by a cursor."""

    def __init__(
        self,
        tenant: TenantModel,
        counts: dict[str, int],
        now: datetime,
        retention_days: int,
        delete_content: DeleteContent,
    ) -> None:
        self.tenant, self.tid, self.counts = tenant, tenant.tenant_id, counts
        self._delete_content = delete_content
        self.now, self.retention = now, retention_days
        self.shards = max(1, int(tenant.write_shards or 1))

    def count(self, kind: str, n: int = 1) -> None:
        if n:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def _add(self, removed: dict[str, int]) -> None:
        for kind, n in removed.items():
            self.count(kind, n)

    def batches(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        """Stop every unfinished batch, so that no new slice starts (a running one ends)."""
        for pk in items.sending_partitions(self.tid):
            summary = dynamo.get(BatchModel, pk, "B")
            if summary is None or summary.doc.get("status") == "finished":
                continue
            stopped = {
                **summary.doc,
                "stopped": "not sent: the tenant was deleted",
                "status": "finished",
            }
            _replace_doc(summary, stopped)
        return True

    def events(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        def remove(rows: list[EventModel]) -> None:
            for message_id in dict.fromkeys(r.message_id for r in rows):
                self._add(items.delete_message(self.tid, message_id))
            copies = [c for r in rows for c in items.tag_copies(self.tid, r)]
            self.count("events", items.delete(EventModel, [(r.pk, r.sk) for r in rows] + copies))

        shards = [(shard, keys.events_pk(self.tid, shard)) for shard in range(self.shards)]
        return items.walk(EventModel, shards, doc, out_of_time, remove, name="shard")

    def pending(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for entry in items.indexed(self.tid, MessageModel, MessageModel.by_pending):
            agg = dynamo.get(MessageModel, entry.pk, "AGG")
            if agg is not None:
                self._add(items.delete_message(self.tid, agg.message()))
            if out_of_time():
                return False
        return True

    def counters(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for shard in range(self.shards):
            pk = keys.counter_pk(self.tid, shard)
            self.count(
                "counters",
                items.delete(
                    CounterModel, [(c.pk, c.sk) for c in items.everything(CounterModel, pk)]
                ),
            )
        since = max(self.tenant.created_at, self.now - timedelta(days=self.retention)) - timedelta(
            days=1
        )
        day_list = items.days(since, self.now + timedelta(days=1))
        start = int(doc.get("cursor") or 0)
        for n in range(start, len(day_list)):
            # Link counters are kept per month: its first day listed (or the cursor's) reads it.
            if n > start and keys.month_of(day_list[n]) == keys.month_of(day_list[n - 1]):
                continue
            for shard in range(self.shards):
                pk = keys.link_pk(self.tid, day_list[n], shard)
                found = [(c.pk, c.sk) for c in items.everything(LinkCounterModel, pk)]
                self.count("counters", items.delete(LinkCounterModel, found))
            if out_of_time() and n + 1 < len(day_list):
                doc["cursor"] = n + 1
                return False
        return True

    def suppression(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for pk in (keys.tenant_pk(self.tid), keys.removed_pk(self.tid), keys.erased_pk(self.tid)):
            found = [(s.pk, s.address) for s in items.everything(SuppressionModel, pk)]
            self.count("suppression", items.delete(SuppressionModel, found))
        # The list's version counters (the send-time cache's key) go with it.
        counters = [
            (keys.suppression_version_pk(self.tid, n), "SV")
            for n in range(keys.SUPPRESSION_VERSION_SHARDS)
        ]
        items.delete(SuppressionVersionModel, counters)
        return True

    def templates(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        """Every template's draft, versions and metadata, then the heads and their count."""
        heads = list(items.everything(TemplateModel, keys.templates_pk(self.tid)))
        for head in heads:
            if head.sk.startswith("H#"):
                pk = keys.template_pk(self.tid, head.sk.removeprefix("H#"))
                found = [(t.pk, t.sk) for t in items.everything(TemplateModel, pk)]
                self.count("templates", items.delete(TemplateModel, found))
        items.delete(TemplateModel, [(h.pk, h.sk) for h in heads])
        return True

    def content(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        self.count("content", self._delete_content(self.tid))
        return True

    def sending(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for pk in items.sending_partitions(self.tid):
            found = [(b.pk, b.sk) for b in items.everything(BatchModel, pk)]
            self.count("sending", items.delete(BatchModel, found))
            if out_of_time():
                return False
        return True

    def webhooks(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        """Every endpoint's delivery log (a deleted endpoint's too: its GONE# mark names it), a
        page at a time (what is deleted is not found again: resuming needs no cursor), then the
        alert rules and history, then the endpoints and marks themselves."""
        for endpoint_id in items.webhook_endpoints(self.tid):
            pk = keys.deliveries_pk(self.tid, endpoint_id)
            while True:
                rows, more = items.page(WebhookDeliveryModel, pk)
                self.count(
                    "webhooks", items.delete(WebhookDeliveryModel, [(r.pk, r.sk) for r in rows])
                )
                if more is None:
                    break
                if out_of_time():
                    return False
        alerts = keys.alerts_pk(self.tid)
        for model, prefix in ((AlertRuleModel, "R#"), (AlertHistoryModel, "H#")):
            found = [
                (a.pk, a.sk)
                for a in items.everything(
                    model, alerts, range_key_condition=model.sk.startswith(prefix)
                )
            ]
            self.count("webhooks", items.delete(model, found))
        # Endpoints (EP#), deleted endpoints (GONE#) and erased addresses (X#), read as keys.
        marks = items.everything(WebhookMarkModel, keys.webhooks_pk(self.tid))
        self.count("webhooks", items.delete(WebhookMarkModel, [(m.pk, m.sk) for m in marks]))
        return True

    def quarantine(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        found = [
            (q.pk, q.sk)
            for q in items.everything(QuarantineModel, self.tid, index=QuarantineModel.by_tenant)
        ]
        self.count("quarantine", items.delete(QuarantineModel, found))
        return True

    def lifecycle(self, job_id: str) -> None:
        audit = [(a.pk, a.sk) for a in items.everything(AuditModel, keys.audit_pk(self.tid))]
        jobs = [
            (j.pk, j.sk)
            for j in items.everything(JobModel, keys.job_pk(self.tid))
            if j.sk != job_id
        ]
        self.count("lifecycle", items.delete(AuditModel, audit) + items.delete(JobModel, jobs))


def _replace_doc(summary: BatchModel, new: dict[str, Any]) -> bool:
    """Compare-and-swap of a batch summary (as the bulk worker does it)."""
    old = dict(summary.doc)
    return dynamo.write_if(
        "batch stop",
        lambda: summary.update(actions=[BatchModel.doc.set(new)], condition=BatchModel.doc == old),
    )
