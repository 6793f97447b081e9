"""An account's binding to a tenant over time (DynamoDB Local): events of mail sent before the
binding never reach the tenant, a replaced binding is never served from ingest's cache, the
binding is only changed under a condition on the version read, and the bus policy does not grow
with the tenants (moto's EventBridge does not enforce the policy-size quota, so the document's
size is checked against it here)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import dynamo, keys
from chalicelib.core.errors import TransientStorageError
from chalicelib.core.tables import AccountModel, MessageModel, TenantModel
from chalicelib.ingest import bus
from chalicelib.ingest.directory import TenantDirectory
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from chalicelib.ingest.store import EventStore
from chalicelib.tenants.accounts import AccountService
from chalicelib.tenants.membership import Caller, TenantService
from pynamodb.connection import base as pynamodb_base

from tests.conftest import load_event
from tests.fakes import FakeRoleAccess, FakeUserDirectory
from tests.support import for_account
from tests.tenants.test_tenants_accounts import PLATFORM, account, role_arn


@pytest.fixture
def service(settings: Any) -> TenantService:
    return TenantService(FakeUserDirectory())


def new_tenant(service: TenantService) -> TenantModel:
    return service.membership(Caller(sub=str(uuid.uuid4()), email="o@example.com")).tenant


def connect(tenant: TenantModel, acct: str, clock: Any = None) -> TenantModel:
    roles = FakeRoleAccess({role_arn(acct): tenant.external_id})
    accounts = AccountService(PLATFORM, roles, clock) if clock else AccountService(PLATFORM, roles)
    return accounts.connect(tenant, role_arn(acct))


def sent_at(raw: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The envelope with its mail sent at `when` (and the event a minute later)."""
    detail = raw["detail"]
    detail["mail"]["timestamp"] = when.isoformat()
    section = detail["eventType"].lower()
    if section in detail and isinstance(detail[section], dict) and "timestamp" in detail[section]:
        detail[section]["timestamp"] = (when + timedelta(minutes=1)).isoformat()
    raw["time"] = (when + timedelta(minutes=1)).isoformat()
    return raw


def envelope(name: str, acct: str, when: datetime, message_id: str | None = None) -> dict[str, Any]:
    raw = sent_at(for_account(load_event(name), acct), when)
    raw["detail"]["mail"]["messageId"] = message_id or f"m-{uuid.uuid4().hex}"
    return raw


def stored(tenant_id: str, message_id: str) -> bool:
    return dynamo.get(MessageModel, keys.message_pk(tenant_id, message_id), "AGG") is not None


def test_mail_sent_before_the_binding_never_reaches_the_tenant(
    service: TenantService, settings: Any
) -> None:
    tenant, acct = new_tenant(service), account()
    connect(tenant, acct)
    bound_at = AccountModel.get(acct).bound_at
    before, after = f"m-{uuid.uuid4().hex}", f"m-{uuid.uuid4().hex}"
    late_open = envelope("open", acct, bound_at + timedelta(hours=1), before)
    # An open an hour after the binding, of mail sent two days before it: not the tenant's.
    late_open["detail"]["mail"]["timestamp"] = (bound_at - timedelta(days=2)).isoformat()
    raws = [
        envelope("send", acct, bound_at - timedelta(minutes=5), before),
        late_open,
        envelope("send", acct, bound_at + timedelta(seconds=1), after),
    ]
    report = ingest_envelopes(raws, tenants=TenantDirectory(60), store=EventStore(settings))
    assert report.outcomes == [Outcome.BEFORE_BINDING, Outcome.BEFORE_BINDING, Outcome.STORED]
    assert not stored(tenant.tenant_id, before) and stored(tenant.tenant_id, after)


def test_after_a_rebind_old_events_replayed_reach_neither_tenant(
    service: TenantService, settings: Any
) -> None:
    first, second, acct = new_tenant(service), new_tenant(service), account()
    t0 = datetime.now(UTC) - timedelta(hours=3)
    connect(first, acct, clock=lambda: t0)
    old = f"m-{uuid.uuid4().hex}"
    raw = envelope("send", acct, t0 + timedelta(minutes=10), old)
    store = EventStore(settings)
    assert ingest_envelopes([raw], tenants=TenantDirectory(0), store=store).outcomes == [
        Outcome.STORED
    ]
    AccountService(PLATFORM, FakeRoleAccess()).disconnect(TenantModel.get(first.tenant_id))
    connect(second, acct)  # now, hours after the first tenant's mail
    replayed = dict(raw, id=str(uuid.uuid4()))
    again = ingest_envelopes([replayed], tenants=TenantDirectory(0), store=store)
    assert again.outcomes == [Outcome.BEFORE_BINDING]
    assert not stored(second.tenant_id, old)


class Requests:
    """Counts every DynamoDB request PynamoDB makes (as the benchmark does)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._orig = pynamodb_base.Connection._make_api_call

    def __enter__(self) -> Requests:
        meter, orig = self, self._orig

        def call(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
            meter.calls.append(operation)
            return orig(conn, operation, kwargs)

        pynamodb_base.Connection._make_api_call = call  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        pynamodb_base.Connection._make_api_call = self._orig  # type: ignore[method-assign]


def test_a_replaced_binding_is_never_served_from_the_cache(
    service: TenantService, settings: Any
) -> None:
    first, second, acct = new_tenant(service), new_tenant(service), account()
    t0 = datetime.now(UTC) - timedelta(hours=1)
    connect(first, acct, clock=lambda: t0)
    directory, store = TenantDirectory(ttl_seconds=3600), EventStore(settings)
    warm = envelope("send", acct, t0 + timedelta(minutes=1))
    assert ingest_envelopes([warm], tenants=directory, store=store).outcomes == [Outcome.STORED]
    # The account moves to the second tenant; this instance still caches the first's binding.
    AccountService(PLATFORM, FakeRoleAccess()).disconnect(TenantModel.get(first.tenant_id))
    connect(second, acct)
    new = f"m-{uuid.uuid4().hex}"
    raw = envelope("send", acct, datetime.now(UTC) + timedelta(seconds=2), new)
    assert ingest_envelopes([raw], tenants=directory, store=store).outcomes == [Outcome.STORED]
    assert stored(second.tenant_id, new) and not stored(first.tenant_id, new)
    # And the first tenant got nothing of it: no row in its time-ordered view either.
    from chalicelib.core.tables import EventModel

    rows = EventModel.query(keys.events_pk(first.tenant_id, 0))
    assert new not in {r.message_id for r in rows}


def test_checking_the_binding_adds_no_request_in_the_steady_state(
    service: TenantService, settings: Any
) -> None:
    tenant, acct = new_tenant(service), account()
    connect(tenant, acct, clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    directory, store = TenantDirectory(ttl_seconds=3600), EventStore(settings)
    ingest_envelopes([envelope("send", acct, datetime.now(UTC))], tenants=directory, store=store)
    raws = [envelope("send", acct, datetime.now(UTC)) for _ in range(5)]
    with Requests() as meter:
        outcomes = ingest_envelopes(raws, tenants=directory, store=store).outcomes
    assert outcomes == [Outcome.STORED] * 5
    # One BatchGetItem (entry, aggregate AND binding), the row and the timeline entry (one
    # BatchWriteItem), the aggregate under its version (a PutItem: no transaction, the counters
    # follow from the stream): 3 per event, one fewer than the two GetItems, rows and
    # transaction before the binding was checked.
    assert meter.calls == ["BatchGetItem", "BatchWriteItem", "PutItem"] * 5


def test_reconnecting_the_same_account_keeps_its_binding_even_when_it_fails(
    service: TenantService, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, acct = new_tenant(service), account()
    tenant = connect(tenant, acct)
    bound = AccountModel.get(acct).bound_at
    tenant = connect(tenant, acct)  # again: same binding, same version
    assert AccountModel.get(acct).bound_at == bound

    def down(*args: Any, **kwargs: Any) -> Any:
        raise TransientStorageError("DynamoDB is throttling")

    monkeypatch.setattr(dynamo, "transact", down)
    with pytest.raises(TransientStorageError):
        connect(tenant, acct)
    binding = AccountModel.get(acct)
    assert (binding.tenant_id, binding.bound_at) == (tenant.tenant_id, bound)
    assert TenantModel.get(tenant.tenant_id).account_id == acct


def test_a_binding_is_only_removed_by_the_call_that_read_it(service: TenantService) -> None:
    first, second, acct = new_tenant(service), new_tenant(service), account()
    stale = connect(first, acct)
    # Meanwhile the account was released and bound by the second tenant (another request).
    AccountModel(acct).delete()
    AccountModel(acct, tenant_id=second.tenant_id, bound_at=datetime.now(UTC)).save()
    # The first tenant disconnects (its record still names the account): the second's stays.
    _, was = AccountService(PLATFORM, FakeRoleAccess()).disconnect(stale)
    assert was == acct
    assert AccountModel.get(acct).tenant_id == second.tenant_id
    assert TenantModel.get(first.tenant_id).account_id is None


def test_switching_accounts_releases_only_the_old_binding_read(service: TenantService) -> None:
    tenant, old, new = new_tenant(service), account(), account()
    tenant = connect(tenant, old)
    tenant = connect(tenant, new)
    assert AccountModel.count(old) == 0 and AccountModel.get(new).tenant_id == tenant.tenant_id
    assert TenantModel.get(tenant.tenant_id).account_id == new


def test_disconnecting_keeps_the_history_and_stops_new_events(
    service: TenantService, settings: Any
) -> None:
    tenant, acct = new_tenant(service), account()
    connect(tenant, acct, clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    kept = f"m-{uuid.uuid4().hex}"
    store = EventStore(settings)
    raw = envelope("send", acct, datetime.now(UTC) - timedelta(minutes=5), kept)
    ingest_envelopes([raw], tenants=TenantDirectory(0), store=store)
    accounts = AccountService(PLATFORM, FakeRoleAccess())
    tenant, was = accounts.disconnect(TenantModel.get(tenant.tenant_id))
    assert was == acct and tenant.account_id is None and tenant.role_arn is None
    assert AccountModel.count(acct) == 0
    assert stored(tenant.tenant_id, kept)  # history stays
    later = envelope("send", acct, datetime.now(UTC))
    assert ingest_envelopes([later], tenants=TenantDirectory(0), store=store).outcomes == [
        Outcome.UNKNOWN_ACCOUNT
    ]
    assert accounts.disconnect(tenant)[1] is None  # twice is harmless


def test_more_than_fifty_tenants_connect(service: TenantService) -> None:
    accounts = []
    for _ in range(60):  # the old one-statement-per-account policy failed near 50
        tenant, acct = new_tenant(service), account()
        assert connect(tenant, acct).account_id == acct
        accounts.append((tenant.tenant_id, acct))
    assert all(AccountModel.get(a).tenant_id == t for t, a in accounts)


def test_the_bus_policy_is_the_same_for_any_number_of_tenants() -> None:
    arn = "arn:aws:events:eu-west-1:444455556666:event-bus/sesami-prod"
    policy = bus.bus_policy(arn)
    assert bus.policy_size(policy) < 400 < bus.POLICY_SIZE_QUOTA  # nothing in it per tenant
    # The operator's escape hatch: accounts denied outright, up to the quota.
    blocked = [f"{n:012d}" for n in range(1, 281)]
    assert bus.policy_size(bus.bus_policy(arn, blocked)) <= bus.POLICY_SIZE_QUOTA
    with pytest.raises(ValueError, match="over EventBridge's 10240"):
        bus.bus_policy(arn, [f"{n:012d}" for n in range(1, 400)])
    with pytest.raises(ValueError, match="12-digit"):
        bus.bus_policy(arn, ["12345"])


def test_the_bus_policy_as_the_old_design_would_have_grown() -> None:
    """Why: one statement per account (the old PutPermission) passes the quota near 50."""
    arn = "arn:aws:events:eu-west-1:444455556666:event-bus/sesami-prod"

    def per_account(n: int) -> int:
        statements = [
            {
                "Sid": f"sesami-tenant-{uuid.UUID(int=i).hex}",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{i:012d}:root"},
                "Action": "events:PutEvents",
                "Resource": arn,
            }
            for i in range(n)
        ]
        return bus.policy_size({"Version": "2012-10-17", "Statement": statements})

    assert per_account(40) < bus.POLICY_SIZE_QUOTA < per_account(50)
