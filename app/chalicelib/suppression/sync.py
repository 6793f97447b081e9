"""Two-way sync of a tenant's suppression list with the SES account-level suppression list of the
tenant's account (`POST /suppression-list/sync`):
- SES has the address, SESami has no entry -> imported with SES's reason (BOUNCE or COMPLAINT),
  unless SESami removed it after SES last updated it: then the removal is pushed (deleted in SES).
- SESami has it, SES does not -> pushed. SES accepts only BOUNCE and COMPLAINT: those go as they
  are; MANUAL and UNSUBSCRIBED go as COMPLAINT. SES suppresses both reasons alike; COMPLAINT is the
  "do not mail this person" class, while BOUNCE claims the mailbox is dead, which is false for an
  unsubscribe and is what people clean up as stale. The SESami entry keeps its own reason.
- A removal made only in the SES console looks the same as an address SES never had, so the next
  sync pushes it back: SESami's list is the one to edit.
- Both lists are compared by the canonical key of each address (core/addresses.py): SES's
  `User@BÜCHER.de` and SESami's `user@xn--bcher-kva.de` are one address, and what is pushed to
  SES is the key (the ASCII form SES requires), never a Unicode spelling; an address SES holds
  only under a Unicode spelling is pushed in its ASCII form too.
- The sync stops at a time budget (API Gateway gives up after 29 s) with status `incomplete`;
  running it again continues, since what is done is now in both.
An endpoint without these APIs (moto) gives status `not_available`, never a fake success.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from functools import partial
from typing import Any

from chalicelib.core import addresses, keys
from chalicelib.core.errors import (
    ApiNotAvailable,
    RequestError,
)
from chalicelib.suppression.entries import normalize_address
from chalicelib.suppression.store import SuppressionService
from chalicelib.tenant_aws.gateway import TenantAws
from chalicelib.tenant_aws.ses import AccountSuppressionList, SesSuppressed

SES_REASON = {
    "BOUNCE": "BOUNCE",
    "COMPLAINT": "COMPLAINT",
    "MANUAL": "COMPLAINT",
    "UNSUBSCRIBED": "COMPLAINT",
}
SYNC_BUDGET_SECONDS = 20.0
MAX_FAILURES = 20


@dataclass
class SyncReport:
    status: str = "completed"  # completed | incomplete | not_available
    message: str = "SESami and SES now suppress the same addresses"
    imported: int = 0
    pushed: int = 0
    in_both: int = 0
    removed_from_ses: int = 0
    errors: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def fail(self, address: str, action: str, exc: Exception) -> None:
        self.errors += 1
        if len(self.failures) < MAX_FAILURES:
            message = exc.message if isinstance(exc, RequestError) else str(exc)
            self.failures.append({"address": address, "action": action, "message": message})

    def view(self) -> dict[str, Any]:
        return {**self.__dict__, "pushed_as": dict(SES_REASON)}


class SuppressionSync:
    """Two-way sync of a tenant's list with its SES account-level list (module docstring)."""

    def __init__(
        self,
        service: SuppressionService,
        budget_seconds: float = SYNC_BUDGET_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._budget = budget_seconds
        self._monotonic = monotonic

    def run(self, tenant_id: str, ses: AccountSuppressionList, by: str) -> dict[str, Any]:
        report = SyncReport()
        deadline = self._monotonic() + self._budget
        try:
            entries = list(ses.entries())
        except ApiNotAvailable as exc:
            report.status = "not_available"
            report.message = f"not available on this endpoint: {exc}; nothing was synced"
            return report.view()
        stored_live, stored_removed = self._service.live_and_removed(tenant_id)
        # Stored keys are canonical; re-keying keeps an entry older than that from being pushed
        # (or compared) under another spelling until ops/canonical_addresses.py has run.
        live = {addresses.key(a): r for a, r in stored_live.items()}
        removed: dict[str, str] = {}
        for address, at in stored_removed.items():
            canonical = addresses.key(address)
            removed[canonical] = max(removed.get(canonical, ""), at)
        remote = {addresses.key(s.address): s for s in entries}
        # SES may hold an address only under a Unicode spelling (pushed before keys were
        # canonical): the ASCII form SES sends to is pushed as well.
        spelled = {s.address.lower() for s in entries}
        pulls = [s for address, s in sorted(remote.items()) if address not in live]
        pushes = [(address, r) for address, r in sorted(live.items()) if address not in spelled]
        report.in_both = len(remote) - len(pulls)
        steps = [
            *(partial(self._pull, ses, tenant_id, s, removed, by, report) for s in pulls),
            *(partial(self._push, ses, address, r, report) for address, r in pushes),
        ]
        for step in steps:
            if report.errors >= MAX_FAILURES or self._monotonic() > deadline:
                report.status = "incomplete"
                report.message = (
                    "stopped after too many errors"
                    if report.errors >= MAX_FAILURES
                    else "stopped at the time budget; run the sync again to continue"
                )
                break
            step()
        else:
            if report.errors:
                report.message = "synced, except the addresses listed in failures"
        return report.view()

    def _pull(
        self,
        ses: AccountSuppressionList,
        tenant_id: str,
        s: SesSuppressed,
        removed: dict[str, str],
        by: str,
        report: SyncReport,
    ) -> None:
        """An address SES suppresses and SESami does not."""
        updated = keys.iso_ms(s.updated_at.astimezone(UTC))
        removed_at = removed.get(addresses.key(s.address), "")
        action = "remove_from_ses" if removed_at > updated else "import"
        try:
            address = normalize_address(s.address, "address")
            if action == "remove_from_ses":
                # Removed in SESami after SES last suppressed it: the removal goes to SES.
                ses.delete(s.address)
                self._service.note_removed_from_ses(tenant_id, address, by)
                report.removed_from_ses += 1
            elif self._service.import_from_ses(tenant_id, address, s.reason, updated, by):
                report.imported += 1
            else:
                report.in_both += 1  # ingest or a person added it meanwhile
        except (RequestError, ApiNotAvailable) as exc:
            report.fail(s.address, action, exc)

    @staticmethod
    def _push(ses: AccountSuppressionList, address: str, reason: str, report: SyncReport) -> None:
        """An address SESami suppresses and SES does not."""
        try:
            ses.put(address, SES_REASON.get(reason, "COMPLAINT"))
            report.pushed += 1
        except (RequestError, ApiNotAvailable) as exc:
            report.fail(address, "push", exc)


def sync_with_ses(tenant_aws: TenantAws, service: SuppressionService, by: str) -> dict[str, Any]:
    """Sync the tenant's list with the SES account-level list of its connected account."""
    ses = tenant_aws.suppression_list()
    return SuppressionSync(service).run(tenant_aws.tenant.tenant_id, ses, by)
