"""The tenant's AWS account: connect it, what to run to onboard it, and the setup checklist."""

from __future__ import annotations

from typing import Any

from chalicelib.core import wiring
from chalicelib.core.api import Api, Param, RequestContext

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
        }
    },
}
ACCOUNT = {
    "type": "object",
    "properties": {
        "tenant_id": _STR,
        "external_id": _STR,
        "account_id": _NULLABLE_STR,
        "role_arn": _NULLABLE_STR,
        "region": _NULLABLE_STR,
        "configuration_set": _NULLABLE_STR,
        "connected": {"type": "boolean"},
        "settings": SETTINGS,
    },
}
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


def _account_view(tenant: Any) -> dict[str, Any]:
    from chalicelib.tenants import preferences

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


@api.route("/account", methods=["GET"], summary="The tenant and its AWS account", response=ACCOUNT)
def get_account(ctx: RequestContext) -> dict[str, Any]:
    return _account_view(ctx.tenant)


@api.route(
    "/account",
    methods=["PUT"],
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
    summary="The tenant's display settings (which rates the overview leads with)",
    body=SETTINGS,
    response=SETTINGS,
    errors=(400,),
)
def put_settings(ctx: RequestContext) -> dict[str, Any]:
    from chalicelib.tenants import preferences

    return preferences.update(ctx.tenant, ctx.json_body())


@api.route(
    "/account/onboarding",
    methods=["GET"],
    summary="Values and commands to run the customer-onboarding stack",
    response={"type": "object"},
)
def get_onboarding(ctx: RequestContext) -> dict[str, Any]:
    return wiring.account_service().onboarding(ctx.tenant)


@api.route(
    "/account/users",
    methods=["POST"],
    summary="Invite a colleague into the tenant (admins only)",
    status=201,
    body={"type": "object", "required": ["email"], "properties": {"email": _STR}},
    response={"type": "object", "properties": {"invited": _STR}},
    errors=(400, 403, 409),
)
def invite_user(ctx: RequestContext) -> dict[str, Any]:
    email = ctx.json_body().get("email")
    wiring.tenant_service().invite(ctx.membership, email if isinstance(email, str) else "")
    return {"invited": email}


@api.route(
    "/verify-sts",
    methods=["GET"],
    summary="The setup checklist: each item ok, failed (with what to do) or not_checked",
    params=(Param("canary", {"type": "boolean"}, description="send a test email first"),),
    response=CHECKLIST,
)
def verify_sts(ctx: RequestContext) -> dict[str, Any]:
    canary = (ctx.query("canary") or "").lower() in ("1", "true", "yes")
    return wiring.verifier().run(ctx.tenant, canary=canary)
