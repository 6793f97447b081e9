"""Recipient erasure (GDPR art. 17): every trace of one address in one tenant, removed or
anonymised, and a count of each kind reported.

What an erasure does, step by step (each finds what is left, so re-running one is harmless):

    check        refuse (409) while a bulk batch that has the address is still sending
    fence        webhooks not yet delivered about what happened to the address before now are
                 dropped: a mark per form of the address (its salted hash and this time,
                 T#t#WH / X#hash) and, on each endpoint, `erased_until` (30 days, a delivery
                 log's life), so the delivery function checks a new delivery's body
                 (webhooks/delivery.py). A message on the queue cannot be edited; this is how
                 one queued before the erasure is stopped. Mail sent to the address later is
                 new history, and its webhooks are delivered
    events       the address's rows (the by_recipient index finds them) and their tag-view
                 copies are deleted; their index entries go with them. For each of its messages:
                 - sent to this address alone: the timeline, every event row (opens and clicks
                   too) and their copies are deleted, and the aggregate becomes a tombstone
                   (`body.erased`) with no address, subject, sender or tags;
                 - sent to others too: the address leaves the destination, the per-recipient
                   states, the timeline entries and their bounce facts, and every mention of it
                   (a personalised link, say) is redacted from the aggregate and the rows;
                 either way the message is marked erased and ingest applies no later event to it
                 (a late open or a replay cannot bring the address back). A timeline entry stays,
                 stripped, as the event's deduplication record.
    pending      the same for messages POST /mail recorded that no event has reached yet
    suppression  the entry and the tombstone of the address are deleted. If the address was
                 suppressed, a suppression keyed by its salted hash takes its place (T#t#ERASED):
                 GDPR lets SESami keep what it needs to honour the person's objection, and this
                 is only enough to recognise the address when someone tries to mail it again
                 (sending checks it), not to read it back. SES's own suppression list in the
                 customer's account is the customer's and is left as it is.
    sending      bulk batches: the address, its variables and results are redacted (indexes
                 stay aligned); Idempotency-Key records: redacted from the stored response
    quarantine   unreadable events of the tenant that mention the address are deleted
    webhooks     every endpoint's delivery log (a deleted endpoint's too) is read, and each
                 delivery whose body or attempt log mentions the address is deleted: a retry or
                 replay of it then finds nothing and stops. Only an attempt already under way
                 when the fence went up (at most its 10 s timeout before this step) can still
                 record its delivery after this step has read that log
    counting     waits (state `waiting`) until counting has taken in every click it found on
                 a link naming the address, then deletes those link counters again: a click
                 ingested just before the erasure and counted after it would bring one back
                 (lifecycle/counting_wait.py, core/erasure_marks.py)

Long by design: the steps share one job's state and cursors; split, each would re-derive what the
address is and where its forms hide.

With each message go the daily click counters of the links that carry the address (a
personalised link names its recipient): the message's click events say which link, which day.
Those click entries keep, instead of their counter changes, a mark naming the job, which the
counting acknowledges in stream order (core/erasure_marks.py): the `counting` step waits for it.

Counters per hour and per link keep their counts: they name nobody. The audit trail records who
asked, when, and the counts, under the address's hash; the job keeps the address only until it
finishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import dynamo, erasure_marks, keys
from chalicelib.core.errors import Conflict
from chalicelib.core.tables import (
    AGGREGATE_SK,
    JOB_CHUNK_CHARS,
    BatchModel,
    EventModel,
    IdempotencyModel,
    LinkCounterModel,
    MessageEventModel,
    MessageModel,
    QuarantineModel,
    SuppressionModel,
    TenantModel,
    WebhookDeliveryModel,
    WebhookEndpointModel,
    WebhookMarkModel,
)
from chalicelib.lifecycle import counting_wait, items
from chalicelib.lifecycle.audit import AuditLog
from chalicelib.lifecycle.jobs import DONE, MORE, Job
from chalicelib.lifecycle.spellings import REDACTED, address_forms, mentions, scrub, spellings
from chalicelib.suppression.from_events import version_bump

KIND = "erasure"
STEPS = (
    "check",
    "fence",
    "events",
    "pending",
    "suppression",
    "sending",
    "quarantine",
    "webhooks",
    counting_wait.STEP,
)
SAVE_ATTEMPTS = 5
FENCE_DAYS = 30  # a webhook delivery's record lives 30 days; no queued message outlives that
UNFINISHED = ("queued", "sending")


def new_job_doc(tenant_id: str, address: str, actor: str, now: datetime) -> dict[str, Any]:
    return {
        "_address": address,  # kept out of every view, removed when the job finishes
        "address_hash": keys.address_hash(tenant_id, address),
        "requested_by": actor,
        "started_at": keys.iso_ms(now),
        "step": STEPS[0],
        "counts": {},
    }


class Erasure:
    """The job handler (jobs.Handler) of a recipient erasure."""

    def __init__(
        self,
        audit: AuditLog,
        delete_content: Callable[[str, list[str]], int] = lambda tenant_id, messages: 0,
        counting: counting_wait.CountingWait | None = None,
    ) -> None:
        self._audit, self._delete_content = audit, delete_content
        self._counting = counting or counting_wait.CountingWait()

    def advance(self, job: Job, out_of_time: Callable[[], bool], save: Callable[[], None]) -> str:
        tenant = dynamo.get(TenantModel, job.tenant_id)
        doc = job.doc
        if tenant is None or tenant.deletion_started_at is not None:
            for name in ("_address", *counting_wait.HIDDEN):  # its deletion takes everything
                doc.pop(name, None)
            return DONE
        run = _Run(tenant, job.job_id, str(doc["_address"]), doc, self._delete_content, save)
        while doc["step"] in STEPS:
            step = doc["step"]
            try:
                if step == counting_wait.STEP:
                    finished = self._counting.advance(job, out_of_time, save)
                else:
                    finished = getattr(run, step)(doc, out_of_time)
            except Conflict as exc:  # refused (a batch still sending): finished, not resumed
                doc["refused"] = exc.message
                doc.pop("_address", None)
                counting_wait.forget(job.tenant_id, job.job_id, doc)
                return DONE
            if not finished:
                save()
                return MORE
            doc["step"] = STEPS[STEPS.index(step) + 1] if step != STEPS[-1] else "done"
            doc.pop("cursor", None)
            save()
            if out_of_time() and doc["step"] != "done":
                return MORE
        self._audit.record(
            job.tenant_id,
            actor=str(doc["requested_by"]),
            action="recipient.erased",
            target=str(doc["address_hash"]),
            detail={"job_id": job.job_id, "counts": doc["counts"]},
        )
        doc.pop("_address", None)
        counting_wait.forget(job.tenant_id, job.job_id, doc)
        return DONE


class _Run:
    """One slice of one erasure."""

    def __init__(
        self,
        tenant: TenantModel,
        job_id: str,
        address: str,
        doc: dict[str, Any],
        delete_content: Callable[[str, list[str]], int],
        save: Callable[[], None],
    ) -> None:
        self.tenant, self.tid, self.address = tenant, tenant.tenant_id, address
        self.job_id, self.doc, self._save = job_id, doc, save
        self._delete_content = delete_content
        self.forms = spellings(address)
        self.addresses = address_forms(address)
        self.counts: dict[str, int] = doc["counts"]
        # For the counting step (counting_wait.py): link counters deleted, entries marked.
        self.links: dict[tuple[str, str], None] = dict.fromkeys(
            (str(pk), str(sk)) for pk, sk in doc.get("_links") or ()
        )
        self.marked: dict[str, None] = dict.fromkeys(doc.get("_marked") or ())

    def _keep(self) -> None:
        """Saved with the job before the entries are stripped: once they are, neither which
        link counters nor which entries could be found again."""
        links, marked = [list(k) for k in self.links], list(self.marked)
        if links != (self.doc.get("_links") or []) or marked != (self.doc.get("_marked") or []):
            self.doc["_links"], self.doc["_marked"] = links, marked
            self._save()

    def _counted_after(self, entry: MessageEventModel, names_address: bool) -> str | None:
        """What a stripped entry's `cc` becomes. Its counter changes go (a link's URL may carry
        the address; counted already, or about to be). On a click of a link naming the address
        they become the job's mark, which counting acknowledges once it has counted the click
        (core/erasure_marks.py); any other entry's rewrite without `cc` is not counted at all.
        An entry an earlier erasure marked (one refused half-way) is marked again for this one:
        its click may not be counted yet either."""
        if erasure_marks.job_of(entry.counted) is not None or (
            names_address and entry.counted is not None
        ):
            self.marked[keys.entry_digest(entry.pk, entry.sk)] = None
            return erasure_marks.mark(self.job_id)
        return None

    def _names_address(self, entry: MessageEventModel) -> bool:
        link = (entry.detail or {}).get("link") if entry.event_type == "Click" else None
        return isinstance(link, str) and mentions(link, self.forms)

    def _count(self, kind: str, n: int = 1) -> None:
        if n:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def _is_address(self, value: str | None) -> bool:
        return value is not None and value.strip().lower() in self.addresses

    # ------------------------------------------------------------------ check

    def check(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for pk in items.sending_partitions(self.tid):
            summary = dynamo.get(BatchModel, pk, "B")
            if summary is None or summary.doc.get("status") not in UNFINISHED:
                continue
            if summary.doc.get("stopped"):
                continue
            pages = items.everything(
                BatchModel, pk, range_key_condition=BatchModel.sk.startswith("A#")
            )
            if any(self._is_address(a) for p in pages for a in p.doc.get("addresses", [])):
                raise Conflict(
                    "a bulk batch with this address is still sending; erase it when the batch "
                    "has finished",
                    details={"batch_id": summary.doc.get("batch_id")},
                )
        return True

    # ------------------------------------------------------------------ events

    def events(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for address in sorted(self.addresses):
            start = None
            while True:
                rows, start = items.page(
                    EventModel,
                    keys.recipient_pk(self.tid, address),
                    start,
                    index=EventModel.by_recipient,
                )
                for message_id in dict.fromkeys(r.message_id for r in rows):
                    self._message(message_id)
                present = items.existing_rows((r.pk, r.sk) for r in rows)
                copies = [c for r in present for c in items.tag_copies(self.tid, r)]
                self._count("event_rows", items.delete(EventModel, [(r.pk, r.sk) for r in present]))
                self._count("tag_view_rows", items.delete(EventModel, copies))
                if start is None:
                    break
                if out_of_time():
                    return False
        return True

    def pending(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for entry in items.indexed(self.tid, MessageModel, MessageModel.by_pending):
            agg = dynamo.get(MessageModel, entry.pk, AGGREGATE_SK)
            if agg is not None and any(self._is_address(d) for d in _destination(agg)):
                self._message(agg.message())
            if out_of_time():
                return False
        return True

    def _message(self, message_id: str) -> None:
        # What SESami kept of the mail itself (its To header names the address): it goes whole.
        self._count("stored_content", self._delete_content(self.tid, [message_id]))
        for _attempt in range(SAVE_ATTEMPTS):
            agg = items.aggregate(self.tid, message_id)
            entries = items.message_entries(self.tid, message_id)
            if agg is not None and (agg.body or {}).get("erased") == "whole":
                for entry in entries:  # erased before this slice took over: its marks count
                    self._counted_after(entry, names_address=False)
                self._keep()
                return
            destination = _destination(agg) if agg else []
            recipients = set((agg.body or {}).get("recipients", {})) if agg else set()
            for e in entries:
                recipients |= set(e.recipients or ())
            others = [a for a in {*destination, *recipients} if not self._is_address(a)]
            done = self._whole(agg, entries) if not others else self._part(agg, entries)
            if done:
                return
        raise Conflict(f"message {message_id} kept changing during the erasure; try again")

    def _whole(self, agg: MessageModel | None, entries: list[MessageEventModel]) -> bool:
        """A message to this address alone: nothing of it but a tombstone and its entries."""
        self._links(entries)
        after = [self._counted_after(e, self._names_address(e)) for e in entries]
        self._keep()
        rows = items.existing_rows(items.derived_rows(self.tid, entries))
        copies = [c for r in rows for c in items.tag_copies(self.tid, r)]
        self._count("event_rows", items.delete(EventModel, [(r.pk, r.sk) for r in rows]))
        self._count("tag_view_rows", items.delete(EventModel, copies))
        for entry, counted in zip(entries, after, strict=True):
            if entry.recipients or entry.detail or entry.counted != counted:
                entry.recipients, entry.detail, entry.counted = None, None, counted
                items.save([entry])
                self._count("timeline_entries")
        if agg is None:
            return True
        tombstone = MessageModel(
            agg.pk,
            AGGREGATE_SK,
            message_id=agg.message(),
            sent_at=agg.sent_at,
            status=agg.status,
            status_rank=agg.status_rank,
            status_at=agg.status_at,
            events=agg.events,
            opens=agg.opens,
            clicks=agg.clicks,
            body={"erased": "whole"},
            expires_at=agg.expires_at,
        )
        tombstone.version = agg.version
        if not dynamo.write_if("erased message", tombstone.save):
            return False
        self._count("messages_erased")
        return True

    def _part(self, agg: MessageModel | None, entries: list[MessageEventModel]) -> bool:
        """A message to others too: the address leaves it, every mention is redacted."""
        self._links(entries)
        after = [self._counted_after(e, self._names_address(e)) for e in entries]
        self._keep()
        for entry, counted in zip(entries, after, strict=True):
            kept = {r for r in (entry.recipients or ()) if not self._is_address(r)}
            detail, changed = scrub(entry.detail or {}, self.forms)
            if kept != set(entry.recipients or ()) or changed or entry.counted != counted:
                entry.recipients, entry.detail = kept or None, detail or None
                entry.counted = counted
                items.save([entry])
                self._count("timeline_entries")
        for row in items.existing_rows(items.derived_rows(self.tid, entries)):
            self._scrub_row(row)
        if agg is None:
            return True
        body = dict(agg.body or {})
        body["destination"] = [d for d in body.get("destination", []) if not self._is_address(d)]
        body["recipients"] = {
            a: r for a, r in body.get("recipients", {}).items() if not self._is_address(a)
        }
        body, _ = scrub(body, self.forms)
        body["erased"] = "recipient"
        agg.body = body
        agg.subject = scrub(agg.subject, self.forms)[0]
        agg.source = scrub(agg.source, self.forms)[0]
        if not dynamo.write_if("anonymised message", agg.save):
            return False
        self._count("messages_anonymised")
        return True

    def _links(self, entries: list[MessageEventModel]) -> None:
        """The counters of clicked links that carry the address, the day's and the month's
        rollup (before the entries that say which link, which day, are stripped)."""
        found = []
        for entry in entries:
            if self._names_address(entry):
                link = str((entry.detail or {})["link"])
                day = datetime.fromisoformat(entry.at().replace("Z", "+00:00"))
                pk = keys.link_pk(self.tid, day, entry.row_shard())
                found += [(pk, keys.link_day_sk(day, link)), (pk, keys.link_month_sk(link))]
        found = list(dict.fromkeys(found))  # two clicks of one month share the rollup
        self.links.update(dict.fromkeys(found))  # swept again when counting has caught up
        present = [k for k in found if dynamo.get(LinkCounterModel, *k) is not None]
        self._count("link_counters", items.delete(LinkCounterModel, present))

    def _scrub_row(self, row: EventModel) -> None:
        fields = {
            "subject": row.subject,
            "source": row.source,
            "detail": row.detail,
            "tags": row.tags,
        }
        clean, changed = scrub(fields, self.forms)
        pairs = sorted(row.tag_pairs or ())
        gone = [p for p in pairs if mentions(p, self.forms)]
        if not changed and not gone:
            return
        shard = items.row_shard(row.pk)
        self._count(
            "tag_view_rows",
            items.delete(EventModel, [(keys.tag_pk(self.tid, p, shard), row.sk) for p in gone]),
        )
        kept = set(pairs) - set(gone)
        row.subject, row.source = clean["subject"], clean["source"]
        row.detail, row.tags = clean["detail"] or None, clean["tags"] or None
        row.tag_pairs = kept or None
        copies = [EventModel(keys.tag_pk(self.tid, p, shard), row.sk) for p in sorted(kept)]
        for copy in copies:
            copy.attribute_values.update(
                {
                    k: v
                    for k, v in row.attribute_values.items()
                    if k not in ("pk", "status_pk", "recipient_pk")
                }
            )
            copy.recipient = row.address()  # a copy has no recipient_pk to name it
        self._count("event_rows_redacted", items.save([row]))
        items.save(copies)

    # ------------------------------------------------------------------ suppression

    def suppression(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        live, removed = keys.tenant_pk(self.tid), keys.removed_pk(self.tid)
        for address in sorted(self.addresses):
            entry = dynamo.get(SuppressionModel, live, address)
            if entry is not None:
                # First the marker that makes sending look hashes up (sending/store.py), then
                # the hashes, then the live entry goes: the address is suppressed throughout.
                marker = SuppressionModel(
                    keys.erased_pk(self.tid),
                    keys.ERASED_MARKER,
                    reason="ERASED",
                    created_at=entry.created_at,
                    note="this tenant has erased suppressed addresses (their hashes are here)",
                )
                items.save([marker])
                for form in sorted(self.addresses):
                    kept = SuppressionModel(
                        keys.erased_pk(self.tid),
                        keys.address_hash(self.tid, form),
                        reason=entry.reason,
                        reasons=entry.reasons,
                        created_at=entry.created_at,
                        note="erased on request; kept so the address is never mailed again",
                    )
                    items.save([kept])
                self._count(
                    "suppression_entries", items.delete(SuppressionModel, [(live, address)])
                )
                self.counts["kept_hashed_suppression"] = 1
                self._raise_list_version(address)
            if dynamo.get(SuppressionModel, removed, address) is not None:
                self._count(
                    "suppression_tombstones", items.delete(SuppressionModel, [(removed, address)])
                )
        return True

    def _raise_list_version(self, seed: str) -> None:
        """Every change to the list raises its version (suppression/from_events.py): the
        send-time cache then reads nothing it stored for the address before the erasure, and
        what it stored expires with its dictionary (sending/suppression_cache.py). After the
        moves: the address is suppressed throughout (by its hash), so no check can cache a
        "not suppressed" for it under either version."""
        counter, actions = version_bump(self.tid, keys.address_hash(self.tid, seed))
        with dynamo.storage("suppression list version"):
            counter.update(actions=actions)

    # ------------------------------------------------------------------ sending

    def sending(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        for pk in items.sending_partitions(self.tid):
            if pk.rsplit("#", 2)[-2] == "IK":
                self._idempotency_record(pk)
            else:
                self._batch(pk)
            if out_of_time():
                return False
        return True

    def _idempotency_record(self, pk: str) -> None:
        record = dynamo.get(IdempotencyModel, pk, "IK")
        if record is None or record.response is None:
            return
        response, changed = scrub(record.response, self.forms)
        if changed:
            record.response = response
            items.save([record])
            self._count("idempotency_records")

    def _batch(self, pk: str) -> None:
        parts = list(items.everything(BatchModel, pk))
        redacted = 0
        for part in parts:
            if part.sk.startswith("A#"):
                addresses = part.doc.get("addresses", [])
                new = [REDACTED if self._is_address(a) else a for a in addresses]
                if new != addresses:
                    redacted += sum(1 for a, b in zip(addresses, new, strict=True) if a != b)
                    part.doc = {**part.doc, "addresses": new}
                    items.save([part])
            elif part.sk.startswith(("R#", "B")):
                doc, changed = scrub(part.doc, self.forms)
                if changed:
                    part.doc = doc
                    items.save([part])
        chunks = [p for p in parts if p.sk.startswith("D#")]
        if chunks:
            self._batch_job(pk, sorted(chunks, key=lambda p: p.sk))
        self._count("batch_recipients", redacted)

    def _batch_job(self, pk: str, chunks: list[BatchModel]) -> None:
        """The batch's job text is split in chunks anywhere, so it is joined, changed, and
        written again in chunks of the same size."""
        text = "".join(str(c.doc["part"]) for c in chunks)
        job = json.loads(text)
        for i, recipient in enumerate(job.get("recipients", [])):
            if any(self._is_address(str(v)) or mentions(str(v), self.forms) for v in recipient[:3]):
                job["recipients"][i] = [REDACTED, REDACTED, REDACTED, {}]
        job, _ = scrub(job, self.forms)
        new = json.dumps(job)
        if new == text:
            return
        expires = chunks[0].expires_at
        parts = [new[i : i + JOB_CHUNK_CHARS] for i in range(0, len(new), JOB_CHUNK_CHARS)]
        items.save(
            BatchModel(pk, f"D#{n:04d}", doc={"part": part}, expires_at=expires)
            for n, part in enumerate(parts)
        )
        items.delete(BatchModel, [(pk, c.sk) for c in chunks[len(parts) :]])

    # ------------------------------------------------------------------ quarantine

    def quarantine(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        found = [
            (q.pk, q.sk)
            for q in items.everything(QuarantineModel, self.tid, index=QuarantineModel.by_tenant)
        ]
        for i in range(0, len(found), items.PAGE):
            with dynamo.storage("quarantine read"):
                kept = list(QuarantineModel.batch_get(found[i : i + items.PAGE]))
            hits = [
                (q.pk, q.sk)
                for q in kept
                if q.tenant_id == self.tid and mentions(q.raw, self.forms)
            ]
            self._count("quarantine", items.delete(QuarantineModel, hits))
        return True

    # ------------------------------------------------------------------ webhooks

    def fence(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        now = datetime.now(UTC)
        until = now + timedelta(days=FENCE_DAYS)
        pk = keys.webhooks_pk(self.tid)
        items.save(
            WebhookMarkModel(
                pk,
                keys.erased_webhook_sk(keys.address_hash(self.tid, form)),
                before=keys.delivery_stamp(now),
                expires_at=until,
            )
            for form in sorted(self.addresses)
        )
        model = WebhookEndpointModel
        endpoints = list(
            items.everything(model, pk, range_key_condition=model.sk.startswith("EP#"))
        )
        for endpoint in endpoints:
            _mark_endpoint(endpoint, keys.iso_ms(until))
        return True

    def webhooks(self, doc: dict[str, Any], out_of_time: Callable[[], bool]) -> bool:
        def remove(rows: list[WebhookDeliveryModel]) -> None:
            hits = [(r.pk, r.sk) for r in rows if self._delivery_names_address(r)]
            self._count("webhook_deliveries", items.delete(WebhookDeliveryModel, hits))

        logs = [(e, keys.deliveries_pk(self.tid, e)) for e in items.webhook_endpoints(self.tid)]
        return items.walk(WebhookDeliveryModel, logs, doc, out_of_time, remove, name="endpoint")

    def _delivery_names_address(self, delivery: WebhookDeliveryModel) -> bool:
        log = json.dumps(delivery.log) if delivery.log else None
        return mentions(delivery.body, self.forms) or mentions(log, self.forms)


def _mark_endpoint(endpoint: WebhookEndpointModel, until: str) -> None:
    """Its new deliveries are checked against the erased addresses until then (an endpoint
    deleted meanwhile is no error)."""
    model = WebhookEndpointModel
    dynamo.write_if(
        "webhook endpoint erasure",
        lambda: endpoint.update(
            actions=[model.erased_until.set(until)], condition=model.sk.exists()
        ),
    )


def _destination(agg: MessageModel) -> list[str]:
    return [str(d) for d in (agg.body or {}).get("destination", [])]
