"""DynamoDB for API keys (the `api_keys` table, core/tables.py ApiKeyModel).

One item per key, found from the key itself by its public ID (core/keys.api_key_pk): verifying
a key is one consistent GetItem, so a revocation written a moment ago is seen by the very next
request. A tenant's keys are listed through the `by_tenant` index, keyed by the tenant.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.core import dynamo, keys
from chalicelib.core.tables import ApiKeyModel, TenantModel


class KeyStore:
    @staticmethod
    def get(key_id: str) -> ApiKeyModel | None:
        return dynamo.get(ApiKeyModel, keys.api_key_pk(key_id))

    @staticmethod
    def tenant(tenant_id: str) -> TenantModel | None:
        return dynamo.get(TenantModel, tenant_id)

    @staticmethod
    def of_tenant(tenant_id: str) -> list[ApiKeyModel]:
        """Every key the tenant has (revoked ones until their item is purged): one query."""
        with dynamo.storage("api key list"):
            return list(ApiKeyModel.by_tenant.query(tenant_id))

    @staticmethod
    def add(item: ApiKeyModel) -> bool:
        """False when the ID is taken (64 random bits: in practice never)."""
        fresh = ApiKeyModel.pk.does_not_exist()
        return dynamo.write_if("api key write", lambda: item.save(condition=fresh))

    @staticmethod
    def revoke(item: ApiKeyModel, now: datetime, by: str, purge_at: datetime) -> bool:
        """Mark the key revoked (it stays listed until `purge_at`); False if it already was."""
        live = ApiKeyModel.revoked_at.does_not_exist() & (ApiKeyModel.tenant_id == item.tenant_id)

        def write() -> None:
            item.update(
                [
                    ApiKeyModel.revoked_at.set(now),
                    ApiKeyModel.revoked_by.set(by),
                    ApiKeyModel.expires_at.set(purge_at),
                ],
                condition=live,
            )

        return dynamo.write_if("api key revocation", write)

    @staticmethod
    def touch(item: ApiKeyModel, now: datetime, every: timedelta) -> bool:
        """Record a use, unless one was recorded less than `every` ago: whatever the number of
        instances, at most one such write succeeds per key per `every`."""
        stale = ApiKeyModel.last_used_at.does_not_exist() | (ApiKeyModel.last_used_at < now - every)
        return dynamo.write_if(
            "api key use",
            lambda: item.update([ApiKeyModel.last_used_at.set(now)], condition=stale),
        )
