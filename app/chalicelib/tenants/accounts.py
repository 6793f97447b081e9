"""Connecting a tenant's AWS account, the onboarding values, and the setup checklist.

Connecting (`PUT /account`) proves three things before anything is stored:
1. the role ARN is well formed, under the `/sesami/` path the onboarding stack uses (SESami's own
   policy may only assume such roles), and its account ID is taken from the ARN;
2. AssumeRole WITH the tenant's external ID succeeds;
3. AssumeRole WITHOUT it fails — otherwise anyone who learns the ARN could make SESami act in that
   account for them (the confused-deputy problem), and the role is refused.
Then the account is bound to the tenant with a conditional write (one tenant per account: 409
otherwise) and allowed to put events on SESami's bus (one policy statement per tenant).
"""

from __future__ import annotations

import contextlib
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


class BusPolicy(Protocol):
    def allow(self, account_id: str, statement_id: str) -> None: ...

    def revoke(self, statement_id: str) -> None: ...


class EventBridgeBusPolicy:
    """SESami's event bus resource policy: one `events:PutEvents` statement per tenant.
    The policy document is capped at 10,240 characters (about 50 accounts; see README)."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client, self._bus = client, bus_name

    def allow(self, account_id: str, statement_id: str) -> None:
        self._client.put_permission(
            EventBusName=self._bus,
            Action="events:PutEvents",
            Principal=account_id,
            StatementId=statement_id,
        )

    def revoke(self, statement_id: str) -> None:
        with contextlib.suppress(self._client.exceptions.ResourceNotFoundException):
            self._client.remove_permission(EventBusName=self._bus, StatementId=statement_id)


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


def statement_id(tenant_id: str) -> str:
    return f"sesami-tenant-{tenant_id}"[:64]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AccountService:
    def __init__(
        self,
        platform: PlatformInfo,
        roles: RoleAccess,
        bus: BusPolicy,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._platform, self._roles, self._bus, self._clock = platform, roles, bus, clock
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
        self._bind(tenant, role)
        previous = tenant.account_id
        try:
            self._bus.allow(role.account_id, statement_id(tenant.tenant_id))
        except Exception:
            self._unbind(tenant.tenant_id, role.account_id)
            raise
        if previous and previous != role.account_id:
            self._unbind(tenant.tenant_id, previous)
        tenant.update(
            actions=[
                TenantModel.account_id.set(role.account_id),
                TenantModel.role_arn.set(role.arn),
                TenantModel.region.set(region),
                TenantModel.configuration_set.set(config_set),
            ]
        )
        return tenant

    def _bind(self, tenant: TenantModel, role: RoleArn) -> None:
        binding = AccountModel(
            role.account_id, tenant_id=tenant.tenant_id, role_arn=role.arn, bound_at=self._clock()
        )
        free_or_ours = AccountModel.account_id.does_not_exist() | (
            AccountModel.tenant_id == tenant.tenant_id
        )
        if not dynamo.write_if("account binding", lambda: binding.save(condition=free_or_ours)):
            raise Conflict(
                f"AWS account {role.account_id} is already connected to another SESami tenant."
                " An account can belong to one tenant only; disconnect it there first.",
                details={"account_id": role.account_id},
            )

    @staticmethod
    def _unbind(tenant_id: str, account_id: str) -> None:
        ours = AccountModel.tenant_id == tenant_id
        dynamo.write_if(
            "account unbinding", lambda: AccountModel(account_id).delete(condition=ours)
        )

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
