"""Roles, API-key scopes and the permissions they grant (invariant 9).

Every private route declares the one permission it needs (`Api.route(..., permission=...)`,
next to its OpenAPI declaration); `core/api.py` checks it for every request, and a denied call
is a 403 naming the permission. People have a role, programs an API key with a scope; both map
to the same permissions:

    permission          viewer  sender  admin   key scope that has it
    read                yes     yes     yes     read, send, admin
    send                -       yes     yes     send, admin
    suppression:add     -       yes     yes     send, admin
    admin               -       -       yes     admin
    invitation:accept   (only a person invited who has not accepted yet: role `invited`)

`admin` covers what changes who can act and where: the AWS account binding, users and
invitations, API keys, webhooks, removing suppressions (mailing a complainer again), the SES
suppression sync, the setup canary, deleting data.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    READ = "read"
    SEND = "send"
    SUPPRESS = "suppression:add"
    ADMIN = "admin"
    JOIN = "invitation:accept"


class Role(StrEnum):
    ADMIN = "admin"
    SENDER = "sender"
    VIEWER = "viewer"
    INVITED = "invited"  # a pending invitee: may see and accept the invitation, nothing else


MEMBER_ROLES = (Role.ADMIN, Role.SENDER, Role.VIEWER)


GRANTS: dict[str, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.SENDER: frozenset({Permission.READ, Permission.SEND, Permission.SUPPRESS}),
    Role.ADMIN: frozenset(Permission) - {Permission.JOIN},
    Role.INVITED: frozenset({Permission.JOIN}),
}
# API-key scopes, named for what a program does with them; each grants what the role does.
SCOPES: dict[str, Role] = {"read": Role.VIEWER, "send": Role.SENDER, "admin": Role.ADMIN}
# Roles stored before roles had names of their own: a "member" could send and read.
LEGACY: dict[str, Role] = {"member": Role.SENDER}


def role_of(stored: str | None) -> Role:
    """The role a stored value means; an unknown value grants the least (viewer)."""
    if stored in LEGACY:
        return LEGACY[stored]
    try:
        return Role(stored or "")
    except ValueError:
        return Role.VIEWER


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def holders(permission: Permission) -> tuple[list[str], list[str]]:
    """(roles, API-key scopes) that have `permission`, for the OpenAPI document."""
    roles = [r.value for r in Role if allows(r, permission)]
    scopes = [s for s, r in SCOPES.items() if allows(r, permission)]
    return roles, scopes
