"""Tenants: who a signed-up user belongs to, and the external ID SESami issues to each tenant.

- A confirmed Cognito user without a tenant gets one on their first API call: a new tenant ID and
  an external ID of 192 random bits from `secrets` (AWS guidance: the third party issues it; the
  customer never chooses it). The user -> tenant binding is a conditional write keyed by the user's
  `sub`, so concurrent first calls cannot create two tenants.
- The user's `custom:tenant_id` attribute is then set server-side with Cognito's admin API; no app
  client may write it (asserted on the Pulumi program).
- An admin of a tenant can invite another address into it (Cognito AdminCreateUser with the
  tenant attributes set by SESami, never by the invitee).
- Nothing ever changes a tenant's external ID once issued.
- A tenant being deleted (`deletion_started_at`) has no members any more: every call is a 410,
  except where the caller asks for it (`deleting=True`: the deletion's own progress), and no user
  is ever bound to it again.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.core import dynamo
from chalicelib.core.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound
from chalicelib.core.tables import TenantModel, UserModel
from chalicelib.tenants.auth import TENANT_ATTRIBUTE, TENANT_ROLE_ATTRIBUTE

log = logging.getLogger("sesami.tenants")

EXTERNAL_ID_BYTES = 24  # 192 bits


def new_external_id() -> str:
    return "sesami-" + secrets.token_hex(EXTERNAL_ID_BYTES)


@dataclass(frozen=True)
class Caller:
    """Who is calling, from a verified token (never from the request body)."""

    sub: str
    email: str | None
    username: str | None = None  # Cognito username (the admin API's key); defaults to sub
    tenant_id: str | None = None  # custom:tenant_id, set only by SESami's admin calls
    tenant_role: str | None = None


@dataclass(frozen=True)
class Membership:
    tenant: TenantModel
    role: str  # admin | member
    caller: Caller | None = None

    @property
    def actor(self) -> str:
        """Who acts, for histories: the caller's email, else username, else sub."""
        c = self.caller
        return str(c.email or c.username or c.sub) if c else "unknown"


class UserDirectory(Protocol):
    """What SESami needs from the user pool (admin API only)."""

    def set_tenant(self, username: str, tenant_id: str, role: str) -> None: ...

    def invite(self, email: str, tenant_id: str, role: str) -> None: ...

    def delete(self, username: str) -> bool: ...


class CognitoUserDirectory:
    """Production adapter: Cognito's admin API on SESami's user pool."""

    def __init__(self, client: Any, user_pool_id: str) -> None:
        self._client = client
        self._pool = user_pool_id

    def set_tenant(self, username: str, tenant_id: str, role: str) -> None:
        self._client.admin_update_user_attributes(
            UserPoolId=self._pool,
            Username=username,
            UserAttributes=[
                {"Name": TENANT_ATTRIBUTE, "Value": tenant_id},
                {"Name": TENANT_ROLE_ATTRIBUTE, "Value": role},
            ],
        )

    def invite(self, email: str, tenant_id: str, role: str) -> None:
        try:
            self._client.admin_create_user(
                UserPoolId=self._pool,
                Username=email,
                UserAttributes=[
                    {"Name": "email", "Value": email},
                    {"Name": "email_verified", "Value": "true"},
                    {"Name": TENANT_ATTRIBUTE, "Value": tenant_id},
                    {"Name": TENANT_ROLE_ATTRIBUTE, "Value": role},
                ],
                DesiredDeliveryMediums=["EMAIL"],
            )
        except self._client.exceptions.UsernameExistsException:
            raise Conflict(
                f"{email} already has a SESami login; a user belongs to one tenant"
            ) from None

    def delete(self, username: str) -> bool:
        """Remove a user from the pool (their tenant was deleted). False: no such user."""
        try:
            self._client.admin_delete_user(UserPoolId=self._pool, Username=username)
        except self._client.exceptions.UserNotFoundException:
            return False
        return True


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TenantService:
    def __init__(self, directory: UserDirectory, clock: Callable[[], datetime] = _utcnow) -> None:
        self._directory = directory
        self._clock = clock

    def membership(
        self, caller: Caller, *, create: bool = True, deleting: bool = False
    ) -> Membership:
        """The caller's tenant; created on first use for a user who has none. A tenant being
        deleted is a 410 unless `deleting` (its deletion's progress)."""
        user = dynamo.get(UserModel, caller.sub)
        if user is not None:
            tenant = self._usable(self._tenant(user.tenant_id), deleting)
            return Membership(tenant, user.role, caller)
        if caller.tenant_id:  # invited: SESami set the attribute, the user just binds to it
            tenant = self._usable(self._tenant(caller.tenant_id), deleting)
            role = caller.tenant_role if caller.tenant_role in ("admin", "member") else "member"
            if tenant.deletion_started_at is not None:  # never bind anyone to it again
                return Membership(tenant, role, caller)
            bound = self._bind(caller, tenant.tenant_id, role)
            return Membership(self._tenant(bound.tenant_id), bound.role, caller)
        if not create:
            raise NotFound("this user has no SESami tenant yet")
        now = self._clock()
        tenant = TenantModel(
            uuid.uuid4().hex, external_id=new_external_id(), created_at=now, write_shards=1
        )
        tenant.save(condition=TenantModel.tenant_id.does_not_exist())
        bound = self._bind(caller, tenant.tenant_id, "admin")
        if bound.tenant_id != tenant.tenant_id:
            # A concurrent first call bound the user first: drop ours, use theirs.
            tenant.delete()
            return Membership(self._tenant(bound.tenant_id), bound.role, caller)
        try:
            self._directory.set_tenant(caller.username or caller.sub, tenant.tenant_id, "admin")
        except Exception:
            # The binding above is what SESami trusts (every call looks it up); the pool's
            # attribute only mirrors it into the user's next tokens. Failing here would leave a
            # bound user with a 500 on their first call, so the failure is logged, not raised.
            log.exception(
                "could not set the tenant attribute of user %s (tenant %s) in the user pool",
                caller.sub,
                tenant.tenant_id,
            )
        return Membership(tenant, "admin", caller)

    def invite(self, membership: Membership, email: str) -> None:
        if membership.role != "admin":
            raise Forbidden("only an admin of the tenant can invite users")
        from email_validator import EmailNotValidError, validate_email

        try:
            address = validate_email(email.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise InvalidRequest(
                f"email is not an email address: {exc}", details={"field": "email"}
            ) from None
        self._directory.invite(address.lower(), membership.tenant.tenant_id, "member")

    def _bind(self, caller: Caller, tenant_id: str, role: str) -> UserModel:
        """Bind the user to `tenant_id` unless already bound; returns the binding that holds."""
        user = UserModel(
            caller.sub,
            tenant_id=tenant_id,
            email=caller.email,
            role=role,
            created_at=self._clock(),
        )
        if dynamo.write_if(
            "user binding", lambda: user.save(condition=UserModel.sub.does_not_exist())
        ):
            return user
        bound = dynamo.get(UserModel, caller.sub)
        assert bound is not None  # the condition failed because it exists
        return bound

    @staticmethod
    def _usable(tenant: TenantModel, deleting: bool) -> TenantModel:
        if tenant.deletion_started_at is not None and not deleting:
            raise Gone(
                "this tenant is being deleted",
                details={"deletion_started_at": tenant.deletion_started_at.isoformat()},
            )
        return tenant

    @staticmethod
    def _tenant(tenant_id: str) -> TenantModel:
        tenant = dynamo.get(TenantModel, tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant
