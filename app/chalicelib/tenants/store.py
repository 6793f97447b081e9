"""DynamoDB for tenants and their teams: user bindings, invitations, roles and the admin count.

A user's binding (`users` table, by Cognito `sub`) is what every request reads to find the
caller's tenant and role, so removing a user or changing a role takes effect on the next
request. Role changes that touch the admin role update the tenant's `admin_count` in the same
transaction, conditional on it staying at least 1: two admins demoting each other at once
cannot leave a tenant without one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pynamodb.connection import Connection
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.core import dynamo
from chalicelib.core.errors import Conflict
from chalicelib.core.permissions import Role
from chalicelib.core.tables import TenantModel, UserModel

INVITATION_PREFIX = "I#"


def invitation_sub(tenant_id: str, email: str) -> str:
    return f"{INVITATION_PREFIX}{tenant_id}#{email}"


class LastAdmin(Conflict):
    code = "last_admin"


class TeamStore:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    # ------------------------------------------------------------------ reads

    @staticmethod
    def user(sub: str) -> UserModel | None:
        return dynamo.get(UserModel, sub)

    @staticmethod
    def tenant(tenant_id: str) -> TenantModel | None:
        return dynamo.get(TenantModel, tenant_id)

    @staticmethod
    def team(tenant_id: str) -> list[UserModel]:
        """Users (removed ones too) and invitations of the tenant, one query of `by_tenant`."""
        with dynamo.storage("team read"):
            return list(UserModel.by_tenant.query(tenant_id))

    @staticmethod
    def invitation(tenant_id: str, email: str) -> UserModel | None:
        return dynamo.get(UserModel, invitation_sub(tenant_id, email))

    # ------------------------------------------------------------------ writes

    def bind(self, user: UserModel, *, admin: bool) -> UserModel:
        """Bind a new user unless the sub is bound already; returns the binding that holds.
        An admin binding counts in the tenant's admin_count."""
        fresh = UserModel.sub.does_not_exist()
        if admin:

            def write() -> None:
                with TransactWrite(connection=self._connection()) as txn:
                    txn.save(user, condition=fresh)
                    txn.update(
                        TenantModel(user.tenant_id),
                        actions=[TenantModel.admin_count.add(1)],
                        condition=TenantModel.tenant_id.exists(),
                    )

            written = dynamo.write_if("user binding", write)
        else:
            written = dynamo.write_if("user binding", lambda: user.save(condition=fresh))
        if written:
            return user
        bound = self.user(user.sub)
        if bound is None:
            raise Conflict("the tenant of this binding no longer exists")
        return bound

    def change_role(self, user: UserModel, role: Role, by: str) -> UserModel:
        """Set a user's role; the tenant's admin count follows, and never drops below one."""
        was_admin, now_admin = user.role == Role.ADMIN, role == Role.ADMIN
        same = (UserModel.role == user.role) & UserModel.removed_at.does_not_exist()
        actions: list[Action] = [UserModel.role.set(role.value)]
        if was_admin == now_admin:
            if not dynamo.write_if("role change", lambda: user.update(actions, condition=same)):
                raise Conflict("the user changed meanwhile; read the team again")
            return user
        self._with_admin_count(user, actions, same, -1 if was_admin else 1)
        user.role = role.value
        return user

    def remove(self, user: UserModel, by: str) -> None:
        """Keep the binding as a tombstone (removed_at): the user's tokens stop at once."""
        now = self._clock()
        actions: list[Action] = [UserModel.removed_at.set(now), UserModel.removed_by.set(by)]
        live = (UserModel.role == user.role) & UserModel.removed_at.does_not_exist()
        if user.role == Role.ADMIN:
            self._with_admin_count(user, actions, live, -1)
        elif not dynamo.write_if("user removal", lambda: user.update(actions, condition=live)):
            raise Conflict("the user changed meanwhile; read the team again")

    def _with_admin_count(
        self, user: UserModel, actions: list[Action], condition: Condition, delta: int
    ) -> None:
        tenant = TenantModel(user.tenant_id)
        keep_one = TenantModel.admin_count > 1

        def write() -> None:
            with TransactWrite(connection=self._connection()) as txn:
                txn.update(user, actions=actions, condition=condition)
                txn.update(
                    tenant,
                    actions=[TenantModel.admin_count.add(delta)],
                    condition=keep_one if delta < 0 else TenantModel.tenant_id.exists(),
                )

        if not dynamo.write_if("role change", write):
            if delta < 0 and not self._other_admins(user):
                raise LastAdmin(
                    "this is the tenant's last admin: make another user admin first",
                    details={"sub": user.sub},
                )
            raise Conflict("the team changed meanwhile; read it again and retry")

    def _other_admins(self, user: UserModel) -> bool:
        return any(
            u.kind == "user" and u.role == Role.ADMIN and not u.removed_at and u.sub != user.sub
            for u in self.team(user.tenant_id)
        )

    def ensure_admin_count(self, tenant: TenantModel) -> None:
        """Tenants made before the admin count existed: count once, set if still unset."""
        if tenant.admin_count is not None:
            return
        admins = sum(
            1
            for u in self.team(tenant.tenant_id)
            if u.kind == "user" and u.role == Role.ADMIN and not u.removed_at
        )
        unset = TenantModel.admin_count.does_not_exist()
        dynamo.write_if(
            "admin count",
            lambda: tenant.update([TenantModel.admin_count.set(admins)], condition=unset),
        )
        tenant.admin_count = admins

    def touch(self, user: UserModel, now: datetime) -> None:
        """Record the user's activity (the caller keeps this to once every few minutes)."""
        with dynamo.storage("last activity"):
            user.update([UserModel.last_seen_at.set(now)])

    def save_invitation(self, invitation: UserModel) -> None:
        with dynamo.storage("invitation write"):
            invitation.save()

    def set_invitation_status(self, invitation: UserModel, status: str) -> bool:
        pending = UserModel.status == "pending"
        return dynamo.write_if(
            "invitation update",
            lambda: invitation.update([UserModel.status.set(status)], condition=pending),
        )

    @staticmethod
    def _connection() -> Connection:
        meta = UserModel.Meta
        return Connection(region=meta.region, host=meta.host)
