"""Tenant lifecycle and account connection (security invariants 1-3), against DynamoDB Local.
The Cognito directory and the STS role access are in-memory fakes here; the route tests exercise
the real adapters against moto's server. Binding versions, disconnecting and many tenants:
test_account_binding.py."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RoleAccessDenied,
)
from chalicelib.core.permissions import Permission, Role
from chalicelib.core.tables import AccountModel, TenantModel, UserModel
from chalicelib.tenants.accounts import (
    AccountService,
    PlatformInfo,
    RoleArn,
)
from chalicelib.tenants.membership import Caller, TenantService
from chalicelib.tenants.setup_check import Verifier

from tests.fakes import FakeRoleAccess, FakeUserDirectory

SESAMI_ACCOUNT = "444455556666"
PLATFORM = PlatformInfo(
    account_id=SESAMI_ACCOUNT,
    event_bus_arn=f"arn:aws:events:us-east-1:{SESAMI_ACCOUNT}:event-bus/sesami",
    region="us-east-1",
)


def caller(**kw: Any) -> Caller:
    return Caller(sub=kw.pop("sub", str(uuid.uuid4())), email="owner@example.com", **kw)


def account() -> str:
    return str(uuid.uuid4().int)[:12].rjust(12, "1")


def role_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/sesami/SESamiAccess"


@pytest.fixture
def tenants(settings: Any) -> tuple[TenantService, FakeUserDirectory]:
    directory = FakeUserDirectory()
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
    class FailingDirectory(FakeUserDirectory):
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


def test_an_invitee_joins_only_by_accepting_with_the_invited_role(tenants: Any) -> None:
    service, directory = tenants
    admin = service.membership(caller())
    service.invite(admin, "Colleague@Example.com", "viewer")
    email, tenant_id, role = directory.invited[0]
    assert (email, tenant_id, role) == ("colleague@example.com", admin.tenant.tenant_id, "viewer")
    # The pool's attribute says "admin": SESami's invitation record decides the role.
    invitee = Caller(
        sub=str(uuid.uuid4()),
        email="colleague@example.com",
        tenant_id=tenant_id,
        tenant_role="admin",
    )
    pending = service.membership(invitee)
    assert pending.role == Role.INVITED and not pending.allows(Permission.READ)
    assert pending.invited_by == "owner@example.com"
    assert service.invitation(pending)["role"] == "viewer"
    assert service.accept(pending) == {"tenant_id": tenant_id, "role": "viewer"}
    joined = service.membership(invitee)
    assert joined.tenant.tenant_id == tenant_id and joined.role == Role.VIEWER
    assert not joined.allows(Permission.SEND)
    with pytest.raises(NotFound):  # accepted once: the invitation is no longer pending
        service.accept(pending)


def test_a_cancelled_invitation_cannot_be_accepted(tenants: Any) -> None:
    service, _ = tenants
    admin = service.membership(caller())
    service.invite(admin, "late@example.com")
    service.cancel(admin, "late@example.com")
    invitee = Caller(
        sub=str(uuid.uuid4()), email="late@example.com", tenant_id=admin.tenant.tenant_id
    )
    with pytest.raises(Forbidden, match="no pending invitation") as refused:
        service.membership(invitee)
    assert refused.value.details == {"code": "invitation_cancelled"}


def make_accounts(roles: FakeRoleAccess, **platform: Any) -> AccountService:
    from dataclasses import replace

    return AccountService(replace(PLATFORM, **platform), roles)


def test_connect_binds_account_from_the_arn(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    acct = account()
    roles = FakeRoleAccess({role_arn(acct): tenant.external_id})
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
    roles = FakeRoleAccess({role_arn(acct): None})  # trusts SESami, no condition
    with pytest.raises(RoleAccessDenied, match="confused-deputy"):
        make_accounts(roles).connect(tenant, role_arn(acct))
    assert AccountModel.count(acct) == 0
    assert TenantModel.get(tenant.tenant_id).account_id is None


def test_role_refusing_sesami_names_the_role(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    acct = account()
    with pytest.raises(RoleAccessDenied, match=acct):
        make_accounts(FakeRoleAccess({})).connect(tenant, role_arn(acct))


def test_account_bound_to_another_tenant_is_a_conflict(tenants: Any) -> None:
    service, _ = tenants
    first, second = (service.membership(caller()).tenant for _ in range(2))
    acct = account()
    roles = FakeRoleAccess({role_arn(acct): None})
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
    roles = FakeRoleAccess({role_arn(old): tenant.external_id, role_arn(new): tenant.external_id})
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
        make_accounts(FakeRoleAccess()).connect(tenant, role_arn(SESAMI_ACCOUNT))


def test_local_stack_relaxation_skips_only_the_refusal_check(tenants: Any, caplog: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    acct = account()
    roles = FakeRoleAccess({role_arn(acct): None})
    with caplog.at_level("WARNING", logger="sesami.accounts"):
        accounts = make_accounts(roles, skip_external_id_refusal_check=True)
        accounts.connect(tenant, role_arn(acct))
    assert any("INSECURE" in r.message for r in caplog.records)
    assert AccountModel.get(acct).tenant_id == tenant.tenant_id


def test_onboarding_values_and_commands(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    info = make_accounts(FakeRoleAccess()).onboarding(tenant)
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
    roles = FakeRoleAccess()
    result = Verifier(PLATFORM, roles, gateway(roles, lambda *a: None)).run(tenant)
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


# ---------------------------------------------------------------------- the setup checklist


def test_onboarding_names_sesamis_roles_for_the_trust_policy(tenants: Any) -> None:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    roles = (f"arn:aws:iam::{SESAMI_ACCOUNT}:role/a", f"arn:aws:iam::{SESAMI_ACCOUNT}:role/b")
    info = make_accounts(FakeRoleAccess(), role_arns=roles).onboarding(tenant)
    assert info["sesami_role_arns"] == list(roles)
    path = "pulumi config set --path 'sesami-customer-onboarding:sesamiRoleArns[1]'"
    assert f"{path} {roles[1]}" in info["commands"]


def _client_error(code: str, operation: str) -> Exception:
    from botocore.exceptions import ClientError

    error: Exception = ClientError(
        {"Error": {"Code": code, "Message": f"{code} (test)"}}, operation
    )
    return error


class FakeEvents:
    """The customer's default bus as the checklist reads it: one rule, by name."""

    def __init__(self, rule: dict[str, Any] | None, targets: list[str]) -> None:
        self.rule, self.targets = rule, targets
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def describe_rule(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("DescribeRule", kw))
        if self.rule is None or kw["Name"] != self.rule["Name"]:
            raise _client_error("ResourceNotFoundException", "DescribeRule")
        return self.rule

    def list_targets_by_rule(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("ListTargetsByRule", kw))
        return {"Targets": [{"Id": "t", "Arn": arn} for arn in self.targets]}


class FakeSes:
    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.fail = fail or {}

    def _maybe_fail(self, operation: str) -> None:
        if operation in self.fail:
            raise self.fail[operation]

    def get_account(self) -> dict[str, Any]:
        self._maybe_fail("GetAccount")
        return {"ProductionAccessEnabled": True, "SendingEnabled": True, "SendQuota": {}}

    def get_configuration_set(self, **kw: Any) -> dict[str, Any]:
        return {}

    def get_configuration_set_event_destinations(self, **kw: Any) -> dict[str, Any]:
        from chalicelib.tenants.accounts import SES_EVENT_TYPES

        types = sorted(SES_EVENT_TYPES)
        return {
            "EventDestinations": [
                {"Enabled": True, "EventBridgeDestination": {}, "MatchingEventTypes": types}
            ]
        }

    def list_email_identities(self) -> dict[str, Any]:
        self._maybe_fail("ListEmailIdentities")
        return {
            "EmailIdentities": [
                {"IdentityName": "pending.example", "VerificationStatus": "PENDING"},
                {"IdentityName": "example.com", "SendingEnabled": True},
            ]
        }

    def send_email(self, **kw: Any) -> dict[str, Any]:
        self._maybe_fail("SendEmail")
        self.sent = kw
        return {"MessageId": "canary-1"}


def gateway(roles: Any, factory: Any) -> Any:
    """The real gateway into tenants' accounts, with fake roles and clients."""
    from chalicelib.tenant_aws.gateway import Gateway

    def clients(service: str, *, region: str, endpoint: Any, credentials: Any) -> Any:
        return factory(service, credentials, region)

    return Gateway(roles, default_region="us-east-1", client_factory=clients)


def _connected(tenants: Any) -> Any:
    service, _ = tenants
    tenant = service.membership(caller()).tenant
    tenant.role_arn = role_arn(account())
    return tenant


def _checklist(
    tenant: Any,
    *,
    events: Any = None,
    ses: Any = None,
    roles: Any = None,
    canary: bool = False,
    clients: Any = None,
) -> dict[str, dict[str, Any]]:
    from chalicelib.tenants.accounts import FORWARDING_RULE_NAME

    pattern = json.dumps({"source": ["aws.ses"], "detail": {}})
    rule = {"Name": FORWARDING_RULE_NAME, "State": "ENABLED", "EventPattern": pattern}
    events = events or FakeEvents(rule, [PLATFORM.event_bus_arn])
    ses = ses or FakeSes()
    roles = roles or FakeRoleAccess({tenant.role_arn: tenant.external_id})
    factory = clients or (lambda service, creds, region: ses if service == "sesv2" else events)
    result = Verifier(PLATFORM, roles, gateway(roles, factory)).run(tenant, canary=canary)
    return {c["id"]: c for c in result["checks"]}


def test_the_rule_check_reads_the_onboarding_rule_by_name_and_lists_nothing(
    tenants: Any,
) -> None:
    from chalicelib.tenants.accounts import FORWARDING_RULE_NAME

    tenant = _connected(tenants)
    pattern = json.dumps({"source": ["aws.ses"]})
    rule = {"Name": FORWARDING_RULE_NAME, "State": "ENABLED", "EventPattern": pattern}
    events = FakeEvents(rule, ["arn:aws:events:us-east-1:1:event-bus/x", PLATFORM.event_bus_arn])
    checks = _checklist(tenant, events=events)
    assert checks["forwarding_rule"]["status"] == "ok", checks["forwarding_rule"]
    # Only what the customer's role grants, on the one rule (no ListRules).
    assert [name for name, _ in events.calls] == ["DescribeRule", "ListTargetsByRule"]
    assert all(kw["EventBusName"] == "default" for _, kw in events.calls)
    assert events.calls[0][1]["Name"] == events.calls[1][1]["Rule"] == FORWARDING_RULE_NAME


@pytest.mark.parametrize(
    ("rule", "targets", "words"),
    [
        (None, [], "no rule named sesami-forward"),
        ({"State": "DISABLED", "EventPattern": '{"source": ["aws.ses"]}'}, None, "DISABLED"),
        ({"State": "ENABLED", "EventPattern": '{"source": ["aws.ec2"]}'}, None, "aws.ses"),
        ({"State": "ENABLED", "EventPattern": "not json"}, None, "aws.ses"),
        ({"State": "ENABLED", "EventPattern": '{"source": ["aws.ses"]}'}, [], "does not target"),
    ],
)
def test_a_rule_that_does_not_forward_to_sesami_fails_with_what_to_do(
    tenants: Any, rule: dict[str, Any] | None, targets: list[str] | None, words: str
) -> None:
    from chalicelib.tenants.accounts import FORWARDING_RULE_NAME

    tenant = _connected(tenants)
    if rule is not None:
        rule = {"Name": FORWARDING_RULE_NAME, **rule}
    events = FakeEvents(rule, [PLATFORM.event_bus_arn] if targets is None else targets)
    check = _checklist(tenant, events=events)["forwarding_rule"]
    assert check["status"] == "failed" and words in check["message"], check
    assert "re-run the customer-onboarding stack" in check["message"]


def test_the_canary_sends_from_a_verified_identity_through_the_configuration_set(
    tenants: Any,
) -> None:
    tenant = _connected(tenants)
    ses = FakeSes()
    check = _checklist(tenant, ses=ses, canary=True)["canary"]
    assert check["status"] == "not_checked" and "canary-1" in check["message"]
    assert ses.sent["FromEmailAddress"] == "sesami-canary@example.com"  # not the pending one
    assert ses.sent["ConfigurationSetName"] == "sesami-events"
    assert TenantModel.get(tenant.tenant_id).canary_message_id == "canary-1"


@pytest.mark.parametrize(
    ("operation", "error", "words"),
    [
        ("ListEmailIdentities", "AccessDeniedException", "lacks a permission"),
        ("SendEmail", "AccessDeniedException", "lacks a permission"),
        ("SendEmail", "MessageRejected", "MessageRejected"),
    ],
)
def test_a_canary_that_raises_fails_its_own_item_not_the_request(
    tenants: Any, operation: str, error: str, words: str
) -> None:
    tenant = _connected(tenants)
    ses = FakeSes({operation: _client_error(error, operation)})
    checks = _checklist(tenant, ses=ses, canary=True)
    assert checks["canary"]["status"] == "failed" and words in checks["canary"]["message"]
    assert checks["forwarding_rule"]["status"] == "ok"  # the others ran as usual


def test_nothing_a_check_raises_escapes_the_checklist(tenants: Any) -> None:
    from chalicelib.core.errors import ServiceUnavailable

    tenant = _connected(tenants)

    class Unavailable(FakeRoleAccess):
        def get(self, tenant_id: str, role_arn: str, external_id: str) -> Any:
            raise ServiceUnavailable("AWS STS is throttling (test)")

    checks = _checklist(tenant, roles=Unavailable())
    assert checks["role_assumable"]["status"] == "failed"
    assert "STS is throttling" in checks["role_assumable"]["message"]
    assert checks["ses_account"]["status"] == "not_checked"

    def no_clients(service: str, creds: Any, region: str) -> Any:
        raise RuntimeError(f"cannot build {service}")

    checks = _checklist(tenant, clients=no_clients, canary=True)
    for item in ("ses_account", "configuration_set", "forwarding_rule", "canary"):
        assert checks[item]["status"] == "failed" and "cannot build" in checks[item]["message"]


def test_where_admins_must_use_mfa_an_admin_without_totp_may_read_but_not_administer(
    tenants: Any,
) -> None:
    service, directory = tenants
    admin = service.membership(caller(username="boss@example.com"))
    calls: list[str] = []
    real = directory.has_totp

    def counted(username: str) -> bool:
        calls.append(username)
        return bool(real(username))

    directory.has_totp = counted
    ruled = service.with_mfa_rule(admin)
    assert ruled.allows(Permission.READ) and ruled.allows(Permission.SEND)
    refusal = ruled.refusal(Permission.ADMIN)
    assert refusal is not None and refusal[1]["code"] == "admin_mfa_required"
    assert service.with_mfa_rule(admin).mfa_missing  # cached: one pool call per few minutes
    assert calls == ["boss@example.com"]
    directory.attributes["boss@example.com"] = {"totp": "yes"}
    fresh = type(service)(directory)  # another instance asks the pool itself
    assert fresh.with_mfa_rule(admin).allows(Permission.ADMIN)


# ---------------------------------------------------------------------------- bounded checklist


def _verifier(tenant: Any, ses: Any, now: list[datetime]) -> tuple[Any, FakeRoleAccess]:
    from chalicelib.tenants.accounts import FORWARDING_RULE_NAME

    pattern = json.dumps({"source": ["aws.ses"], "detail": {}})
    rule = {"Name": FORWARDING_RULE_NAME, "State": "ENABLED", "EventPattern": pattern}
    events = FakeEvents(rule, [PLATFORM.event_bus_arn])
    roles = FakeRoleAccess({tenant.role_arn: tenant.external_id})

    def factory(service: str, creds: Any, region: str) -> Any:
        return ses if service == "sesv2" else events

    verifier = Verifier(PLATFORM, roles, gateway(roles, factory), clock=lambda: now[0])
    return verifier, roles


def test_the_external_id_probe_is_remembered_per_tenant_for_ten_minutes(tenants: Any) -> None:
    from chalicelib.tenants.setup_check import PROBE_TTL

    tenant = _connected(tenants)
    now = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    verifier, roles = _verifier(tenant, FakeSes(), now)

    def probes() -> int:
        return sum(1 for _, external_id in roles.calls if external_id is None)

    checks = {c["id"]: c for c in verifier.run(tenant)["checks"]}
    assert checks["role_requires_external_id"]["status"] == "ok"
    for _ in range(5):
        now[0] += timedelta(minutes=1)
        again = {c["id"]: c for c in verifier.run(tenant)["checks"]}
        assert again["role_requires_external_id"]["status"] == "ok"
        assert "probed at 12:00:00" in again["role_requires_external_id"]["message"]
    assert probes() == 1  # one AssumeRole without the external ID for six checklists
    now[0] += PROBE_TTL
    verifier.run(tenant)
    assert probes() == 2


def test_the_canary_is_sent_at_most_once_per_ten_minutes_per_tenant(tenants: Any) -> None:
    from chalicelib.tenants.setup_check import CANARY_EVERY

    tenant = _connected(tenants)
    tenant.save()  # the role ARN stored, as PUT /account stores it
    now = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    ses = FakeSes()
    verifier, _ = _verifier(tenant, ses, now)
    sends: list[dict[str, Any]] = []
    real_send = ses.send_email

    def send_email(**kw: Any) -> dict[str, Any]:
        sends.append(kw)
        return real_send(**kw)

    ses.send_email = send_email  # type: ignore[method-assign]
    first = {c["id"]: c for c in verifier.run(tenant, canary=True)["checks"]}["canary"]
    assert "canary-1" in first["message"] and len(sends) == 1
    now[0] += timedelta(minutes=3)
    fresh = TenantModel.get(tenant.tenant_id)
    again = {c["id"]: c for c in verifier.run(fresh, canary=True)["checks"]}["canary"]
    assert len(sends) == 1  # not sent again
    assert "at most every 10 minutes" in again["message"] and "12:10:00" in again["message"]

    # Another instance that read the tenant before the first canary cannot send a second one.
    stale = TenantModel.get(tenant.tenant_id)
    stale.canary_sent_at = None
    other, _ = _verifier(stale, ses, now)
    raced = {c["id"]: c for c in other.run(stale, canary=True)["checks"]}["canary"]
    assert len(sends) == 1 and "moments ago" in raced["message"]

    now[0] += CANARY_EVERY
    later = TenantModel.get(tenant.tenant_id)
    verifier.run(later, canary=True)
    assert len(sends) == 2


def test_a_canary_that_could_not_be_sent_may_be_sent_again_at_once(tenants: Any) -> None:
    tenant = _connected(tenants)
    tenant.save()
    now = [datetime(2026, 3, 1, 12, 0, tzinfo=UTC)]
    ses = FakeSes({"SendEmail": _client_error("MessageRejected", "SendEmail")})
    verifier, _ = _verifier(tenant, ses, now)
    failed = {c["id"]: c for c in verifier.run(tenant, canary=True)["checks"]}["canary"]
    assert failed["status"] == "failed"
    assert TenantModel.get(tenant.tenant_id).canary_sent_at is None  # the claim was given back
    ses.fail = {}
    fresh = TenantModel.get(tenant.tenant_id)
    sent = {c["id"]: c for c in verifier.run(fresh, canary=True)["checks"]}["canary"]
    assert "canary-1" in sent["message"]
