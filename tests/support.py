"""Small builders shared by tests and benchmarks."""

from __future__ import annotations

import copy
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.core.settings import Settings
from chalicelib.core.tables import AccountModel, TenantModel
from chalicelib.ingest.directory import TenantDirectory, TenantRef
from chalicelib.ingest.store import EventStore


@dataclass
class TestTenant:
    __test__ = False
    tenant_id: str
    account_id: str
    ref: TenantRef
    store: EventStore
    directory: TenantDirectory


# When make_tenant's accounts were bound: before every recorded event and any traffic the
# generator makes, since mail sent before the binding is not the tenant's.
BOUND_LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def make_tenant(
    settings: Settings, *, write_shards: int = 1, bound_at: datetime = BOUND_LONG_AGO
) -> TestTenant:
    tenant_id = uuid.uuid4().hex
    account_id = "".join(secrets.choice("0123456789") for _ in range(12))
    now = datetime.now(UTC)
    TenantModel(
        tenant_id,
        external_id=secrets.token_urlsafe(24),
        created_at=min(now, bound_at),  # a tenant exists before its account is bound
        account_id=account_id,
        write_shards=write_shards,
    ).save()
    AccountModel(account_id, tenant_id=tenant_id, bound_at=bound_at).save()
    return TestTenant(
        tenant_id=tenant_id,
        account_id=account_id,
        ref=TenantRef(tenant_id, account_id, bound_at, write_shards),
        store=EventStore(settings),
        directory=TenantDirectory(ttl_seconds=60),
    )


def for_account(envelope: dict[str, Any], account_id: str, **changes: Any) -> dict[str, Any]:
    """A copy of a recorded envelope re-addressed to `account_id` (and a fresh envelope id)."""
    out = copy.deepcopy(envelope)
    out["account"] = account_id
    out["id"] = str(uuid.uuid4())
    out.update(changes)
    return out
