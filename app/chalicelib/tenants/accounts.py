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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.core import dynamo
from chalicelib.core.errors import Conflict, InvalidRequest, RoleAccessDenied
from chalicelib.core.settings import DEFAULT_CONFIGURATION_SET
from chalicelib.core.tables import AccountModel, TenantModel
from chalicelib.events.status import EventType

log = logging.getLogger("sesami.accounts")

ROLE_PATH = "/sesami/"
DEFAULT_ROLE_NAME = "SESamiAccess"
ONBOARDING_PROJECT = "sesami-customer-onboarding"
# The onboarding stack's forwarding rule on the customer's default bus (customer-onboarding/
# policies.py FORWARDING_RULE_NAME): the checklist reads it by name, which is all the customer's
# role allows (DescribeRule and ListTargetsByRule on this rule, no ListRules).
FORWARDING_RULE_NAME = "sesami-forward"
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
    # SESami's roles that assume customers' roles: the onboarding stack's trust policy names them.
    role_arns: tuple[str, ...] = ()
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
            "sesami_role_arns": list(p.role_arns),
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
                *(
                    f"pulumi config set --path '{ns}:sesamiRoleArns[{i}]' {arn}"
                    for i, arn in enumerate(p.role_arns)
                ),
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
