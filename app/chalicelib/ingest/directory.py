"""AWS account ID -> tenant: the only way ingest decides whose an event is (the envelope's
`account`, set by EventBridge, mapped through the `accounts` binding; invariant 3).

A `TenantRef` carries the binding it came from (`account_id`, `bound_at`). The cache may hold a
binding that has since been replaced: that is harmless, because the event store reads the live
binding in the same request as the message it writes, and refuses a ref whose binding is not
the live one (`store.BindingChanged`); ingest then `forget`s the account and looks it up again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib.core import dynamo
from chalicelib.core.tables import AccountModel, TenantModel, indexed_tag_names


@dataclass(frozen=True)
class TenantRef:
    tenant_id: str
    account_id: str  # the binding this ref was resolved through
    bound_at: datetime  # ... and its version: mail sent before it is not this tenant's
    write_shards: int = 1
    indexed_tags: frozenset[str] = frozenset()  # tag names that get a tag view (ingest/caps.py)


class TenantDirectory:
    """AWS account ID -> tenant, from the `accounts` binding. Hits are cached in process for a
    short time; misses are not cached, so a newly connected account is seen at once."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, TenantRef]] = {}

    def tenant_for_account(self, account_id: str) -> TenantRef | None:
        now = self._clock()
        cached = self._cache.get(account_id)
        if cached and cached[0] > now:
            return cached[1]
        binding = dynamo.get(AccountModel, account_id)
        tenant = dynamo.get(TenantModel, binding.tenant_id) if binding else None
        if binding is None or tenant is None or tenant.deletion_started_at is not None:
            self._cache.pop(account_id, None)
            return None
        ref = TenantRef(
            tenant.tenant_id,
            account_id,
            binding.bound_at,
            max(1, int(tenant.write_shards or 1)),
            indexed_tag_names(tenant.indexed_tags),
        )
        self._cache[account_id] = (now + self._ttl, ref)
        return ref

    def forget(self, account_id: str) -> None:
        """Drop a cached binding the store found replaced."""
        self._cache.pop(account_id, None)
