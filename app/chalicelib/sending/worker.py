"""The bulk worker: sends a stored batch (see sending.MailService.send_bulk) in slices.

Long by design: claiming, pacing, the quota reservation, rendering and recording are one loop over
a slice; split, each part would re-read the claim it depends on.

    POST /mail/bulk  -> stores the batch, runner.start({"tenant_id", "batch_id", "next": 0})
    worker           -> claims the slice [next, end) by compare-and-swap on the summary, sends it
                        paced to the account's MaxSendRate within its time budget, records one
                        result per recipient, releases the claim with the index it reached, and
                        starts the next worker with {"next": that index}

Runners (`BulkRunner`): `LambdaRunner` invokes the `bulk_worker` Lambda function asynchronously
(InvocationType=Event; its name in the setting SESAMI_BULK_WORKER_FUNCTION); with it empty (the
local stack) `ThreadRunner` runs the worker in a background thread of this process.

Time budget: the Lambda context's remaining time minus `SAFETY_MARGIN_SECONDS`, or
`THREAD_BUDGET_SECONDS` without a context; the slice is what fits at the send rate (and at most
`MAX_PER_INVOCATION`). If sending runs slower than planned, the worker stops early and gives the
unsent rest of its slice back (the next worker starts there).

At most once. The slice is claimed before anything in it is sent: the summary's `next` moves to
the slice's end and `claim` records the slice with the invocation's hard deadline (Lambda ends it
by then), in one conditional write on the whole summary. An event carries the `next` it was
started for: a duplicate (Lambda's async retries, at-least-once delivery) finds `next` moved
and sends nothing. A worker that dies inside its slice (timeout, out of memory) never releases
its claim; once its deadline has passed, any invocation for the batch takes over: it closes the
dead claim and goes on after it. Recipients of the dead slice without a recorded result are
`unknown`: SES may or may not have sent them, and SESami never sends them again (a duplicate
message is worse than a missing one, and the caller can see which ones to check). A worker that
raises (SES or storage errors) closes its claim itself: the recipient in flight is `unknown`
unless its result was recorded; the rest of the slice is given back.

Quotas. Before sending its slice, a worker reserves the slice's recipients from the tenant's
sends per minute (`reserve_sends`, one count per slice) and sends at most what it was granted,
giving the rest back; granted nothing, it waits for the window to end (at most a minute, within
its budget) and asks again. A finished batch gives its bulk slot back (sending/slots.py).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from chalicelib.core.errors import ServiceUnavailable
from chalicelib.core.tables import TenantModel
from chalicelib.sending.batches import (
    FINAL,
    STALL_SECONDS,
    STATUSES,
    BatchSummary,
    BulkJob,
    Claim,
    JobRecipient,
    RecipientResult,
)
from chalicelib.sending.hooks import Hooks
from chalicelib.sending.slots import BulkSlots
from chalicelib.sending.store import SendingStore
from chalicelib.templates.mustache import MessageTemplate
from chalicelib.tenant_aws.ses import OutgoingEmail, Ses, SesRefused

log = logging.getLogger("sesami.sending")

SAFETY_MARGIN_SECONDS = 10.0
THREAD_BUDGET_SECONDS = 60.0
MAX_PER_INVOCATION = 1_000


class BulkRunner(Protocol):
    def start(self, event: dict[str, Any]) -> None: ...


class Grant(Protocol):
    """What a sends reservation granted (chalicelib.quotas.limiter.SendGrant)."""

    @property
    def granted(self) -> int: ...

    @property
    def retry_after(self) -> int: ...


ReserveSends = Callable[[TenantModel, int], Grant]


class LambdaRunner:
    """Invokes the bulk_worker function asynchronously (lambda:InvokeFunction on it)."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client, self._function = client, function_name

    def start(self, event: dict[str, Any]) -> None:
        self._client.invoke(
            FunctionName=self._function,
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )


class ThreadRunner:
    """The local stack: the worker in a daemon thread of this process."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        self._handler = handler

    def start(self, event: dict[str, Any]) -> None:
        threading.Thread(
            target=self._run, args=(dict(event),), name="sesami-bulk", daemon=True
        ).start()

    def _run(self, event: dict[str, Any]) -> None:
        try:
            self._handler(event, None)
        except Exception:
            log.exception("bulk worker thread failed for %s", event)


SesFor = Callable[[TenantModel], Ses]  # a tenant -> SES in its account


class Pacer:
    """Spaces calls `1 / per_second` apart (within one request; SES's own throttling, retried
    by botocore, covers concurrent requests of the same tenant)."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / max(per_second, 0.001)
        self._clock, self._sleep = clock, sleep
        self._next: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class BulkWorker:
    def __init__(
        self,
        store: SendingStore,
        ses_for: SesFor,
        signer: Any,
        runner: BulkRunner,
        public_url: str,
        *,
        tenant_for: Callable[[str], TenantModel],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
        max_per_invocation: int | None = None,
        reserve_sends: ReserveSends | None = None,
        slots: BulkSlots | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self._store, self._ses_for, self._signer, self._runner = store, ses_for, signer, runner
        self._public_url, self._tenant_for = public_url, tenant_for
        self._clock, self._sleep, self._wall = clock, sleep, wall
        self._max = max_per_invocation
        self._reserve, self._slots = reserve_sends, slots
        self._hooks = hooks or Hooks(suppressed=store.suppressed)

    def run(self, event: Mapping[str, Any], remaining_ms: float | None = None) -> dict[str, Any]:
        """One invocation: at most one slice. Returns what it did (for logs and tests)."""
        tid, bid = str(event["tenant_id"]), str(event["batch_id"])
        expected = event.get("next")
        doc = self._store.batch_summary(tid, bid)
        if doc is None:
            return {"sent": 0, "outcome": "missing"}
        now = self._wall()
        claim = doc.claim
        if claim and not claim.done:
            if now <= claim.deadline:
                return {"sent": 0, "outcome": "claimed"}  # a live worker has this slice
            # Its worker died inside the slice: close the claim, its unrecorded ones are unknown.
            closed = doc.but(claim=replace(claim, done=True), updated=now)
            if not self._store.replace_summary(tid, bid, doc, closed):
                return {"sent": 0, "outcome": "raced"}
            log.warning("bulk batch %s: took over the dead slice %s", bid, claim)
            doc = closed
        elif expected is not None and expected != doc.next:
            return {"sent": 0, "outcome": "duplicate"}
        if doc.stopped or doc.next >= doc.total:
            return {"sent": 0, "outcome": "finished"}

        tenant = self._tenant_for(tid)
        ses = self._ses_for(tenant)
        rate = ses.send_rate()
        if remaining_ms is None:
            budget, hard = THREAD_BUDGET_SECONDS, THREAD_BUDGET_SECONDS + SAFETY_MARGIN_SECONDS
        else:
            hard = remaining_ms / 1000.0
            budget = max(hard - SAFETY_MARGIN_SECONDS, 0.0)
        size = max(1, math.floor(budget * rate.per_second) + 1)
        size = min(size, self._max if self._max is not None else MAX_PER_INVOCATION)
        start = doc.next
        end = min(doc.total, start + size)
        claim = Claim(start, end, now + hard)
        claimed = doc.but(
            next=end, claim=claim, status="sending", send_rate=rate.view(), updated=now
        )
        if not self._store.replace_summary(tid, bid, doc, claimed):
            return {"sent": 0, "outcome": "raced"}

        job = self._store.batch_job(tid, bid)
        allowance, waited = self._allowance(tenant, job, claim, budget)
        sent, reached, stopped = self._send_slice(
            tenant, bid, job, claimed, ses, rate.per_second, budget - waited, allowance
        )
        done = claimed.but(next=reached, claim=replace(claim, done=True), updated=self._wall())
        if stopped:
            done = done.but(stopped=stopped)
        if reached >= done.total or stopped:
            done = done.but(status="finished")
        if not self._store.replace_summary(tid, bid, claimed, done):
            log.error("bulk batch %s: slice %s was taken over while running", bid, claim)
            return {"sent": sent, "outcome": "overtaken"}
        if done.status == "finished" and self._slots is not None:
            self._slots.release(tid, bid)
        if done.status == "sending":
            try:
                self._runner.start({"tenant_id": tid, "batch_id": bid, "next": reached})
            except Exception as exc:
                log.exception("bulk batch %s: could not start the next worker", bid)
                reason = f"not sent: the next bulk worker could not be started ({exc})"
                self._store.replace_summary(
                    tid, bid, done, done.but(stopped=reason, status="finished")
                )
                if self._slots is not None:
                    self._slots.release(tid, bid)
        return {"sent": sent, "outcome": "sent", "slice": [start, end], "next": reached}

    def _allowance(
        self, tenant: TenantModel, job: BulkJob, claim: Claim, budget: float
    ) -> tuple[int | None, float]:
        """(how many of the slice may be sent, None for no limit; seconds spent waiting)."""
        if self._reserve is None:
            return None, 0.0
        wanted = sum(1 for i in range(claim.start, claim.end) if i not in job.suppressed)
        began = self._clock()
        while wanted:
            grant = self._reserve(tenant, wanted)
            waited = self._clock() - began
            if grant.granted or waited + grant.retry_after > budget:
                return grant.granted, waited
            log.info("bulk: tenant's sends spent for this minute, waiting %ss", grant.retry_after)
            self._sleep(float(grant.retry_after))
        return 0, self._clock() - began

    def _send_slice(
        self,
        tenant: TenantModel,
        batch_id: str,
        job: BulkJob,
        doc: BatchSummary,
        ses: Ses,
        per_second: float,
        budget: float,
        allowance: int | None = None,
    ) -> tuple[int, int, str | None]:
        """(sent, index reached, stop reason). Raising inside is caught: the recipient in flight
        stays unknown, the rest of the slice is given back, as it is past `allowance` sends."""
        tid = tenant.tenant_id
        claim = doc.claim
        assert claim is not None
        pacer = Pacer(per_second, self._clock, self._sleep)
        template = MessageTemplate.parse(job.subject, job.html, job.text)
        # Suppressions written since the batch was queued (a bounce, an unsubscribe) count too:
        # the slice is checked again right before it is sent.
        due = [i for i in range(claim.start, claim.end) if i not in job.suppressed]
        try:
            now_suppressed = self._hooks.suppressed(tid, [job.recipients[i].address for i in due])
        except Exception as exc:
            log.exception("bulk batch %s: the suppression check failed", batch_id)
            return 0, claim.start, f"not sent: the suppression list could not be read ({exc})"
        began = self._clock()
        sent = 0
        i = claim.start
        try:
            while i < claim.end:
                if i in job.suppressed:
                    i += 1
                    continue
                entry = now_suppressed.get(job.recipients[i].key)
                if entry is not None:
                    result = RecipientResult(
                        entry.address,
                        "suppressed",
                        reason=entry.reason,
                        reasons=entry.reasons,
                        since=entry.since,
                    )
                    self._store.record_result(tid, batch_id, i, result)
                    i += 1
                    continue
                if sent and self._clock() - began + pacer.interval > budget:
                    return sent, i, None  # slower than planned: the rest goes to the next worker
                if allowance is not None and sent >= allowance:
                    return sent, i, None  # the sends quota's share: the rest, next window
                pacer.wait()
                recipient = job.recipients[i]
                email = self._email(tenant, job, template, doc, recipient)
                try:
                    message_id = ses.send(email)
                except (SesRefused, ServiceUnavailable) as exc:
                    failed = RecipientResult(recipient.address, "failed", error=exc.message)
                    self._store.record_result(tid, batch_id, i, failed)
                    if isinstance(exc, SesRefused) and exc.per_message:
                        i += 1
                        continue
                    why = (
                        "SES refused the account's sending"
                        if isinstance(exc, SesRefused)
                        else ("SES was unavailable")
                    )
                    return sent, i + 1, f"not sent: {why} ({exc.message})"
                result = RecipientResult(recipient.address, "sent", message_id=message_id)
                self._store.record_result(tid, batch_id, i, result)
                sent += 1
                self._hooks.keep_content(tenant, message_id, email)
                self._store.record_sent(
                    tid,
                    message_id,
                    source=job.sender,
                    subject=email.subject,
                    destination=[recipient.address],
                    tags={**dict(email.tags), "ses:configuration-set": doc.configuration_set},
                )
                i += 1
        except Exception:
            log.exception("bulk batch %s: the worker failed at recipient %d", batch_id, i)
            return sent, i + 1, None
        return sent, i, None

    def _email(
        self,
        tenant: TenantModel,
        job: BulkJob,
        template: MessageTemplate,
        doc: BatchSummary,
        recipient: JobRecipient,
    ) -> OutgoingEmail:
        token = self._signer.sign("unsubscribe", {"t": tenant.tenant_id, "r": recipient.key})
        subject, html_body, text_body = template.render(recipient.variables)
        return OutgoingEmail(
            sender=job.sender,
            subject=subject,
            html=html_body,
            text=text_body,
            to=(recipient.header,),
            reply_to=job.reply_to,
            headers=(
                ("List-Unsubscribe", f"<{self._public_url}/unsubscribe/{token}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ),
            tags=job.tags,
            configuration_set=doc.configuration_set,
        )


def batch_view(
    summary: BatchSummary,
    addresses: list[str],
    results: Mapping[int, RecipientResult],
    now: float,
) -> dict[str, Any]:
    """GET /mail/bulk/{id}: the summary with one result per recipient and the counts."""
    claim = summary.claim
    open_claim = claim if claim and not claim.done else None
    live = open_claim is not None and now <= open_claim.deadline
    stopped = summary.stopped
    idle = now - float(summary.updated or now)
    if not stopped and not live and summary.next < summary.total and idle > STALL_SECONDS:
        stopped = "not sent: the bulk worker stopped (its invocation was lost); send again"
    rows: list[RecipientResult] = []
    for i, address in enumerate(addresses):
        if i in results:
            rows.append(results[i])
        elif open_claim and open_claim.start <= i < open_claim.end:
            rows.append(RecipientResult(address, "sending" if live else "unknown"))
        elif i < summary.next:
            rows.append(RecipientResult(address, "unknown"))
        elif stopped:
            rows.append(RecipientResult(address, "not_sent", error=stopped))
        else:
            rows.append(RecipientResult(address, "queued"))
    counts = {s: 0 for s in STATUSES}
    for row in rows:
        counts[row.status] += 1
    if counts["queued"] or counts["sending"]:
        status = "sending" if claim or counts["sending"] else "queued"
    else:
        status = "done" if counts["not_sent"] + counts["unknown"] == 0 else "incomplete"
    return {
        "batch_id": summary.batch_id,
        "status": status,
        "created_at": summary.created_at,
        "configuration_set": summary.configuration_set,
        "progress": {"total": len(rows), "processed": sum(counts[s] for s in FINAL)},
        "counts": counts,
        "send_rate": summary.send_rate,
        "results": [r.doc() for r in rows],
    }
