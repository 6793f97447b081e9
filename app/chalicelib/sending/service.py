"""Sending mail through the tenant's own SES account: POST /mail, POST /mail/bulk and
GET /mail/bulk/{id}.

    requests.py      reads and checks requests (addresses, header safety, sizes)
    bulk.py          reads and checks bulk requests (templates, per-recipient variables)
    store.py         DynamoDB: suppression check, the message recorded at send time,
                     idempotency records, bulk batches
    suppression_cache.py, momento_cache.py   the send-time suppression check from Momento
    worker.py        the bulk worker (slices, at-most-once claims) and its runners
    service.py       this module: the service that ties them together
    (the SES interface and its SESv2 adapter: tenant_aws/ses.py)

A send: the tenant must have connected its account (409 otherwise); the body is checked (400
naming the field); every recipient is looked up in the tenant's suppression list (refused, or
skipped with `skip_suppressed`); SESv2 SendEmail runs in the customer's account with the
assumed role, the tenant's configuration set and tags that tie events back (`sesami-tenant`,
and `sesami-batch` for bulk mail); the message is recorded at once (see store.py).

Bulk mail: SES templates and bulk send are not used: SESami renders the Mustache template
(inline or stored) with `chevron-ng` through templates/mustache.py (values HTML-escaped in html)
and sends one SendEmail per recipient, paced to the account's MaxSendRate, each with RFC 8058
one-click `List-Unsubscribe` headers pointing at SESami. POST /mail/bulk checks everything,
stores the batch and answers 202 `queued` (the suppressed recipients are listed as skipped at
once); the bulk worker (worker.py) sends it in slices, each within one invocation's time budget,
at most once per recipient. GET /mail/bulk/{id} shows the progress and one result per recipient.

`Idempotency-Key`: the key is claimed with the body's fingerprint before anything is sent;
the same key and body within 24 h replays the stored response (header `Idempotent-Replayed`)
without sending again; the same key with another body is a 409. A request that fails releases
its key, so that the caller can retry with it.

Quotas (invariant 11): a send counts its recipients, with its request, in one count just before
SES is called (`charge`, chalicelib.quotas: 429 over the tenant's sends per minute, nothing
sent, the Idempotency-Key released); a bulk batch takes one of the tenant's bulk slots before it
is stored (sending/slots.py: 429 when all are in flight), and the worker reserves each slice's
sends before sending it.

Errors raised here besides `errors.py`'s own: AccountNotConnected (409),
RecipientsSuppressed (400), store.IdempotencyKeyReused / IdempotencyKeyInUse (409),
tenant_aws/ses.SesRefused (422), slots.TooManyBatches and the quotas' QuotaExceeded (429).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
)
from chalicelib.core.settings import DEFAULT_CONFIGURATION_SET, Settings
from chalicelib.core.tables import TenantModel
from chalicelib.sending.batches import BatchSummary, BulkJob, JobRecipient, RecipientResult
from chalicelib.sending.bulk import (
    BulkRequest,
    TemplateResolver,
    parse_bulk,
    parse_variables,
    render_checked,
)
from chalicelib.sending.hooks import Hooks
from chalicelib.sending.requests import MailRequest, RenderStored, parse_mail
from chalicelib.sending.slots import BulkSlots
from chalicelib.sending.store import Replay, SendingStore
from chalicelib.sending.worker import BulkRunner, batch_view
from chalicelib.tenant_aws.ses import OutgoingEmail, Ses
from chalicelib.webhooks.pause import refuse_if_paused

log = logging.getLogger("sesami.sending")

TENANT_TAG, BATCH_TAG = "sesami-tenant", "sesami-batch"
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_BATCH_ID = re.compile(r"^[0-9a-f]{32}$")


class AccountNotConnected(Conflict):
    code = "account_not_connected"


class RecipientsSuppressed(InvalidRequest):
    code = "recipients_suppressed"


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool = False


SesFor = Callable[[TenantModel], Ses]  # a tenant -> SES in its account
Charge = Callable[[int], None]  # count n recipients about to be sent; raises when over a quota


class MailService:
    def __init__(
        self,
        settings: Settings,
        store: SendingStore,
        ses_for: SesFor,
        signer: Any,
        *,
        runner: BulkRunner,
        wall: Callable[[], float] = time.time,
        slots: BulkSlots | None = None,
        bulk_batches: Callable[[TenantModel], int] | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self._settings, self._store, self._ses_for, self._signer = settings, store, ses_for, signer
        self._runner, self._wall = runner, wall
        self._slots, self._bulk_batches = slots, bulk_batches
        # Stored templates, verified identities, the suppression cache, stored content.
        self._hooks = hooks or Hooks(suppressed=store.suppressed)

    # ------------------------------------------------------------------ POST /mail

    def send(
        self,
        tenant: TenantModel,
        body: Mapping[str, Any],
        idempotency_key: str | None,
        charge: Charge | None = None,
    ) -> Outcome:
        _require_connected(tenant)
        request = parse_mail(body, self._render_stored(tenant))
        self._hooks.check_sender(tenant, request.sender.address)
        return self._once(
            tenant,
            idempotency_key,
            "POST /mail",
            body,
            run=lambda: self._send_mail(tenant, request, charge),
            stored=lambda outcome: outcome.body,
            replay=lambda prior: Outcome(prior.status_code, prior.response, replayed=True),
        )

    def _send_mail(
        self, tenant: TenantModel, request: MailRequest, charge: Charge | None
    ) -> Outcome:
        tid = tenant.tenant_id
        suppressed = self._hooks.suppressed(tid, [a.address for a in request.recipients])
        listed = [suppressed[a.key].view() for a in request.recipients if a.key in suppressed]
        if listed and not request.skip_suppressed:
            raise RecipientsSuppressed(
                f"{len(listed)} recipient(s) are on the suppression list; nothing was sent. "
                "Remove them, or send with skip_suppressed: true",
                details={"suppressed": listed},
            )
        to, cc, bcc = (
            tuple(a for a in group if a.key not in suppressed)
            for group in (request.to, request.cc, request.bcc)
        )
        if not (to or cc or bcc):
            raise RecipientsSuppressed(
                "every recipient is on the suppression list; nothing was sent",
                details={"suppressed": listed},
            )
        config_set = _config_set(tenant, request.configuration_set)
        tags = ((TENANT_TAG, _tag_value(tid)), *request.tags)
        email = OutgoingEmail(
            sender=request.sender.header(),
            subject=request.subject,
            html=request.html,
            text=request.text,
            to=tuple(a.header() for a in to),
            cc=tuple(a.header() for a in cc),
            bcc=tuple(a.header() for a in bcc),
            reply_to=tuple(a.header() for a in request.reply_to),
            tags=tags,
            configuration_set=config_set,
        )
        if charge is not None:
            charge(len(to) + len(cc) + len(bcc))
        message_id = self._ses_for(tenant).send(email)
        self._hooks.keep_content(tenant, message_id, email)
        sent_to = [a.address for a in (*to, *cc, *bcc)]
        recorded = self._store.record_sent(
            tid,
            message_id,
            source=request.sender.header(),
            subject=request.subject,
            destination=sent_to,
            tags={**dict(tags), "ses:configuration-set": config_set},
        )
        return Outcome(
            200,
            {
                "message_id": message_id,
                "status": "sent",
                "configuration_set": config_set,
                "recipients": sent_to,
                "skipped": listed,
                "recorded": recorded,
            },
        )

    # ------------------------------------------------------------------ POST /mail/bulk

    def send_bulk(
        self, tenant: TenantModel, body: Mapping[str, Any], idempotency_key: str | None
    ) -> Outcome:
        _require_connected(tenant)
        request = parse_bulk(body, self._resolver(tenant))
        self._hooks.check_sender(tenant, request.sender.address)
        return self._once(
            tenant,
            idempotency_key,
            "POST /mail/bulk",
            body,
            run=lambda: self._send_bulk(tenant, request),
            stored=lambda outcome: {"batch_id": outcome.body["batch_id"]},
            replay=lambda prior: Outcome(
                prior.status_code,
                self.batch(tenant, str(prior.response.get("batch_id"))),
                replayed=True,
            ),
        )

    def _send_bulk(self, tenant: TenantModel, request: BulkRequest) -> Outcome:
        """Store the batch and start its worker: 202, nothing sent here."""
        tid = tenant.tenant_id
        batch_id = uuid.uuid4().hex
        suppressed = self._hooks.suppressed(tid, [r.to.address for r in request.recipients])
        config_set = _config_set(tenant, request.configuration_set)
        tags = {TENANT_TAG: _tag_value(tid), BATCH_TAG: batch_id, **dict(request.tags)}
        skipped: dict[int, RecipientResult] = {}
        for i, r in enumerate(request.recipients):
            if r.to.key in suppressed:
                entry = suppressed[r.to.key]
                skipped[i] = RecipientResult(
                    r.to.address,
                    "suppressed",
                    reason=entry.reason,
                    reasons=entry.reasons,
                    since=entry.since,
                )
        job = BulkJob(
            sender=request.sender.header(),
            reply_to=tuple(a.header() for a in request.reply_to),
            subject=request.template.subject.source,
            html=request.template.html.source if request.template.html else None,
            text=request.template.text.source if request.template.text else None,
            tags=tuple(tags.items()),
            recipients=tuple(
                JobRecipient(r.to.header(), r.to.address, r.to.key, dict(r.variables))
                for r in request.recipients
            ),
            suppressed=frozenset(skipped),
        )
        total = len(request.recipients)
        everyone_skipped = len(skipped) == total
        now = self._wall()
        summary = BatchSummary(
            batch_id=batch_id,
            created_at=keys.iso_ms(datetime.now(UTC)),
            configuration_set=config_set,
            total=total,
            next=total if everyone_skipped else 0,
            status="finished" if everyone_skipped else "queued",
            updated=now,
        )
        addresses = [r.to.address for r in request.recipients]
        slots = None if everyone_skipped else self._slots
        if slots is not None:
            slots.acquire(tid, batch_id, self._bulk_batches(tenant) if self._bulk_batches else 1)
        try:
            self._store.create_batch(tid, batch_id, summary, job, addresses, skipped)
        except BaseException:
            if slots is not None:
                slots.release(tid, batch_id)
            raise
        if not everyone_skipped:
            try:
                self._runner.start({"tenant_id": tid, "batch_id": batch_id, "next": 0})
            except Exception as exc:
                log.exception("bulk batch %s: could not start its worker", batch_id)
                stop = summary.but(stopped=f"not sent: the bulk worker did not start ({exc})")
                self._store.replace_summary(tid, batch_id, summary, stop)
                if slots is not None:
                    slots.release(tid, batch_id)
                raise ServiceUnavailable(
                    "the bulk worker could not be started; nothing was sent, retry later"
                ) from exc
        view = batch_view(summary, addresses, skipped, now)
        return Outcome(202, {**view, "skipped": [r.doc() for r in skipped.values()]})

    # ------------------------------------------------------------------ GET /mail/bulk/{id}

    def batch(self, tenant: TenantModel, batch_id: str) -> dict[str, Any]:
        found = (
            self._store.load_batch(tenant.tenant_id, batch_id)
            if _BATCH_ID.match(batch_id)
            else None
        )
        if found is None:
            raise NotFound(f"no bulk batch {batch_id[:64]!r}", details={"batch_id": batch_id[:64]})
        summary, addresses, results = found
        return batch_view(summary, addresses, results, self._wall())

    # ------------------------------------------------------------------ stored templates

    def _resolver(self, tenant: TenantModel) -> TemplateResolver | None:
        resolve = self._hooks.template
        if resolve is None:
            return None
        return lambda template_id, version: resolve(tenant.tenant_id, template_id, version)

    def _render_stored(self, tenant: TenantModel) -> RenderStored | None:
        resolver = self._resolver(tenant)
        if resolver is None:
            return None

        def render(
            template_id: Any, version: Any, variables: Any
        ) -> tuple[str, str | None, str | None]:
            template = resolver(template_id, version)
            values = parse_variables(variables, "variables", template)
            return render_checked(template, values, "variables")

        return render

    # ------------------------------------------------------------------ idempotency

    def _once(
        self,
        tenant: TenantModel,
        key: str | None,
        scope: str,
        body: Mapping[str, Any],
        *,
        run: Callable[[], Outcome],
        stored: Callable[[Outcome], dict[str, Any]],
        replay: Callable[[Replay], Outcome],
    ) -> Outcome:
        if key is None:
            return run()
        key = key.strip()
        if not _IDEMPOTENCY_KEY.match(key):
            raise InvalidRequest(
                "the Idempotency-Key header must be 1-255 visible ASCII characters",
                details={"field": "Idempotency-Key"},
            )
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        fingerprint = hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()
        tid = tenant.tenant_id
        prior = self._store.claim(tid, key, fingerprint)
        if prior is not None:
            return replay(prior)
        try:
            outcome = run()
        except BaseException:
            self._store.release(tid, key, fingerprint)
            raise
        self._store.complete(tid, key, outcome.status, stored(outcome))
        return outcome


def _require_connected(tenant: TenantModel) -> None:
    refuse_if_paused(tenant.sending_paused)  # 423 while a reputation alert paused sending
    if not tenant.role_arn:
        raise AccountNotConnected(
            "connect your AWS account first (PUT /account): SESami sends with SES in your "
            "account, through the role the onboarding stack created"
        )


def _config_set(tenant: TenantModel, requested: str | None) -> str:
    return requested or tenant.configuration_set or DEFAULT_CONFIGURATION_SET


def _tag_value(text: str) -> str:
    """SES tag values are [A-Za-z0-9_-]{1,256}."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:256] or "-"
