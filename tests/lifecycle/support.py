"""Builders for the lifecycle tests: SES events to chosen addresses, a tenant with a little of
everything, and a scan of every test table (DynamoDB Local) to look for what must be gone."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from chalicelib.core.tables import table_specs
from chalicelib.tenants.membership import Caller, Membership

from tests.conftest import load_event

# The addresses of the recorded events, replaced by each test's own.
FIXTURE_ADDRESSES = (
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.org",
    "frank@example.com",
)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


def event(name: str, message_id: str, account: str, **addresses: str) -> dict[str, Any]:
    """A recorded event re-addressed: `alice="x@y"` replaces alice@example.com everywhere."""
    text = json.dumps(load_event(name))
    for fixture in FIXTURE_ADDRESSES:
        local = fixture.split("@")[0]
        if local in addresses:
            text = text.replace(fixture, addresses[local])
    raw: dict[str, Any] = json.loads(text)
    raw["account"], raw["id"] = account, str(uuid.uuid4())
    raw["detail"]["mail"]["messageId"] = message_id
    return raw


def open_of(send: dict[str, Any], seconds: int = 60) -> dict[str, Any]:
    """An open of the message `send` describes (unattributable when it has several recipients)."""
    opened = copy.deepcopy(send)
    opened["id"], opened["detail-type"] = str(uuid.uuid4()), "Email Opened"
    detail = opened["detail"]
    detail["eventType"] = "Open"
    detail.pop("send", None)
    detail["open"] = {
        "timestamp": detail["mail"]["timestamp"][:17] + f"{min(seconds, 59):02d}.000Z",
        "userAgent": "Mozilla/5.0",
        "ipAddress": "203.0.113.7",
    }
    return opened


def click_of(send: dict[str, Any], link: str) -> dict[str, Any]:
    clicked = open_of(send, 59)
    clicked["detail-type"] = "Email Clicked"
    detail = clicked["detail"]
    detail["eventType"] = "Click"
    detail["click"] = {**detail.pop("open"), "link": link, "linkTags": None}
    return clicked


def tagged(raw: dict[str, Any], **tags: str) -> dict[str, Any]:
    for name, value in tags.items():
        raw["detail"]["mail"].setdefault("tags", {})[name] = [value]
    return raw


def personal_link(address: str) -> str:
    return f"https://shop.example.net/offer?u={quote(address, safe='')}"


def admin(tenant_id: str, email: str = "admin@example.net") -> Membership:
    from chalicelib.core import dynamo
    from chalicelib.core.permissions import Role
    from chalicelib.core.tables import TenantModel

    tenant = dynamo.get(TenantModel, tenant_id)
    assert tenant is not None
    return Membership(tenant, Role.ADMIN, Caller(sub=str(uuid.uuid4()), email=email))


# ------------------------------------------------------------------------------ table scans


def _client(settings: Any) -> Any:
    from devstack.dynamodb_local import local_client

    return local_client(settings.dynamodb_endpoint, settings.region)


def every_item(settings: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """(logical table, item as plain JSON-ish data) of every item of every test table, once the
    counters have taken in every stream record written so far (tests/conftest.py)."""
    from tests.conftest import STREAM_POLLERS

    for poller in STREAM_POLLERS:
        poller.drain()
    client = _client(settings)
    for logical in table_specs():
        pages = client.get_paginator("scan").paginate(TableName=settings.table_prefix + logical)
        for page in pages:
            for item in page["Items"]:
                yield logical, item


def of_tenant(item: dict[str, Any], tenant_id: str) -> bool:
    """An item under the tenant's keys, or naming the tenant (quarantine, users, accounts)."""
    return tenant_id in json.dumps(item)


@dataclass
class Found:
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def tables(self) -> set[str]:
        return {t for t, _ in self.items}


def items_mentioning(settings: Any, needles: Iterable[str], tenant_id: str | None = None) -> Found:
    """Every item (of the tenant, if given) whose text mentions any needle, case-insensitively."""
    wanted = [n.lower() for n in needles]
    found = Found()
    for table, item in every_item(settings):
        text = json.dumps(item, ensure_ascii=False).lower()
        if tenant_id is not None and tenant_id not in text:
            continue
        if any(n in text for n in wanted):
            found.items.append((table, item))
    return found


def items_of(settings: Any, tenant_id: str) -> Found:
    found = Found()
    for table, item in every_item(settings):
        if of_tenant(item, tenant_id):
            found.items.append((table, item))
    return found


def store_batch(
    store: Any,
    tenant_id: str,
    batch_id: str,
    *,
    status: str,
    recipients: Sequence[tuple[str, str, str, dict[str, str]]] = (),
    sent: Sequence[str] = (),
) -> None:
    """A bulk batch as the bulk routes store it: its summary, its job (`recipients` as
    (To header, address, key, variables)), its addresses, and a `sent` result per address."""
    from chalicelib.sending.batches import BatchSummary, BulkJob, JobRecipient, RecipientResult

    summary = BatchSummary(
        batch_id=batch_id,
        created_at="2026-01-01T00:00:00.000Z",
        configuration_set="sesami-events",
        total=len(recipients),
        next=len(sent),
        status=status,
    )
    job = BulkJob(
        sender="sender@example.net",
        reply_to=(),
        subject="Hi",
        html=None,
        text="Hello",
        tags=(),
        recipients=tuple(JobRecipient(h, a, k, v) for h, a, k, v in recipients),
        suppressed=frozenset(),
    )
    results = {i: RecipientResult(address=a, status="sent") for i, a in enumerate(sent)}
    addresses = [r[1] for r in recipients]
    store.create_batch(tenant_id, batch_id, summary, job, addresses, results)


def store_webhooks(tenant_id: str, recipient: str) -> str:
    """What webhooks keep of a tenant: an endpoint with a delivery naming `recipient` (in its
    body and in its log's answer), a deleted endpoint whose log is still kept, an alert rule
    and an alert's history. Returns the live endpoint's ID."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.core import keys
    from chalicelib.core.tables import (
        AlertHistoryModel,
        AlertRuleModel,
        WebhookDeliveryModel,
        WebhookEndpointModel,
    )
    from chalicelib.webhooks.store import WebhookStore

    now = datetime.now(UTC)
    live, gone = f"ep_{uuid.uuid4().hex[:16]}", f"ep_{uuid.uuid4().hex[:16]}"
    for endpoint_id in (live, gone):
        endpoint = WebhookEndpointModel(
            keys.webhooks_pk(tenant_id),
            keys.endpoint_sk(endpoint_id),
            endpoint_id=endpoint_id,
            url="https://hooks.example.net/in",
            event_types=["email.*"],
            enabled=False,  # no secret to sign with: nothing more is delivered to it
            secrets=[],
            created_at=keys.iso_ms(now),
        )
        endpoint.save()
        body = json.dumps({"type": "email.delivered", "data": {"recipient": recipient}})
        WebhookDeliveryModel(
            keys.deliveries_pk(tenant_id, endpoint_id),
            keys.delivery_sk(f"20260101T000000000Z-{uuid.uuid4().hex[:12]}"),
            webhook_id=f"msg_{uuid.uuid4().hex[:12]}",
            event_type="email.delivered",
            body=body,
            status="delivered",
            attempts=1,
            log=[{"n": 1, "code": 200, "body": f"ok {recipient}"}],
            created_at=keys.iso_ms(now),
            expires_at=now + timedelta(days=30),
        ).save()
    WebhookStore.delete_endpoint(WebhookStore.endpoint(tenant_id, gone))  # type: ignore[arg-type]
    AlertRuleModel(keys.alerts_pk(tenant_id), keys.alert_rule_sk("bounce_rate"), state="ok").save()
    AlertHistoryModel(
        keys.alerts_pk(tenant_id),
        keys.alert_history_sk(now, "bounce_rate"),
        doc={"rule": "bounce_rate", "state": "firing"},
        expires_at=now + timedelta(days=366),
    ).save()
    return live
