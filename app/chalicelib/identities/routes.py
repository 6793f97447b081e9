"""GET /identities: the customer account's SES identities, their verification, DKIM and MAIL FROM
status, the DNS records a pending domain needs, and whether the account is in the sandbox."""

from __future__ import annotations

from typing import Any

from chalicelib.core import wiring
from chalicelib.core.api import Api, Param, RequestContext
from chalicelib.core.permissions import Permission

api = Api(__name__, wiring.authenticate)

_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_STATUS = {
    "type": "string",
    "enum": ["PENDING", "SUCCESS", "FAILED", "TEMPORARY_FAILURE", "NOT_STARTED"],
}
RECORD = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": ["CNAME", "TXT", "MX"]},
        "name": _STR,
        "value": _STR,
        "purpose": _STR,
        "done": {"type": "boolean"},
    },
}
IDENTITY = {
    "type": "object",
    "properties": {
        "identity": _STR,
        "type": {"type": "string", "enum": ["DOMAIN", "EMAIL_ADDRESS", "MANAGED_DOMAIN"]},
        "verification_status": _STATUS,
        "sending_enabled": {"type": "boolean"},
        "sendable": {"type": "boolean", "description": "verified and sending enabled"},
        "dkim": {
            "type": "object",
            "properties": {
                "status": {**_STATUS, "nullable": True},
                "signing_enabled": {"type": "boolean", "nullable": True},
                "signing_attributes_origin": _NSTR,
                "current_signing_key_length": _NSTR,
                "next_signing_key_length": _NSTR,
                "last_key_generation": _NSTR,
            },
        },
        "mail_from": {
            "type": "object",
            "nullable": True,
            "properties": {
                "domain": _NSTR,
                "status": _NSTR,
                "behavior_on_mx_failure": _NSTR,
            },
        },
        "dns_records": {"type": "array", "items": RECORD},
        "next_step": _STR,
    },
}
IDENTITIES = {
    "type": "object",
    "properties": {
        "region": _STR,
        "sandbox": {
            "type": "boolean",
            "nullable": True,
            "description": "true while SES keeps the account in its sandbox (recipients must be "
            "verified too); null when SES does not say",
        },
        "items": {"type": "array", "items": IDENTITY},
        "next": {**_NSTR, "description": "pass as `next` for the following page"},
    },
}


@api.route(
    "/identities",
    methods=["GET"],
    permission=Permission.READ,
    summary="The SES identities of the connected account: verification, DKIM, MAIL FROM, the DNS "
    "records to add, and whether the account is in the sandbox",
    params=(
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}),
        Param("next", {"type": "string", "maxLength": 4096}),
    ),
    response=IDENTITIES,
    errors=(400, 409, 422, 503),
)
def list_identities(ctx: RequestContext) -> dict[str, Any]:
    return wiring.identity_service().list(ctx.tenant, ctx.query("limit"), ctx.query("next"))
