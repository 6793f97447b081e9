"""The tenant's suppression list: who must not be mailed again, why, and who said so.

Entries live in the tenant's partition of the suppression table (`T#<tenant>`, one item per
address, under its canonical key: core/addresses.py, so every spelling of an address is one
entry). Ingest writes them for permanent bounces, complaints and SES list-management
unsubscribes (ingest/store.py, from_events.py); this module for manual adds (MANUAL), unsubscribe
links (UNSUBSCRIBED) and imports from SES. Entries written under another spelling before the key
was canonical are re-keyed by `python -m ops.canonical_addresses`.

History. Every change made here appends `{at, by, action, why}` to the entry's `history`, which
keeps the last 50. Ingest writes no history: an entry it created is shown with a first record made
from its own fields (created_at, created_by, the bounce or complaint), and that record is stored
the first time the entry changes here. History writes are read-modify-writes under `revision`;
losing the race three times is a 409.

Removal. DELETE removes the entry, so the address can be mailed again, and keeps a tombstone in
the tenant's second partition (`T#<tenant>#REMOVED`): the entry as it was, who removed it, when,
why, and its history. `GET /suppression-list?removed=true` and `GET /suppression-list/{email}`
show tombstones. Suppressing the address again carries the tombstone's history into the new entry
and drops the tombstone. Tombstones are also how a removal reaches SES (below).

Sync with the SES account-level suppression list of the tenant's account: suppression_sync.py.

Every write here raises the list's version in the same transaction (`version_bump`): the
send-time suppression cache (sending/suppression_cache.py) keys what it holds by that version.

Exceptions: requests fail with the `RequestError`s of errors.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from pynamodb.connection import Connection
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.core import dynamo, keys
from chalicelib.core.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
)
from chalicelib.core.tables import SuppressionModel, TenantModel
from chalicelib.suppression.entries import (
    entry_view,
    first_record,
    normalize_address,
    parse_flag,
    parse_limit,
    parse_prefix,
    parse_reason,
    parse_why,
    stored_history,
)
from chalicelib.suppression.from_events import version_bump

# SESami reason -> the reason SES's PutSuppressedDestination is given (it knows only these two).
CURSOR_PURPOSE = "suppression-cursor"
UNSUBSCRIBE_PURPOSE = "unsubscribe"
RECIPIENT = "recipient"  # `by` of changes made through an unsubscribe link
HISTORY_KEPT = 50
SCAN_BUDGET = 1_000  # items a filtered list request may read before it returns a cursor
FILTERED_PAGE = 200
ATTEMPTS = 3

_T = TypeVar("_T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------- storage helpers


def _unchanged(item: SuppressionModel) -> Condition:
    """The item still exists as it was read (an update must never re-create a deleted item)."""
    same: Condition = (
        SuppressionModel.revision.does_not_exist()
        if item.revision is None
        else SuppressionModel.revision == item.revision
    )
    exists: Condition = SuppressionModel.address.exists()
    return cast(Condition, exists & same)


class SuppressionService:
    def __init__(self, signer: Any, clock: Callable[[], datetime] = _utcnow) -> None:
        self._signer = signer
        self._clock = clock

    # ------------------------------------------------------------------------ reads

    def search(
        self,
        tenant_id: str,
        *,
        q: str | None = None,
        reason: str | None = None,
        removed: str | None = None,
        limit: str | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the tenant's entries (or tombstones), in address order. A Query on the
        tenant's partition, `begins_with` on the address; never a scan."""
        prefix, wanted, tombstones = (
            parse_prefix(q),
            parse_reason(reason),
            parse_flag(removed, "removed"),
        )
        query = {"q": prefix, "r": wanted, "d": tombstones}  # what a cursor is bound to
        size = parse_limit(limit)
        after = self._cursor_position(tenant_id, query, cursor)
        pk = keys.removed_pk(tenant_id) if tombstones else keys.tenant_pk(tenant_id)
        by_address = SuppressionModel.address.startswith(prefix) if prefix else None
        by_reason = (
            (SuppressionModel.reason == wanted) | SuppressionModel.reasons.contains(wanted)
            if wanted
            else None
        )
        pages = SuppressionModel.query(
            pk,
            range_key_condition=by_address,
            filter_condition=by_reason,
            # Unfiltered: one more than a page, so a full page knows whether more follow.
            page_size=FILTERED_PAGE if by_reason is not None else size + 1,
            last_evaluated_key={"pk": {"S": pk}, "address": {"S": after}} if after else None,
        ).page_iter
        items: list[SuppressionModel] = []
        resume: str | None = None
        scanned = 0
        with dynamo.storage("the suppression list"):
            for page in pages:
                rows = page.get("Items", [])
                taken = rows[: size - len(items)]
                items.extend(SuppressionModel.from_raw_data(row) for row in taken)
                end = pages.last_evaluated_key
                if len(items) == size:
                    if len(taken) < len(rows):
                        resume = items[-1].address
                    elif end is not None:
                        resume = end["address"]["S"]
                    break
                scanned += int(page.get("ScannedCount", 0))
                if end is not None and scanned >= SCAN_BUDGET:
                    resume = end["address"]["S"]  # a short page; the cursor goes on from here
                    break
        token = None
        if resume is not None:
            token = self._signer.sign(CURSOR_PURPOSE, {**query, "t": tenant_id, "a": resume})
        return {"items": [entry_view(i, full=False) for i in items], "next": token}

    def _cursor_position(
        self, tenant_id: str, query: dict[str, Any], cursor: str | None
    ) -> str | None:
        if cursor is None or cursor == "":
            return None
        data = self._signer.verify(CURSOR_PURPOSE, cursor, field="next")
        after = data.get("a")
        same = all(data.get(k) == v for k, v in query.items())
        if data.get("t") != tenant_id or not same or not isinstance(after, str):
            # Another tenant's cursor, or one from a different query: never followed.
            raise InvalidRequest("next is not a valid token", details={"field": "next"})
        return after

    def get(self, tenant_id: str, email: str) -> dict[str, Any]:
        """The entry with its history; else the tombstone (who removed it, when); else 404."""
        address = normalize_address(email)
        item = self._load(keys.tenant_pk(tenant_id), address) or self._load(
            keys.removed_pk(tenant_id), address
        )
        if item is None:
            raise NotFound(f"{address} is not on the suppression list and never was")
        return entry_view(item, full=True)

    # ------------------------------------------------------------------------ changes

    def add(self, tenant_id: str, email: str, why: object, by: str) -> dict[str, Any]:
        """Manual add (reason MANUAL). An existing entry keeps its reason; its note changes."""
        address = normalize_address(email)
        note = parse_why(why, "reason", required=True) or ""

        def attempt() -> tuple[SuppressionModel, bool] | None:
            item = self._load(keys.tenant_pk(tenant_id), address)
            if item is None:
                record = self._record(by, "added", note)
                created = self._create(tenant_id, address, "MANUAL", record, note=note)
                return (created, True) if created else None
            actions: list[Action] = [
                SuppressionModel.note.set(note),
                SuppressionModel.reasons.add({"MANUAL"}),
            ]
            updated = self._update(tenant_id, item, actions, self._record(by, "updated", note))
            return (updated, False) if updated else None

        item, created = self._retry(attempt)
        return {**entry_view(item, full=True), "created": created}

    def remove(self, tenant_id: str, email: str, why: object, by: str) -> dict[str, Any]:
        """Remove the entry (the address can be mailed again); keep a tombstone."""
        address = normalize_address(email)
        note = parse_why(why, "reason", required=False)

        def attempt() -> SuppressionModel | None:
            item = self._load(keys.tenant_pk(tenant_id), address)
            if item is None:
                raise NotFound(f"{address} is not on the suppression list")
            return self._bury(tenant_id, item, self._record(by, "removed", note))

        return entry_view(self._retry(attempt), full=True)

    def unsubscribe_target(self, token: str) -> tuple[str, str]:
        """(tenant, address) of a signed unsubscribe token; a 400 for anything else."""
        data = self._signer.verify(UNSUBSCRIBE_PURPOSE, token)
        tenant_id = data.get("t")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise InvalidRequest("token is not a valid token", details={"field": "token"})
        return tenant_id, normalize_address(data.get("r"), "token")

    def unsubscribe(self, token: str) -> str:
        """Put the token's address on its tenant's list (reason UNSUBSCRIBED). Idempotent.
        Nothing is written for a tenant that is deleted or being deleted, nor for an address
        that was erased while suppressed (its hashed entry already keeps it off the mail)."""
        tenant_id, address = self.unsubscribe_target(token)
        tenant = dynamo.get(TenantModel, tenant_id)
        if tenant is None or tenant.deletion_started_at is not None:
            return address
        if self._load(keys.erased_pk(tenant_id), keys.address_hash(tenant_id, address)):
            return address

        def attempt() -> SuppressionModel | None:
            record = self._record(RECIPIENT, "unsubscribed", "unsubscribe link (List-Unsubscribe)")
            item = self._load(keys.tenant_pk(tenant_id), address)
            if item is None:
                return self._create(tenant_id, address, "UNSUBSCRIBED", record)
            if "UNSUBSCRIBED" in (item.reasons or {item.reason}):
                return item  # already unsubscribed: nothing to record twice
            actions: list[Action] = [SuppressionModel.reasons.add({"UNSUBSCRIBED"})]
            return self._update(tenant_id, item, actions, record)

        self._retry(attempt)
        return address

    # ------------------------------------------------------------------------ used by the sync

    def live_and_removed(self, tenant_id: str) -> tuple[dict[str, str], dict[str, str]]:
        """address -> reason of every entry, address -> removed_at of every tombstone."""
        with dynamo.storage("the suppression list"):
            live = {
                i.address: i.reason
                for i in SuppressionModel.query(
                    keys.tenant_pk(tenant_id), attributes_to_get=["address", "reason"]
                )
            }
            removed = {
                i.address: i.removed_at or ""
                for i in SuppressionModel.query(
                    keys.removed_pk(tenant_id), attributes_to_get=["address", "removed_at"]
                )
            }
        return live, removed

    def import_from_ses(
        self, tenant_id: str, address: str, reason: str, ses_updated_at: str, by: str
    ) -> bool:
        """Create an entry for an address SES suppresses; False if one appeared meanwhile."""
        why = f"on the SES account-level suppression list ({reason}) since {ses_updated_at}"
        record = self._record(by, "imported", why)
        created = self._create(
            tenant_id, address, reason, record, event_at=ses_updated_at, note=None
        )
        return created is not None

    def note_removed_from_ses(self, tenant_id: str, address: str, by: str) -> None:
        """Record on the tombstone that the removal reached SES."""
        record = self._record(by, "removed_from_ses", "deleted from the SES suppression list")

        def attempt() -> SuppressionModel | bool | None:
            tomb = self._load(keys.removed_pk(tenant_id), address)
            return True if tomb is None else self._update(tenant_id, tomb, [], record)

        self._retry(attempt)

    # ------------------------------------------------------------------------ writes

    def _record(self, by: str, action: str, why: str | None) -> dict[str, Any]:
        return {"at": keys.iso_ms(self._clock()), "by": by, "action": action, "why": why}

    @staticmethod
    def _load(pk: str, address: str) -> SuppressionModel | None:
        return dynamo.get(SuppressionModel, pk, address)

    @staticmethod
    def _retry(attempt: Callable[[], _T | None]) -> _T:
        """Run a read-modify-write until it is not overtaken by another writer."""
        for _ in range(ATTEMPTS):
            result = attempt()
            if result is not None:
                return result
        raise Conflict("the entry kept changing while it was being updated; try again")

    def _history_for_change(self, tenant_id: str, item: SuppressionModel) -> list[dict[str, Any]]:
        history = stored_history(item)
        if history:
            return history
        # Made by ingest: start with its origin, after the history of an earlier removal.
        tomb = None if item.removed_at else self._load(keys.removed_pk(tenant_id), item.address)
        return (stored_history(tomb) if tomb else []) + [first_record(item)]

    def _create(
        self,
        tenant_id: str,
        address: str,
        reason: str,
        record: dict[str, Any],
        **fields: Any,
    ) -> SuppressionModel | None:
        """A new entry that carries the history of the address's tombstone (and replaces it).
        None if an entry appeared or the tombstone changed meanwhile: the caller re-reads."""
        tomb = self._load(keys.removed_pk(tenant_id), address)
        history = (stored_history(tomb) or [first_record(tomb)]) if tomb else []
        item = SuppressionModel(
            keys.tenant_pk(tenant_id),
            address,
            reason=reason,
            reasons={reason},
            created_at=record["at"],
            created_by=record["by"],
            history=[*history, record][-HISTORY_KEPT:],
            revision=1,
            **fields,
        )
        new = SuppressionModel.address.does_not_exist()

        def write() -> None:
            with TransactWrite(connection=self._connection()) as txn:
                txn.save(item, condition=new)
                if tomb is not None:
                    txn.delete(tomb, condition=_unchanged(tomb))
                txn.update(*version_bump(tenant_id, address))

        return item if dynamo.write_if("suppression entry", write) else None

    def _update(
        self,
        tenant_id: str,
        item: SuppressionModel,
        actions: list[Action],
        record: dict[str, Any],
    ) -> SuppressionModel | None:
        history = [*self._history_for_change(tenant_id, item), record][-HISTORY_KEPT:]
        changes = [
            *actions,
            SuppressionModel.history.set(history),
            SuppressionModel.revision.set((item.revision or 0) + 1),
        ]

        def write() -> None:
            with TransactWrite(connection=self._connection()) as txn:
                txn.update(item, actions=changes, condition=_unchanged(item))
                txn.update(*version_bump(tenant_id, item.address))

        if not dynamo.write_if("suppression entry", write):
            return None
        with dynamo.storage("the suppression entry"):
            item.refresh(consistent_read=True)  # a transaction returns nothing: read what it wrote
        return item

    def _bury(
        self, tenant_id: str, item: SuppressionModel, record: dict[str, Any]
    ) -> SuppressionModel | None:
        """Delete the entry and write its tombstone, in one transaction."""
        kept = {
            name: getattr(item, name)
            for name in SuppressionModel.get_attributes()
            if name not in ("pk", "address", "history", "revision")
        }
        kept.update(removed_at=record["at"], removed_by=record["by"])
        history = [*self._history_for_change(tenant_id, item), record][-HISTORY_KEPT:]
        # An older tombstone is replaced: this entry's history already carries it.
        tomb = SuppressionModel(
            keys.removed_pk(tenant_id), item.address, history=history, revision=1, **kept
        )

        def write() -> None:
            with TransactWrite(connection=self._connection()) as txn:
                txn.delete(item, condition=_unchanged(item))
                txn.save(tomb)
                txn.update(*version_bump(tenant_id, item.address))

        return tomb if dynamo.write_if("suppression removal", write) else None

    @staticmethod
    def _connection() -> Connection:
        meta = SuppressionModel.Meta
        return Connection(region=meta.region, host=meta.host)
