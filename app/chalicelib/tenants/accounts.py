"""Connecting a tenant's AWS account, the onboarding values, and the setup checklist.

Connecting (`PUT /account`) proves three things before anything is stored:
1. the role ARN is well formed, under the `/sesami/` path the onboarding stack uses (SESami's own
   policy may only assume such roles), and its account ID is taken from the ARN;
2. AssumeRole WITH the tenant's external ID succeeds;
3. AssumeRole WITHOUT it fails — otherwise anyone who learns the ARN could make SESami act in that
   account for them (the confused-deputy problem), and the role is refused.
Then the account is bound to the tenant: one DynamoDB transaction puts the binding (conditional:
one tenant per account, a 409 otherwise), records it on the tenant, and removes the binding of
the account the tenant had before. All of it happens or none does, so a failure can never leave
the tenant half-connected or delete a live binding, and the call is safe to retry. Re-connecting
the same account keeps its binding (and its `bound_at`); every replacement or removal of a
binding is conditional on the `bound_at` read, so only the call that read a binding can remove
it. Nothing changes on SESami's bus: its policy is the same for every tenant (ingest/bus.py).

Disconnecting (`DELETE /account`) removes the binding and the tenant's role in one transaction;
the tenant's history stays. Events from the account are then dropped by ingest as unknown.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.core import dynamo, keys
from chalicelib.core.errors import Conflict, InvalidRequest, RoleAccessDenied
from chalicelib.core.tables import AccountModel, EventModel, TenantModel
from chalicelib.events.status import EventType

log = logging.getLogger("sesami.accounts")

ROLE_PATH = "/sesami/"
DEFAULT_ROLE_NAME = "SESamiAccess"
DEFAULT_CONFIGURATION_SET = "sesami-events"
ONBOARDING_PROJECT = "sesami-customer-onboarding"
CANARY_RECIPIENT = "success@simulator.amazonses.com"
_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account_id>\d{12}):role"
    r"(?P<path>/(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})",
    re.ASCII,
)
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_CONFIG_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SES_EVENT_TYPES = {
    "SEND",
    "REJECT",
    "BOUNCE",
    "COMPLAINT",
    "DELIVERY",
    "OPEN",
    "CLICK",
    "RENDERING_FAILURE",
    "DELIVERY_DELAY",
    "SUBSCRIPTION",
}
assert len(SES_EVENT_TYPES) == len(EventType)


@dataclass(frozen=True)
class RoleArn:
    arn: str
    partition: str
    account_id: str
    path: str
    name: str

    @classmethod
    def parse(cls, raw: object) -> RoleArn:
        if not isinstance(raw, str):
            raise InvalidRequest("role_arn must be a string", details={"field": "role_arn"})
        match = _ROLE_ARN.fullmatch(raw.strip())
        if match is None:
            raise InvalidRequest(
                "role_arn is not an IAM role ARN "
                "(arn:aws:iam::<12-digit account>:role/<path/>name)",
                details={"field": "role_arn"},
            )
        role = cls(raw.strip(), **match.groupdict())
        if role.path != ROLE_PATH:
            raise InvalidRequest(
                f"the role must be under the path {ROLE_PATH} (as the customer-onboarding stack "
                f"creates it, e.g. arn:aws:iam::{role.account_id}:role{ROLE_PATH}"
                f"{DEFAULT_ROLE_NAME}): "
                "SESami's own permissions only allow it to assume such roles",
                details={"field": "role_arn"},
            )
        return role


class RoleAccess(Protocol):
    """The credential provider (chalicelib.tenant_aws.credentials.TenantCredentials)."""

    def get(self, tenant_id: str, role_arn: str, external_id: str) -> Any: ...

    def assume_without_external_id(self, role_arn: str) -> bool: ...


@dataclass(frozen=True)
class PlatformInfo:
    """SESami's side of the link, from settings."""

    account_id: str
    event_bus_arn: str
    region: str
    # Local stack only: STS emulators ignore ExternalId, so check 3 cannot pass there.
    skip_external_id_refusal_check: bool = False


CONNECT_ATTEMPTS = 3


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AccountService:
    def __init__(
        self,
        platform: PlatformInfo,
        roles: RoleAccess,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._platform, self._roles, self._clock = platform, roles, clock
        if platform.skip_external_id_refusal_check:
            log.warning(
                "SESAMI_INSECURE_SKIP_EXTERNAL_ID_CHECK is on: roles are NOT checked to refuse "
                "AssumeRole without the external ID. Never use this outside the local stack."
            )

    # ------------------------------------------------------------------ PUT /account

    def connect(
        self,
        tenant: TenantModel,
        role_arn: object,
        region: object = None,
        configuration_set: object = None,
    ) -> TenantModel:
        role = RoleArn.parse(role_arn)
        region = self._region(region)
        config_set = self._configuration_set(configuration_set)
        if role.account_id == self._platform.account_id:
            raise InvalidRequest(
                "that role is in SESami's own account", details={"field": "role_arn"}
            )
        self._roles.get(tenant.tenant_id, role.arn, tenant.external_id)  # raises RoleAccessDenied
        if self._platform.skip_external_id_refusal_check:
            log.warning("skipped the external-ID refusal check for %s (local stack)", role.arn)
        elif self._roles.assume_without_external_id(role.arn):
            raise RoleAccessDenied(
                f"SESami could assume {role.arn} WITHOUT the external ID. Anyone who learns this "
                "role ARN could then make SESami act in your account on their behalf (the "
                "confused-deputy problem). Add the condition "
                '"StringEquals": {"sts:ExternalId": "<your external ID>"} to the role\'s trust '
                "policy (the customer-onboarding stack does this), then connect again.",
                details={"role_arn": role.arn},
            )
        for _attempt in range(CONNECT_ATTEMPTS):
            if self._bind(tenant, role, region, config_set):
                return _reloaded(tenant)
            tenant = _reloaded(tenant)
        raise Conflict(
            "the tenant's AWS account was changed by another request meanwhile; try again",
            details={"retryable": True},
        )

    def _bind(self, tenant: TenantModel, role: RoleArn, region: str, config_set: str) -> bool:
        """One transaction: the binding, the tenant, the previous account's binding. False when
        a concurrent change refused it (the caller re-reads and tries again)."""
        tid, new, previous = tenant.tenant_id, role.account_id, tenant.account_id
        wanted: list[tuple[Any, str, str | None]] = [(AccountModel, new, None)]
        if previous and previous != new:
            wanted.append((AccountModel, previous, None))
        existing, *rest = dynamo.read_many("account bindings read", wanted)
        old = rest[0] if rest else None
        if existing is not None and existing.tenant_id != tid:
            raise Conflict(
                f"AWS account {new} is already connected to another SESami tenant."
                " An account can belong to one tenant only; disconnect it there first.",
                details={"account_id": new},
            )
        now = self._clock()

        def build(txn: Any) -> None:
            if existing is None:
                binding = AccountModel(new, tenant_id=tid, role_arn=role.arn, bound_at=now)
                txn.save(binding, condition=AccountModel.account_id.does_not_exist())
            else:  # ours already: the same binding, the same bound_at
                txn.update(
                    AccountModel(new),
                    actions=[AccountModel.role_arn.set(role.arn)],
                    condition=_binding_is(existing),
                )
            txn.update(
                TenantModel(tid),
                actions=[
                    TenantModel.account_id.set(new),
                    TenantModel.role_arn.set(role.arn),
                    TenantModel.region.set(region),
                    TenantModel.configuration_set.set(config_set),
                ],
                condition=_tenant_account_is(previous),
            )
            if old is not None and old.tenant_id == tid:
                txn.delete(AccountModel(previous), condition=_binding_is(old))

        return dynamo.transact("account binding", build) is None

    # ------------------------------------------------------------------ DELETE /account

    def disconnect(self, tenant: TenantModel) -> tuple[TenantModel, str | None]:
        """Remove the tenant's binding and role, keep its history. Returns the tenant and the
        account it was connected to (None: it had none; disconnecting twice is harmless)."""
        for _attempt in range(CONNECT_ATTEMPTS):
            account = tenant.account_id
            if account is None:
                return tenant, None
            if self._unbind(tenant, account):
                return _reloaded(tenant), account
            tenant = _reloaded(tenant)
        raise Conflict(
            "the tenant's AWS account was changed by another request meanwhile; try again",
            details={"retryable": True},
        )

    @staticmethod
    def _unbind(tenant: TenantModel, account: str) -> bool:
        tid = tenant.tenant_id
        binding = dynamo.get(AccountModel, account)

        def build(txn: Any) -> None:
            if binding is not None and binding.tenant_id == tid:
                txn.delete(AccountModel(account), condition=_binding_is(binding))
            txn.update(
                TenantModel(tid),
                actions=[TenantModel.account_id.remove(), TenantModel.role_arn.remove()],
                condition=_tenant_account_is(account),
            )

        return dynamo.transact("account unbinding", build) is None

    def _region(self, region: object) -> str:
        if region is None or region == "":
            return self._platform.region
        if not isinstance(region, str) or not _REGION.match(region):
            raise InvalidRequest("region is not an AWS region name", details={"field": "region"})
        return region

    @staticmethod
    def _configuration_set(value: object) -> str:
        if value is None or value == "":
            return DEFAULT_CONFIGURATION_SET
        if not isinstance(value, str) or not _CONFIG_SET.match(value):
            raise InvalidRequest(
                "configuration_set must be 1-64 letters, digits, '-' or '_'",
                details={"field": "configuration_set"},
            )
        return value

    # ------------------------------------------------------------------ GET /account/onboarding

    def onboarding(self, tenant: TenantModel) -> dict[str, Any]:
        p = self._platform
        region = tenant.region or p.region
        config_set = tenant.configuration_set or DEFAULT_CONFIGURATION_SET
        ns = ONBOARDING_PROJECT
        return {
            "sesami_account_id": p.account_id,
            "event_bus_arn": p.event_bus_arn,
            "external_id": tenant.external_id,
            "configuration_set": config_set,
            "region": region,
            "role_name": DEFAULT_ROLE_NAME,
            "role_arn_pattern": (
                f"arn:aws:iam::<your account ID>:role{ROLE_PATH}{DEFAULT_ROLE_NAME}"
            ),
            "commands": [
                "cd customer-onboarding",
                "pulumi stack init sesami",
                f"pulumi config set aws:region {region}",
                f"pulumi config set {ns}:sesamiAccountId {p.account_id}",
                f"pulumi config set {ns}:sesamiEventBusArn {p.event_bus_arn}",
                f"pulumi config set --secret {ns}:externalId {tenant.external_id}",
                f"pulumi config set {ns}:configurationSetName {config_set}",
                "pulumi up",
            ],
            "then": 'PUT /account with {"role_arn": <the stack\'s roleArn output>}',
        }


def _binding_is(binding: AccountModel) -> Any:
    """The binding as it was read: same tenant, same version."""
    return (AccountModel.tenant_id == binding.tenant_id) & (
        AccountModel.bound_at == binding.bound_at
    )


def _tenant_account_is(account_id: str | None) -> Any:
    """The tenant exists, is not being deleted, and is still connected to `account_id`."""
    exists = TenantModel.tenant_id.exists() & TenantModel.deletion_started_at.does_not_exist()
    if account_id is None:
        return exists & TenantModel.account_id.does_not_exist()
    return exists & (TenantModel.account_id == account_id)


def _reloaded(tenant: TenantModel) -> TenantModel:
    fresh = dynamo.get(TenantModel, tenant.tenant_id)
    if fresh is None:
        raise Conflict("the tenant no longer exists")
    return fresh


# ---------------------------------------------------------------------- GET /verify-sts


@dataclass
class Check:
    id: str
    title: str
    status: str = "not_checked"  # ok | failed | not_checked
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def ok(self, message: str, **details: Any) -> Check:
        self.status, self.message, self.details = "ok", message, details
        return self

    def failed(self, message: str, **details: Any) -> Check:
        self.status, self.message, self.details = "failed", message, details
        return self

    def skipped(self, why: str) -> Check:
        self.status, self.message = "not_checked", why
        return self


class TenantAccounts(Protocol):
    """The gateway into tenants' accounts (chalicelib.tenant_aws.gateway.Gateway)."""

    def for_tenant(self, tenant: TenantModel) -> Any: ...


class Verifier:
    """Runs the setup checklist. Every item is `ok`, `failed` (with what to do) or
    `not_checked` (with why); nothing unverified is ever reported `ok`."""

    def __init__(
        self,
        platform: PlatformInfo,
        roles: RoleAccess,
        accounts: TenantAccounts,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._p, self._roles, self._accounts, self._clock = platform, roles, accounts, clock

    def run(self, tenant: TenantModel, *, canary: bool = False) -> dict[str, Any]:
        checks = [
            Check("role_assumable", "SESami can assume the role with your external ID"),
            Check("role_requires_external_id", "The role refuses SESami without the external ID"),
            Check("ses_account", "SES production access and sending quota"),
            Check(
                "configuration_set",
                "The configuration set publishes all ten event types to EventBridge",
            ),
            Check(
                "forwarding_rule", "A rule on your default bus forwards aws.ses events to SESami"
            ),
            Check("last_event", "Events from your account reach SESami"),
            Check("canary", "A test email to the SES mailbox simulator is delivered and tracked"),
        ]
        by_id = {c.id: c for c in checks}
        if not tenant.role_arn:
            for c in checks:
                c.skipped("no AWS account is connected yet: PUT /account first")
            return self._result(checks)
        tenant_aws = self._accounts.for_tenant(tenant)
        creds = None
        try:
            creds = tenant_aws.credentials()
            by_id["role_assumable"].ok(f"assumed {tenant.role_arn}")
        except RoleAccessDenied as exc:
            by_id["role_assumable"].failed(exc.message)
        self._check_refusal(by_id["role_requires_external_id"], tenant.role_arn)
        self._check_last_event(by_id["last_event"], tenant)
        if creds is None:
            for cid in ("ses_account", "configuration_set", "forwarding_rule", "canary"):
                by_id[cid].skipped("needs the role, which SESami could not assume")
            return self._result(checks)
        config_set = tenant.configuration_set or DEFAULT_CONFIGURATION_SET
        sesv2 = tenant_aws.client("sesv2")
        self._guard(by_id["ses_account"], lambda c: self._check_account(c, sesv2))
        self._guard(
            by_id["configuration_set"], lambda c: self._check_config_set(c, sesv2, config_set)
        )
        events = tenant_aws.client("events")
        self._guard(by_id["forwarding_rule"], lambda c: self._check_rule(c, events))
        self._check_canary(by_id["canary"], tenant, sesv2, config_set, send=canary)
        return self._result(checks)

    @staticmethod
    def _result(checks: Iterable[Check]) -> dict[str, Any]:
        items = [c.__dict__ for c in checks]
        return {
            "ok": all(c["status"] == "ok" for c in items),
            "checks": items,
        }

    @staticmethod
    def _guard(check: Check, run: Callable[[Check], object]) -> None:
        """Run one check; an API the endpoint does not implement is `not_checked`, an access
        error is `failed` with the missing permission."""
        try:
            run(check)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            # An emulator answers an API it lacks with these (moto: a bare HTTP 404 page).
            if code in ("NotImplemented", "InvalidAction", "UnknownOperation", "404") or (
                "not yet implemented" in str(exc) or "NotImplementedError" in type(exc).__name__
            ):
                check.skipped(
                    f"the AWS endpoint does not implement this API ({code or 'not implemented'})"
                )
            elif code in ("AccessDenied", "AccessDeniedException"):
                check.failed(
                    f"the role lacks a permission this check needs ({exc}); re-run the "
                    "customer-onboarding stack, which grants it"
                )
            else:
                check.failed(f"{type(exc).__name__}: {exc}")

    def _check_refusal(self, check: Check, role_arn: str) -> None:
        if self._p.skip_external_id_refusal_check:
            check.skipped(
                "disabled on this stack (SESAMI_INSECURE_SKIP_EXTERNAL_ID_CHECK): the local STS "
                "emulator ignores external IDs"
            )
            return
        try:
            unsafe = self._roles.assume_without_external_id(role_arn)
        except Exception as exc:
            check.skipped(f"could not run the check: {exc}")
            return
        if unsafe:
            check.failed(
                "the role can be assumed without the external ID (confused-deputy risk): add the "
                "sts:ExternalId condition to its trust policy"
            )
        else:
            check.ok("AssumeRole without the external ID was refused")

    @staticmethod
    def _check_account(check: Check, sesv2: Any) -> None:
        account = sesv2.get_account()
        quota = account.get("SendQuota", {})
        details = {
            "production_access": bool(account.get("ProductionAccessEnabled")),
            "max_24_hour_send": quota.get("Max24HourSend"),
            "max_send_rate": quota.get("MaxSendRate"),
            "sent_last_24_hours": quota.get("SentLast24Hours"),
            "sending_enabled": account.get("SendingEnabled"),
        }
        if not account.get("SendingEnabled", True):
            check.failed("sending is disabled for this SES account", **details)
        elif not account.get("ProductionAccessEnabled"):
            check.failed(
                "the SES account is in the sandbox: it can only send to verified addresses. "
                "Request production access in the SES console.",
                **details,
            )
        else:
            check.ok("production access, sending enabled", **details)

    @staticmethod
    def _check_config_set(check: Check, sesv2: Any, name: str) -> None:
        sesv2.get_configuration_set(ConfigurationSetName=name)
        destinations = sesv2.get_configuration_set_event_destinations(
            ConfigurationSetName=name
        ).get("EventDestinations", [])
        published: set[str] = set()
        for d in destinations:
            if d.get("Enabled") and d.get("EventBridgeDestination"):
                published |= set(d.get("MatchingEventTypes", []))
        missing = sorted(SES_EVENT_TYPES - published)
        if missing:
            check.failed(
                f"configuration set {name} does not publish {', '.join(missing)} to EventBridge; "
                "re-run the customer-onboarding stack",
                missing=missing,
            )
        else:
            check.ok(f"configuration set {name} publishes all ten event types to EventBridge")

    def _check_rule(self, check: Check, events: Any) -> None:
        bus = self._p.event_bus_arn
        for rule in events.list_rules(EventBusName="default").get("Rules", []):
            pattern = rule.get("EventPattern") or ""
            if "aws.ses" not in pattern or rule.get("State") != "ENABLED":
                continue
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="default")
            if any(t.get("Arn") == bus for t in targets.get("Targets", [])):
                check.ok(f"rule {rule['Name']} forwards aws.ses events to {bus}")
                return
        check.failed(
            f"no enabled rule on your default event bus forwards aws.ses events to {bus}; "
            "re-run the customer-onboarding stack"
        )

    def _check_last_event(self, check: Check, tenant: TenantModel) -> None:
        newest: str | None = None
        for shard in range(int(tenant.write_shards or 1)):
            for row in EventModel.query(
                keys.events_pk(tenant.tenant_id, shard), scan_index_forward=False, limit=1
            ):
                newest = max(newest or "", row.occurred_at)
        if newest:
            check.ok(f"last event received at {newest}", last_event_at=newest)
        else:
            check.failed(
                "no SES event has reached SESami from this account yet: send a test email "
                "(or run this checklist with canary=true) and check again"
            )

    def _check_canary(
        self, check: Check, tenant: TenantModel, sesv2: Any, config_set: str, *, send: bool
    ) -> None:
        from chalicelib.core.tables import AGGREGATE_SK, MessageModel

        if tenant.canary_message_id and not send:
            try:
                agg = MessageModel.get(
                    keys.message_pk(tenant.tenant_id, tenant.canary_message_id), AGGREGATE_SK
                )
                check.ok(
                    f"canary {tenant.canary_message_id} reached status {agg.status}",
                    message_id=tenant.canary_message_id,
                    status=agg.status,
                )
            except MessageModel.DoesNotExist:
                check.failed(
                    f"canary {tenant.canary_message_id} sent at {tenant.canary_sent_at} has not "
                    "produced an event yet: check the configuration set and the forwarding rule",
                    message_id=tenant.canary_message_id,
                )
            return
        if not send:
            check.skipped("optional: run with canary=true to send a test email")
            return
        source = None
        identities = sesv2.list_email_identities().get("EmailIdentities", [])
        for identity in identities:
            if identity.get("SendingEnabled", True):
                name = identity["IdentityName"]
                source = name if "@" in name else f"sesami-canary@{name}"
                break
        if source is None:
            check.failed("no verified sending identity in this SES account to send the canary from")
            return
        sent = sesv2.send_email(
            FromEmailAddress=source,
            Destination={"ToAddresses": [CANARY_RECIPIENT]},
            Content={
                "Simple": {
                    "Subject": {"Data": "SESami canary"},
                    "Body": {"Text": {"Data": "SESami setup check."}},
                }
            },
            ConfigurationSetName=config_set,
            EmailTags=[{"Name": "sesami", "Value": "canary"}],
        )
        now = self._clock()
        tenant.update(
            actions=[
                TenantModel.canary_message_id.set(sent["MessageId"]),
                TenantModel.canary_sent_at.set(now),
            ]
        )
        check.skipped(
            f"canary {sent['MessageId']} sent to {CANARY_RECIPIENT}; run the checklist again in "
            "a minute to see its Delivery"
        ).details = {"message_id": sent["MessageId"]}
