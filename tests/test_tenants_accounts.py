"""Tenant lifecycle and account connection (security invariants 1-3), against DynamoDB Local.
The Cognito directory and the STS role access are in-memory fakes here; the route tests exercise
the real adapters against moto's server. Binding versions, disconnecting and many tenants:
test_account_binding.py."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from chalicelib.core.errors import Conflict, Forbidden, InvalidRequest, RoleAccessDenied
from chalicelib.core.tables import AccountModel, TenantModel, UserModel
from chalicelib.tenants.accounts import (
    AccountService,
    PlatformInfo,
    RoleArn,
    Verifier,
)
from chalicelib.tenants.membership import Caller, TenantService

SESAMI_ACCOUNT = "444455556666"
PLATFORM = PlatformInfo(
    account_id=SESAMI_ACCOUNT,
    event_bus_arn=f"arn:aws:events:us-east-1:{SESAMI_ACCOUNT}:event-bus/sesami",
    region="us-east-1",
)


@dataclass
class FakeDirectory:
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    invited: list[tuple[str, str, str]] = field(default_factory=list)

    def set_tenant(self, username: str, tenant_id: str, role: str) -> None:
        self.attributes[username] = {"tenant_id": tenant_id, "role": role}

    def invite(self, email: str, tenant_id: str, role: str) -> None:
        self.invited.append((email, tenant_id, role))


@dataclass
class FakeRoles:
    """A role's trust policy, as STS would enforce it."""

    trust: dict[str, str | None] = field(default_factory=dict)  # role ARN -> required ExternalId
    calls: list[tuple[str, str | None]] = field(default_factory=list)

    def get(self, tenant_id: str, role_arn: str, external_id: str) -> Any:
        self.calls.append((role_arn, external_id))
        if role_arn not in self.trust or self.trust[role_arn] not in (None, external_id):
            raise RoleAccessDenied(f"SESami cannot assume {role_arn}")
        return object()

    def assume_without_external_id(self, role_arn: str) -> bool:
        self.calls.append((role_arn, None))
        return role_arn in self.trust and self.trust[role_arn] is None


def caller(**kw: Any) -> Caller:
    return Caller(sub=kw.pop("sub", str(uuid.uuid4())), email="owner@example.com", **kw)


def account() -> str:
    return str(uuid.uuid4().int)[:12].rjust(12, "1")


def role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/sesami/SESamiAccess"


@pytest.fixture
def tenants(settings: Any) -> tuple[TenantService, FakeDirectory]:
    directory = FakeDirectory()
    return TenantService(directory), directory


def test_first_call_creates_tenant_with_issued_external_id(tenants: Any) -> None:
    service, directory = tenants
    me = caller()
    membership = service.membership(me)
    tenant = membership.tenant
    assert membership.role == "admin"
    assert re.fullmatch(r"sesami-[0-9a-f]{48}", tenant.external_id)  # 192 random bits
    assert directory.attributes[me.sub] == {"tenant_id": tenant.tenant_id, "role": "admin"}
    again = service.membership(me)
    assert again.tenant.tenant_id == tenant.tenant_id
    assert again.tenant.external_id == tenant.external_id


def test_a_user_pool_failure_on_first_call_still_gives_the_user_their_tenant(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class FailingDirectory(FakeDirectory):
        def set_tenant(self, username: str, tenant_id: str, role: str) -> None:
            raise RuntimeError("UserNotFoundException from the pool")

    service = TenantService(FailingDirectory())
    me = caller()
    first = service.membership(me)
    assert first.role == "admin"
    assert "could not set the tenant attribute" in caplog.text
    # The binding holds: the next call finds the same tenant and creates no other.
    assert service.membership(me).tenant.tenant_id == first.tenant.tenant_id


def test_external_ids_are_unique_per_tenant(tenants: Any) -> None:
    service, _ = tenants
    ids = {service.membership(caller()).tenant.external_id for _ in range(20)}
    assert len(ids) == 20


def test_concurrent_first_calls_create_one_tenant(tenants: Any) -> None:
    service, _ = tenants
    me = caller()
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(service.membership(me).tenant.tenant_id))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert UserModel.get(me.sub).tenant_id == results[0]


def test_invited_user_joins_the_inviting_tenant_as_member(tenants: Any) -> None:
    service, directory = tenants
    admin = service.membership(caller())
    service.invite(admin, "Colleague@Example.com")
    email, tenant_id, role = directory.invited[0]
    assert (email, tenant_id, role) == ("colleague@example.com", admin.tenant.tenant_id, "member")
    joined = service.membership(caller(tenant_id=tenant_id, tenant_role="member"))
    assert joined.tenant.tenant_id == admin.tenant.tenant_id and joined.role == "member"
    with pytest.raises(Forbidden):
        service.invite(joined, "third@example.com")


def make_accounts(roles: FakeRoles, **platform: Any) -> AccountService:
    from dataclasses import replace

    return AccountService(replace(PLATFORM, **platform), roles)


def test_connect_binds_account_from_the_arn(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    acct = account()
    roles = FakeRoles({role_arn(acct): tenant.external_id})
    connected = make_accounts(roles).connect(tenant, role_arn(acct), "eu-west-1", "my-set")
    assert (connected.account_id, connected.region, connected.configuration_set) == (
        acct,
        "eu-west-1",
        "my-set",
    )
    assert AccountModel.get(acct).tenant_id == tenant.tenant_id
    assert (role_arn(acct), tenant.external_id) in roles.calls
    assert TenantModel.get(tenant.tenant_id).external_id == tenant.external_id  # never changes


def test_role_assumable_without_external_id_is_refused_and_nothing_stored(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    acct = account()
    roles = FakeRoles({role_arn(acct): None})  # trusts SESami, no condition
    with pytest.raises(RoleAccessDenied, match="confused-deputy"):
        make_accounts(roles).connect(tenant, role_arn(acct))
    assert AccountModel.count(acct) == 0
    assert TenantModel.get(tenant.tenant_id).account_id is None


def test_role_refusing_sesami_names_the_role(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    acct = account()
    with pytest.raises(RoleAccessDenied, match=acct):
        make_accounts(FakeRoles({})).connect(tenant, role_arn(acct))


def test_account_bound_to_another_tenant_is_a_conflict(tenants: Any) -> None:
    service, _ = tenants
    first, second = (service.membership(caller()).tenant for _ in range(2))
    acct = account()
    roles = FakeRoles({role_arn(acct): None})
    roles.trust[role_arn(acct)] = first.external_id
    make_accounts(roles).connect(first, role_arn(acct))
    roles.trust[role_arn(acct)] = second.external_id  # the customer re-ran onboarding for B
    with pytest.raises(Conflict, match="already connected to another SESami tenant"):
        make_accounts(roles).connect(second, role_arn(acct))
    assert AccountModel.get(acct).tenant_id == first.tenant_id
    assert TenantModel.get(second.tenant_id).account_id is None


def test_reconnecting_to_a_new_account_releases_the_old_one(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    old, new = account(), account()
    roles = FakeRoles({role_arn(old): tenant.external_id, role_arn(new): tenant.external_id})
    accounts = make_accounts(roles)
    accounts.connect(tenant, role_arn(old))
    accounts.connect(tenant, role_arn(new))
    assert AccountModel.count(old) == 0
    assert AccountModel.get(new).tenant_id == tenant.tenant_id


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("arn:aws:iam::12345:role/sesami/X", "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:user/sesami/X", "not an IAM role ARN"),
        ("arn:aws:iam::123456789012:role/X", "under the path /sesami/"),
        ("arn:aws:iam::123456789012:role/sesami/X\r\nInjected: 1", "not an IAM role ARN"),
        (42, "must be a string"),
    ],
)
def test_bad_role_arns_are_refused_with_a_reason(raw: object, words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        RoleArn.parse(raw)


def test_sesamis_own_account_is_refused(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    with pytest.raises(InvalidRequest, match="SESami's own account"):
        make_accounts(FakeRoles()).connect(tenant, role_arn(SESAMI_ACCOUNT))


def test_local_stack_relaxation_skips_only_the_refusal_check(tenants: Any, caplog: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    acct = account()
    roles = FakeRoles({role_arn(acct): None})
    with caplog.at_level("WARNING", logger="sesami.accounts"):
        accounts = make_accounts(roles, skip_external_id_refusal_check=True)
        accounts.connect(tenant, role_arn(acct))
    assert any("INSECURE" in r.message for r in caplog.records)
    assert AccountModel.get(acct).tenant_id == tenant.tenant_id


def test_onboarding_values_and_commands(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    info = make_accounts(FakeRoles()).onboarding(tenant)
    assert info["external_id"] == tenant.external_id
    assert info["sesami_account_id"] == SESAMI_ACCOUNT
    assert info["event_bus_arn"] == PLATFORM.event_bus_arn
    commands = "\n".join(info["commands"])
    assert (
        f"config set --secret sesami-customer-onboarding:externalId {tenant.external_id}"
        in commands
    )
    assert commands.startswith("cd customer-onboarding") and commands.endswith("pulumi up")


def test_checklist_without_account_checks_nothing_and_says_why(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    result = Verifier(PLATFORM, FakeRoles(), lambda *a: None).run(tenant)
    assert not result["ok"]
    assert {c["status"] for c in result["checks"]} == {"not_checked"}
    assert all("PUT /account" in c["message"] for c in result["checks"])


@pytest.mark.parametrize("bad", ["not-an-address", "a@b", "x\r\n@example.com", "@example.com"])
def test_invite_refuses_what_is_not_an_address(tenants: Any, bad: str) -> None:
    service, directory = tenants
    admin = service.membership(caller())
    with pytest.raises(InvalidRequest, match="not an email address"):
        service.invite(admin, bad)
    assert directory.invited == []
