"""The tenant's AWS account: connect it, what to run to onboard it, and the setup checklist."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from chalicelib.core import wiring
from chalicelib.core.api import Api, Param, RequestContext
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.permissions import Permission
from chalicelib.tenants.key_routes import KEY

if TYPE_CHECKING:
    from chalicelib.core.tables import TenantModel

api = Api(__name__, wiring.authenticate)

_STR = {"type": "string"}
_NULLABLE_STR = {"type": "string", "nullable": True}
SETTINGS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "overview_rate": {
            "type": "string",
            "enum": ["human", "raw"],
            "description": "which open and click rates the overview leads with: those of "
            "people only (human, the default) or of every open and click (raw)",
        },
        "indexed_tags": {
            "type": "array",
            "maxItems": 3,
            "items": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,256}$"},
            "description": "up to three tag names whose events get a tag view: GET /events?tag= "
            "on them reads only the tagged events (from when they were named; earlier ranges and "
            "other tags read the time view, filtered)",
        },
    },
}
ACCOUNT_PROPERTIES: dict[str, Any] = {
    "tenant_id": _STR,
    "external_id": _STR,
    "account_id": _NULLABLE_STR,
    "role_arn": _NULLABLE_STR,
    "region": _NULLABLE_STR,
    "configuration_set": _NULLABLE_STR,
    "connected": {"type": "boolean"},
    "settings": SETTINGS,
}
ACCOUNT = {"type": "object", "properties": ACCOUNT_PROPERTIES}
CONNECT = {
    "type": "object",
    "required": ["role_arn"],
    "properties": {
        "role_arn": {**_STR, "example": "arn:aws:iam::111122223333:role/sesami/SESamiAccess"},
        "region": _STR,
        "configuration_set": _STR,
    },
}
CHECKLIST = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": _STR,
                    "title": _STR,
                    "status": {"type": "string", "enum": ["ok", "failed", "not_checked"]},
                    "message": _STR,
                    "details": {"type": "object"},
                },
            },
        },
    },
}


def _account_view(tenant: TenantModel) -> dict[str, Any]:
    from chalicelib.tenants import preferences  # the models load on the first request

    return {
        "tenant_id": tenant.tenant_id,
        "external_id": tenant.external_id,
        "account_id": tenant.account_id,
        "role_arn": tenant.role_arn,
        "region": tenant.region,
        "configuration_set": tenant.configuration_set,
        "connected": tenant.account_id is not None,
        "settings": preferences.settings_of(tenant),
    }


@api.route(
    "/account",
    methods=["GET"],
    summary="The tenant and its AWS account, and the caller's role and permissions",
    response={
        "type": "object",
        "properties": {
            **ACCOUNT_PROPERTIES,
            "role": {"type": "string", "enum": ["admin", "sender", "viewer"]},
            "permissions": {"type": "array", "items": _STR},
        },
    },
    permission=Permission.READ,
)
def get_account(ctx: RequestContext) -> dict[str, Any]:
    # The caller's own role and permissions, so that the dashboard hides what they cannot do
    # (the server still refuses it: core/api.py).
    mine = [p.value for p in Permission if ctx.membership.allows(p)]
    return {**_account_view(ctx.tenant), "role": str(ctx.membership.role), "permissions": mine}


@api.route(
    "/account",
    methods=["PUT"],
    permission=Permission.ADMIN,
    summary="Connect the tenant's AWS account through the role the onboarding stack created",
    body=CONNECT,
    response=ACCOUNT,
    errors=(400, 409, 422),
)
def put_account(ctx: RequestContext) -> dict[str, Any]:
    body = ctx.json_body()
    tenant = wiring.account_service().connect(
        ctx.tenant, body.get("role_arn"), body.get("region"), body.get("configuration_set")
    )
    return _account_view(tenant)


@api.route(
    "/account/settings",
    methods=["PUT"],
    summary="The tenant's settings: which rates the overview leads with, which tags are indexed",
    body=SETTINGS,
    response=SETTINGS,
    errors=(400,),
    permission=Permission.ADMIN,
)
def put_settings(ctx: RequestContext) -> dict[str, Any]:
    from chalicelib.tenants import preferences

    return preferences.update(ctx.tenant, ctx.json_body())


@api.route(
    "/account/onboarding",
    methods=["GET"],
    permission=Permission.ADMIN,
    summary="Values and commands to run the customer-onboarding stack",
    response={"type": "object"},
)
def get_onboarding(ctx: RequestContext) -> dict[str, Any]:
    return wiring.account_service().onboarding(ctx.tenant)


_ROLE = {"type": "string", "enum": ["admin", "sender", "viewer"]}
USER = {
    "type": "object",
    "properties": {
        "sub": _STR,
        "email": _NULLABLE_STR,
        "role": _ROLE,
        "created_at": _NULLABLE_STR,
        "last_seen_at": {**_NULLABLE_STR, "description": "last request, to within 5 minutes"},
    },
}
INVITATION_PROPERTIES: dict[str, Any] = {
    "email": _STR,
    "role": _ROLE,
    "status": {"type": "string", "enum": ["pending", "accepted", "cancelled"]},
    "invited_by": _NULLABLE_STR,
    "invited_at": _NULLABLE_STR,
}
INVITATION = {"type": "object", "properties": INVITATION_PROPERTIES}


@api.route(
    "/account/onboarding/stack",
    methods=["GET"],
    permission=Permission.ADMIN,
    summary="A ready-to-run customer-onboarding stack: the Pulumi program with this tenant's "
    "values filled in (unzip, pulumi stack init sesami, pulumi up)",
    response={
        "type": "object",
        "properties": {
            "filename": _STR,
            "content_type": _STR,
            "content_base64": {**_STR, "format": "byte"},
            "sha256": _STR,
            "bytes": {"type": "integer"},
            "steps": {"type": "array", "items": _STR},
        },
    },
    errors=(503,),
)
def get_onboarding_stack(ctx: RequestContext) -> dict[str, Any]:
    from chalicelib.core.errors import ServiceUnavailable
    from chalicelib.core.settings import DEFAULT_CONFIGURATION_SET
    from chalicelib.tenants import onboarding_bundle

    platform, tenant = wiring.platform(), ctx.tenant
    try:
        return onboarding_bundle.for_tenant(
            region=tenant.region or platform.region,
            sesami_account_id=platform.account_id,
            sesami_event_bus_arn=platform.event_bus_arn,
            sesami_role_arns=tuple(platform.role_arns),
            external_id=tenant.external_id,
            configuration_set=tenant.configuration_set or DEFAULT_CONFIGURATION_SET,
        )
    except FileNotFoundError as exc:  # the package was built without the program copy
        raise ServiceUnavailable(
            "the onboarding program is missing from this deployment (run `make install` "
            "before `make package`)"
        ) from exc


@api.route(
    "/account/users",
    methods=["GET"],
    permission=Permission.READ,
    summary="The team: users with their role and last activity, and pending invitations",
    response={
        "type": "object",
        "properties": {
            "users": {"type": "array", "items": USER},
            "invitations": {"type": "array", "items": INVITATION},
        },
    },
)
def list_users(ctx: RequestContext) -> dict[str, Any]:
    return wiring.tenant_service().team(ctx.membership)


@api.route(
    "/account/users",
    methods=["POST"],
    permission=Permission.ADMIN,
    summary="Invite a colleague into the tenant with a role (default sender)",
    status=201,
    body={
        "type": "object",
        "required": ["email"],
        "properties": {"email": _STR, "role": _ROLE},
    },
    response={"type": "object", "properties": {**INVITATION_PROPERTIES, "invited": _STR}},
    errors=(400, 409),
)
def invite_user(ctx: RequestContext) -> dict[str, Any]:
    body = ctx.json_body()
    view = wiring.tenant_service().invite(
        ctx.membership, body.get("email"), body.get("role", "sender")
    )
    return {**view, "invited": view["email"]}


@api.route(
    "/account/users/{sub}",
    methods=["PUT"],
    permission=Permission.ADMIN,
    summary="Change a user's role (the last admin cannot be demoted)",
    body={"type": "object", "required": ["role"], "properties": {"role": _ROLE}},
    response=USER,
    errors=(400, 404, 409),
)
def set_role(ctx: RequestContext, sub: str) -> dict[str, Any]:
    return wiring.tenant_service().set_role(ctx.membership, sub, ctx.json_body().get("role"))


@api.route(
    "/account/users/{sub}",
    methods=["DELETE"],
    permission=Permission.ADMIN,
    summary="Remove a user from the team: their tokens stop working at once (not the last "
    "admin); the answer lists the API keys they created that are still active (not revoked)",
    response={
        "type": "object",
        "properties": {
            "sub": _STR,
            "removed": {"type": "boolean"},
            "active_keys": {"type": "array", "items": KEY, "description": "revoke them if due"},
        },
    },
    errors=(404, 409),
)
def remove_user(ctx: RequestContext, sub: str) -> dict[str, Any]:
    removed = wiring.tenant_service().remove(ctx.membership, sub)
    creator = removed.pop("actor")
    return {
        **removed,
        "active_keys": wiring.api_key_service().live_keys_by(ctx.membership, creator),
    }


@api.route(
    "/account/invitations/{email}/resend",
    methods=["POST"],
    permission=Permission.ADMIN,
    summary="Email a pending invitation again",
    response=INVITATION,
    errors=(400, 404),
)
def resend_invitation(ctx: RequestContext, email: str) -> dict[str, Any]:
    return wiring.tenant_service().resend(ctx.membership, unquote(email))


@api.route(
    "/account/invitations/{email}",
    methods=["DELETE"],
    permission=Permission.ADMIN,
    summary="Cancel a pending invitation (the invitee's login goes too)",
    response=INVITATION,
    errors=(400, 404, 409),
)
def cancel_invitation(ctx: RequestContext, email: str) -> dict[str, Any]:
    return wiring.tenant_service().cancel(ctx.membership, unquote(email))


@api.route(
    "/invitation",
    methods=["GET"],
    permission=Permission.JOIN,
    summary="For an invited person: the team they are invited to, by whom, with which role",
    response={
        "type": "object",
        "properties": {
            "tenant_id": _STR,
            "tenant_name": _NULLABLE_STR,
            "invited_by": _NULLABLE_STR,
            "email": _NULLABLE_STR,
            "role": _ROLE,
        },
    },
    errors=(404,),
)
def get_invitation(ctx: RequestContext) -> dict[str, Any]:
    return wiring.tenant_service().invitation(ctx.membership)


@api.route(
    "/invitation/accept",
    methods=["POST"],
    permission=Permission.JOIN,
    summary="Accept the invitation: join the team with the role it names",
    response={"type": "object", "properties": {"tenant_id": _STR, "role": _ROLE}},
    errors=(404, 409),
)
def accept_invitation(ctx: RequestContext) -> dict[str, Any]:
    return wiring.tenant_service().accept(ctx.membership)


@api.route(
    "/verify-sts",
    methods=["GET"],
    permission=Permission.READ,
    summary="The setup checklist: each item ok, failed (with what to do) or not_checked",
    params=(
        Param(
            "canary",
            {"type": "boolean"},
            description="not here: the test email is POST /verify-sts/canary (admins); "
            "any value is a 400 naming that route",
        ),
    ),
    response=CHECKLIST,
    errors=(400,),
)
def verify_sts(ctx: RequestContext) -> dict[str, Any]:
    if ctx.query("canary") is not None:
        raise InvalidRequest(
            "the test email is sent by POST /verify-sts/canary (admins only); "
            "GET /verify-sts only reads the checklist",
            details={"field": "canary"},
        )
    return wiring.verifier().run(ctx.tenant, canary=False)


@api.route(
    "/verify-sts/canary",
    methods=["POST"],
    # Sending mail from the customer's account (through the configuration set, to SES's
    # success simulator) is an admin's decision; at most one every 10 minutes a tenant.
    permission=Permission.ADMIN,
    summary="Send the test email (the canary), then run the setup checklist",
    response=CHECKLIST,
)
def verify_sts_canary(ctx: RequestContext) -> dict[str, Any]:
    return wiring.verifier().run(ctx.tenant, canary=True)
