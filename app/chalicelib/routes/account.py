"""The tenant's AWS account: connect it, what to run to onboard it, and the setup checklist."""

from __future__ import annotations

from typing import Any

from chalicelib import runtime
from chalicelib.api import Api, RequestContext

api = Api(__name__, runtime.authenticate)


def _account_view(tenant: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "external_id": tenant.external_id,
        "account_id": tenant.account_id,
        "role_arn": tenant.role_arn,
        "region": tenant.region,
        "configuration_set": tenant.configuration_set,
        "connected": tenant.account_id is not None,
    }


@api.route("/account", methods=["GET"])
def get_account(ctx: RequestContext) -> dict[str, Any]:
    return _account_view(ctx.tenant)


@api.route("/account", methods=["PUT"])
def put_account(ctx: RequestContext) -> dict[str, Any]:
    body = ctx.json_body()
    tenant = runtime.account_service().connect(
        ctx.tenant, body.get("role_arn"), body.get("region"), body.get("configuration_set")
    )
    return _account_view(tenant)


@api.route("/account/onboarding", methods=["GET"])
def get_onboarding(ctx: RequestContext) -> dict[str, Any]:
    return runtime.account_service().onboarding(ctx.tenant)


@api.route("/account/users", methods=["POST"], status=201)
def invite_user(ctx: RequestContext) -> dict[str, Any]:
    email = ctx.json_body().get("email")
    runtime.tenant_service().invite(ctx.membership, email if isinstance(email, str) else "")
    return {"invited": email}


@api.route("/verify-sts", methods=["GET"])
def verify_sts(ctx: RequestContext) -> dict[str, Any]:
    canary = (ctx.query("canary") or "").lower() in ("1", "true", "yes")
    return runtime.verifier().run(ctx.tenant, canary=canary)
