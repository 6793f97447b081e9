"""Tenants and their teams: who a signed-up user belongs to, with which role, and the external ID
SESami issues to each tenant.

- A confirmed Cognito user without a tenant gets one on their first API call: a new tenant ID and
  an external ID of 192 random bits from `secrets` (AWS guidance: the third party issues it; the
  customer never chooses it; invariant 1). The user -> tenant binding is a conditional write
  keyed by the user's `sub`, so concurrent first calls cannot create two tenants.
- The user's `custom:tenant_id` attribute is then set server-side with Cognito's admin API; no app
  client may write it (invariant 4). SESami trusts its own binding, read on every request: a
  removed user's still-valid token is refused on its next call, a role change applies at once.
- An admin invites an address with a role (Cognito AdminCreateUser with the tenant attributes
  set by SESami). The invitee signs in, sees the team and who invited them, and accepts
  explicitly (`POST /invitation/accept`); until then they may do nothing else. Invitations can
  be listed, resent and cancelled.
- Roles: admin, sender, viewer (core/permissions.py). The last admin cannot be removed or
  demoted (tenants/store.py keeps the admin count transactionally).
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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.core.errors import Conflict, Forbidden, Gone, InvalidRequest, NotFound, Unauthorized
from chalicelib.core.permissions import MEMBER_ROLES, Permission, Role, allows, role_of
from chalicelib.core.tables import TenantModel, UserModel
from chalicelib.tenants.store import TeamStore, invitation_sub

log = logging.getLogger("sesami.tenants")

EXTERNAL_ID_BYTES = 24  # 192 bits
# Activity is recorded at most this often per user: one small write, not one per request.
TOUCH_EVERY = timedelta(minutes=5)
MFA_CACHE = timedelta(minutes=5)  # how long an admin's MFA setting is trusted per instance


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
    """A caller's standing in a tenant: a person (caller) or a program (an API key)."""

    tenant: TenantModel
    role: Role
    caller: Caller | None = None
    key_name: str | None = None  # an API key's name, when a program calls
    invited_by: str | None = None  # a pending invitee: who invited them
    # An admin without TOTP MFA where the operator requires it (settings.admin_mfa_required).
    mfa_missing: bool = False

    @property
    def actor(self) -> str:
        """Who acts, for histories: the caller's email, else username, else sub; a key by name."""
        if self.key_name is not None:
            return f"api key {self.key_name}"
        c = self.caller
        return str(c.email or c.username or c.sub) if c else "unknown"

    def allows(self, permission: Permission) -> bool:
        return self.refusal(permission) is None

    def refusal(self, permission: Permission) -> tuple[str, dict[str, Any]] | None:
        role = str(self.role)
        if not allows(self.role, permission):
            if self.role is Role.INVITED:
                return (
                    "accept your invitation first (GET /invitation, POST /invitation/accept)",
                    {"role": role, "code": "invitation_pending"},
                )
            return (
                f"this needs the {permission.value!r} permission, which the {role!r} role "
                "does not have",
                {"role": role},
            )
        if permission is Permission.ADMIN and self.mfa_missing:
            return (
                "admins must turn on an authenticator app (TOTP MFA) before acting as admins "
                "on this SESami; set it up on your Account page",
                {"role": role, "code": "admin_mfa_required"},
            )
        return None


class UserDirectory(Protocol):
    """What SESami needs from the user pool (admin API only)."""

    def set_tenant(self, username: str, tenant_id: str, role: str) -> None: ...

    def invite(self, email: str, tenant_id: str, role: str) -> None: ...

    def resend_invitation(self, email: str) -> None: ...

    def delete_user(self, username: str) -> bool: ...

    def sign_out(self, username: str) -> None: ...

    def has_totp(self, username: str) -> bool: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_role(raw: object, field: str = "role") -> Role:
    if not isinstance(raw, str) or raw not in {r.value for r in MEMBER_ROLES}:
        raise InvalidRequest(
            f"{field} must be one of {', '.join(r.value for r in MEMBER_ROLES)}",
            details={"field": field},
        )
    return Role(raw)


def parse_email(raw: object, field: str = "email") -> str:
    from email_validator import EmailNotValidError, validate_email

    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequest(f"{field} must be an email address", details={"field": field})
    try:
        return str(validate_email(raw.strip(), check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        raise InvalidRequest(
            f"{field} is not an email address: {exc}", details={"field": field}
        ) from None


class TenantService:
    def __init__(
        self,
        directory: UserDirectory,
        clock: Callable[[], datetime] = _utcnow,
        store: TeamStore | None = None,
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._store = store or TeamStore(clock)
        self._mfa_seen: dict[str, tuple[datetime, bool]] = {}

    # ------------------------------------------------------------------ who is calling

    def membership(
        self, caller: Caller, *, create: bool = True, deleting: bool = False
    ) -> Membership:
        """The caller's tenant and role; a tenant is created on first use for a user who has
        none and was invited nowhere. A tenant being deleted is a 410 unless `deleting` (its
        deletion's progress), and nobody is bound to it again."""
        user = self._store.user(caller.sub)
        if user is not None:
            if user.removed_at is not None:
                raise Unauthorized("your access to this SESami team was removed")
            tenant = self._usable(self._tenant(user.tenant_id), deleting)
            self._touch(user)
            return Membership(tenant, role_of(user.role), caller)
        if caller.tenant_id:  # invited: SESami set the attribute; the user accepts explicitly
            self._usable(self._tenant(caller.tenant_id), deleting)
            return self._invitee(caller, caller.tenant_id)
        if not create:
            raise NotFound("this user has no SESami tenant yet")
        return self._new_tenant(caller)

    def _invitee(self, caller: Caller, tenant_id: str) -> Membership:
        tenant = self._tenant(tenant_id)
        # Invited logins are made with the address as their username (tenants/cognito.py).
        address = (caller.email or caller.username or "").lower()
        invitation = self._store.invitation(tenant_id, address)
        if invitation is None or invitation.status != "pending":
            state = invitation.status if invitation is not None else "missing"
            raise Forbidden(
                "there is no pending invitation to this team for you; ask an admin for a new one",
                details={"code": f"invitation_{state}"},
            )
        return Membership(tenant, Role.INVITED, caller, invited_by=invitation.invited_by)

    def _new_tenant(self, caller: Caller) -> Membership:
        now = self._clock()
        tenant = TenantModel(
            uuid.uuid4().hex,
            external_id=new_external_id(),
            created_at=now,
            write_shards=1,
            admin_count=0,
        )
        tenant.save(condition=TenantModel.tenant_id.does_not_exist())
        bound = self._bind(caller, tenant, Role.ADMIN)
        if bound.tenant_id != tenant.tenant_id:
            # A concurrent first call bound the user first: drop ours, use theirs.
            tenant.delete()
            return Membership(self._tenant(bound.tenant_id), role_of(bound.role), caller)
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
        return Membership(self._tenant(tenant.tenant_id), Role.ADMIN, caller)

    def _touch(self, user: UserModel) -> None:
        now = self._clock()
        if user.last_seen_at is None or now - user.last_seen_at >= TOUCH_EVERY:
            try:
                self._store.touch(user, now)
            except Exception:  # activity is a nicety: never fail a request for it
                log.warning("could not record the activity of user %s", user.sub)

    def with_mfa_rule(self, membership: Membership) -> Membership:
        """Where admins must use MFA: an admin person without TOTP loses the admin permission
        (cached per user for a few minutes, so this costs one user-pool call per user per
        few minutes, not one per request)."""
        caller = membership.caller
        if membership.role is not Role.ADMIN or caller is None:
            return membership
        username = caller.username or caller.sub
        now = self._clock()
        held = self._mfa_seen.get(username)
        if held is None or now - held[0] > MFA_CACHE:
            held = (now, self._directory.has_totp(username))
            self._mfa_seen[username] = held
        return membership if held[1] else replace(membership, mfa_missing=True)

    # ------------------------------------------------------------------ invitations

    def invite(
        self, membership: Membership, email: object, role: object = "sender"
    ) -> dict[str, Any]:
        address, chosen = parse_email(email), parse_role(role)
        tid = membership.tenant.tenant_id
        held = self._store.invitation(tid, address)
        if held is not None and held.status == "pending":
            raise Conflict(f"{address} is invited already: resend or cancel that invitation")
        self._directory.invite(address, tid, chosen.value)  # 409 if the address has a login
        invitation = UserModel(
            invitation_sub(tid, address),
            tenant_id=tid,
            email=address,
            role=chosen.value,
            kind="invitation",
            status="pending",
            invited_by=membership.actor,
            created_at=self._clock(),
        )
        self._store.save_invitation(invitation)
        return _invitation_view(invitation)

    def resend(self, membership: Membership, email: str) -> dict[str, Any]:
        invitation = self._pending(membership, email)
        self._directory.resend_invitation(str(invitation.email))
        return _invitation_view(invitation)

    def cancel(self, membership: Membership, email: str) -> dict[str, Any]:
        invitation = self._pending(membership, email)
        if not self._store.set_invitation_status(invitation, "cancelled"):
            raise Conflict("the invitation was accepted or cancelled meanwhile")
        invitation.status = "cancelled"
        self._directory.delete_user(str(invitation.email))
        return _invitation_view(invitation)

    def invitation(self, membership: Membership) -> dict[str, Any]:
        """What a pending invitee is shown before accepting."""
        address = self._address(membership)
        return {
            "tenant_id": membership.tenant.tenant_id,
            "tenant_name": membership.tenant.name,
            "invited_by": membership.invited_by,
            "email": address,
            "role": role_of(self._pending(membership, address).role).value,
        }

    def accept(self, membership: Membership) -> dict[str, Any]:
        caller = membership.caller
        assert caller is not None  # only a person holds the invited role
        invitation = self._pending(membership, self._address(membership))
        role = role_of(invitation.role)
        bound = self._bind(caller, membership.tenant, role)
        if bound.tenant_id != membership.tenant.tenant_id:
            raise Conflict("you already belong to another SESami team")
        self._store.set_invitation_status(invitation, "accepted")
        return {"tenant_id": bound.tenant_id, "role": role.value}

    @staticmethod
    def _address(membership: Membership) -> str:
        caller = membership.caller
        return ((caller.email or caller.username or "") if caller else "").lower()

    def _pending(self, membership: Membership, email: str) -> UserModel:
        address = parse_email(email)
        invitation = self._store.invitation(membership.tenant.tenant_id, address)
        if invitation is None or invitation.status != "pending":
            raise NotFound(f"no pending invitation for {address}")
        return invitation

    # ------------------------------------------------------------------ the team

    def team(self, membership: Membership) -> dict[str, Any]:
        users: list[dict[str, Any]] = []
        invitations: list[dict[str, Any]] = []
        for item in self._store.team(membership.tenant.tenant_id):
            if item.kind == "invitation":
                if item.status == "pending":
                    invitations.append(_invitation_view(item))
            elif item.removed_at is None:
                users.append(_user_view(item))
        return {"users": users, "invitations": invitations}

    def set_role(self, membership: Membership, sub: str, role: object) -> dict[str, Any]:
        chosen = parse_role(role)
        user = self._member(membership, sub)
        self._store.ensure_admin_count(membership.tenant)
        return _user_view(self._store.change_role(user, chosen, membership.actor))

    def remove(self, membership: Membership, sub: str) -> dict[str, Any]:
        user = self._member(membership, sub)
        self._store.ensure_admin_count(membership.tenant)
        self._store.remove(user, membership.actor)
        try:
            self._directory.sign_out(user.username or user.email or user.sub)
        except Exception:  # SESami refuses the tokens already; the pool's sign-out is extra
            log.warning("could not sign out removed user %s in the user pool", user.sub)
        return {"sub": user.sub, "removed": True, "actor": user.email or user.username or user.sub}

    def _member(self, membership: Membership, sub: str) -> UserModel:
        user = self._store.user(sub) if not sub.startswith("I#") else None
        if user is None or user.tenant_id != membership.tenant.tenant_id or user.removed_at:
            raise NotFound(f"no user {sub[:64]!r} in this team")
        return user

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _usable(tenant: TenantModel, deleting: bool) -> TenantModel:
        if tenant.deletion_started_at is not None and not deleting:
            raise Gone(
                "this tenant is being deleted",
                details={"deletion_started_at": tenant.deletion_started_at.isoformat()},
            )
        return tenant

    def _bind(self, caller: Caller, tenant: TenantModel, role: Role) -> UserModel:
        """Bind the user to `tenant` unless already bound; returns the binding that holds."""
        user = UserModel(
            caller.sub,
            tenant_id=tenant.tenant_id,
            email=caller.email,
            username=caller.username,
            role=role.value,
            created_at=self._clock(),
        )
        return self._store.bind(user, admin=role is Role.ADMIN)

    def _tenant(self, tenant_id: str) -> TenantModel:
        tenant = self._store.tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return tenant


def _user_view(user: UserModel) -> dict[str, Any]:
    return {
        "sub": user.sub,
        "email": user.email,
        "role": role_of(user.role).value,
        "created_at": user.created_at.isoformat() if user.created_at else None,
        "last_seen_at": user.last_seen_at.isoformat() if user.last_seen_at else None,
    }


def _invitation_view(item: UserModel) -> dict[str, Any]:
    return {
        "email": item.email,
        "role": role_of(item.role).value,
        "status": item.status,
        "invited_by": item.invited_by,
        "invited_at": item.created_at.isoformat() if item.created_at else None,
    }
