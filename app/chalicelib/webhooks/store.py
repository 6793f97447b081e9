"""DynamoDB for webhooks and alerts: endpoints, the delivery log, alert rules and history, the
tenant's sending pause, its admins' addresses and the hourly counters alerts read. Every key
starts with the tenant (core/keys.py); PynamoDB errors leave as core/errors.py's."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.core import dynamo, keys
from chalicelib.core.tables import (
    AlertHistoryModel,
    AlertRuleModel,
    CounterModel,
    TenantModel,
    UserModel,
    WebhookDeliveryModel,
    WebhookEndpointModel,
    WebhookMarkModel,
)

REPUTATION_COUNTS = ("SENT", "BOUNCED_PERMANENT", "COMPLAINED")
HISTORY_DAYS = 366
LOG_DAYS = 30  # a delivery's record is kept this long (delivery.py's KEEP_DAYS)
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]/?#&=]+")


class WebhookStore:
    # ------------------------------------------------------------------ endpoints

    @staticmethod
    def endpoints(tenant_id: str) -> list[WebhookEndpointModel]:
        with dynamo.storage("webhook endpoints read"):
            return list(
                WebhookEndpointModel.query(
                    keys.webhooks_pk(tenant_id), WebhookEndpointModel.sk.startswith("EP#")
                )
            )

    @staticmethod
    def endpoint(tenant_id: str, endpoint_id: str) -> WebhookEndpointModel | None:
        return dynamo.get(
            WebhookEndpointModel, keys.webhooks_pk(tenant_id), keys.endpoint_sk(endpoint_id)
        )

    @staticmethod
    def create_endpoint(endpoint: WebhookEndpointModel) -> bool:
        return dynamo.write_if(
            "webhook endpoint write",
            lambda: endpoint.save(condition=WebhookEndpointModel.sk.does_not_exist()),
        )

    @staticmethod
    def update_endpoint(
        endpoint: WebhookEndpointModel,
        actions: Sequence[Action],
        condition: Condition | None = None,
    ) -> bool:
        """Update an existing endpoint (False: it was deleted, or `condition` failed)."""
        exists = WebhookEndpointModel.sk.exists()
        return dynamo.write_if(
            "webhook endpoint update",
            lambda: endpoint.update(
                actions=list(actions),
                condition=exists if condition is None else exists & condition,
            ),
        )

    @staticmethod
    def delete_endpoint(endpoint: WebhookEndpointModel) -> None:
        """The endpoint goes; a mark of it stays as long as its delivery log may, so that an
        erasure or the tenant's deletion still finds that log (lifecycle/)."""
        gone = WebhookMarkModel(
            endpoint.pk,
            keys.gone_endpoint_sk(endpoint.endpoint_id),
            expires_at=datetime.now(UTC) + timedelta(days=LOG_DAYS),
        )
        with dynamo.storage("webhook endpoint delete"):
            gone.save()
            endpoint.delete()

    @staticmethod
    def names_erased(tenant_id: str, delivery_id: str, body: str) -> bool:
        """Whether a webhook body names an address the tenant erased after what it delivers
        happened (the X# marks; a delivery ID starts with that time)."""
        found = {
            keys.erased_webhook_sk(keys.address_hash(tenant_id, a)) for a in _addresses_in(body)
        }
        if not found:
            return False
        pk = keys.webhooks_pk(tenant_id)
        with dynamo.storage("erased addresses read"):
            marks = list(WebhookMarkModel.batch_get([(pk, sk) for sk in sorted(found)]))
        return any(delivery_id < (m.before or "") for m in marks)

    # ------------------------------------------------------------------ deliveries

    @staticmethod
    def delivery(tenant_id: str, endpoint_id: str, delivery_id: str) -> WebhookDeliveryModel | None:
        with dynamo.storage("webhook delivery read"):
            try:
                return WebhookDeliveryModel.get(
                    keys.deliveries_pk(tenant_id, endpoint_id), keys.delivery_sk(delivery_id)
                )
            except WebhookDeliveryModel.DoesNotExist:
                return None

    @staticmethod
    def create_delivery(delivery: WebhookDeliveryModel) -> bool:
        """False when the delivery exists already (the same message queued twice)."""
        return dynamo.write_if(
            "webhook delivery write",
            lambda: delivery.save(condition=WebhookDeliveryModel.sk.does_not_exist()),
        )

    @staticmethod
    def update_delivery(
        delivery: WebhookDeliveryModel, actions: Sequence[Action], *, attempts: int
    ) -> bool:
        """Record what happened, if nobody recorded attempt `attempts + 1` meanwhile."""
        return dynamo.write_if(
            "webhook delivery update",
            lambda: delivery.update(
                actions=list(actions), condition=WebhookDeliveryModel.attempts == attempts
            ),
        )

    @staticmethod
    def deliveries(
        tenant_id: str,
        endpoint_id: str,
        *,
        start: str,
        end: str,
        limit: int,
        after: str | None = None,
        newest_first: bool = True,
        status: str | None = None,
    ) -> tuple[list[WebhookDeliveryModel], str | None]:
        """One page of an endpoint's log between two delivery IDs, and where the next starts."""
        condition = WebhookDeliveryModel.sk.between(keys.delivery_sk(start), keys.delivery_sk(end))
        last: dict[str, Any] | None = None
        if after:
            pk = keys.deliveries_pk(tenant_id, endpoint_id)
            last = {"pk": {"S": pk}, "sk": {"S": after}}
        with dynamo.storage("webhook deliveries read"):
            found = WebhookDeliveryModel.query(
                keys.deliveries_pk(tenant_id, endpoint_id),
                condition,
                filter_condition=(WebhookDeliveryModel.status == status) if status else None,
                scan_index_forward=not newest_first,
                limit=limit,
                last_evaluated_key=last,
                page_size=limit,
            )
            items = list(found)
            end_key = found.last_evaluated_key
        return items, (end_key["sk"]["S"] if end_key and len(items) >= limit else None)

    # ------------------------------------------------------------------ alerts

    @staticmethod
    def alert_rules(tenant_id: str) -> dict[str, AlertRuleModel]:
        with dynamo.storage("alert rules read"):
            found = AlertRuleModel.query(
                keys.alerts_pk(tenant_id), AlertRuleModel.sk.startswith("R#")
            )
            return {item.sk[2:]: item for item in found}

    @staticmethod
    def save_rule(rule: AlertRuleModel, *, revision: int | None) -> bool:
        """Write a rule; with `revision`, only if nobody changed it since it was read."""
        condition: Condition
        if revision is None:
            condition = AlertRuleModel.sk.does_not_exist()
        else:
            condition = AlertRuleModel.revision == revision
        return dynamo.write_if("alert rule write", lambda: rule.save(condition=condition))

    @staticmethod
    def add_history(tenant_id: str, rule: str, at: datetime, doc: dict[str, Any]) -> None:
        item = AlertHistoryModel(
            keys.alerts_pk(tenant_id),
            keys.alert_history_sk(at, rule),
            doc=doc,
            expires_at=at + timedelta(days=HISTORY_DAYS),
        )
        with dynamo.storage("alert history write"):
            item.save()

    @staticmethod
    def history(tenant_id: str, limit: int) -> list[dict[str, Any]]:
        with dynamo.storage("alert history read"):
            found = AlertHistoryModel.query(
                keys.alerts_pk(tenant_id),
                AlertHistoryModel.sk.startswith("H#"),
                scan_index_forward=False,
                limit=limit,
            )
            return [dict(item.doc) for item in found]

    # ------------------------------------------------------------------ the tenant

    @staticmethod
    def tenant(tenant_id: str) -> TenantModel | None:
        return dynamo.get(TenantModel, tenant_id)

    @staticmethod
    def pause(tenant: TenantModel, info: dict[str, Any]) -> bool:
        """Pause the tenant's sending, unless it is paused already (the first alert names it)."""
        return dynamo.write_if(
            "sending pause",
            lambda: tenant.update(
                actions=[TenantModel.sending_paused.set(info)],
                condition=TenantModel.sending_paused.does_not_exist(),
            ),
        )

    @staticmethod
    def resume(tenant: TenantModel) -> None:
        with dynamo.storage("sending resume"):
            tenant.update(actions=[TenantModel.sending_paused.remove()])

    @staticmethod
    def admin_addresses(tenant_id: str) -> list[str]:
        """The tenant's admins who can be mailed (users, not invitations or removed users)."""
        with dynamo.storage("team read"):
            users = list(UserModel.by_tenant.query(tenant_id))
        return sorted(
            {
                u.email
                for u in users
                if u.kind == "user" and u.role == "admin" and not u.removed_at and u.email
            }
        )

    @staticmethod
    def reputation_counts(
        tenant_id: str, shards: int, start: datetime, end: datetime
    ) -> Counter[str]:
        """Sends, hard bounces and complaints counted in the hourly buckets of [start, end]."""
        totals: Counter[str] = Counter()
        between = CounterModel.sk.between(keys.counter_sk(start), keys.counter_sk(end))
        with dynamo.storage("counters read"):
            for shard in range(max(1, shards)):
                for item in CounterModel.query(keys.counter_pk(tenant_id, shard), between):
                    for name in REPUTATION_COUNTS:
                        totals[name] += int(getattr(item, name) or 0)
        return totals


def _addresses_in(body: str) -> set[str]:
    """Every address-like text in a webhook body's strings, lower-cased (JSON escapes undone)."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = body
    out: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.update(m.group(0).lower() for m in _ADDRESS.finditer(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(doc)
    return out
