"""The tenant's suppression list: search it, add and remove addresses (each change keeps who,
when and why), and sync it with the SES account-level list. See chalicelib/suppression.py.

The service is imported inside the handlers: importing `app.py` must not load PynamoDB.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from chalicelib.core import wiring
from chalicelib.core.api import Api, Param, RequestContext
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.permissions import Permission

api = Api(__name__, wiring.authenticate)

# For the documentation; the service validates (a test keeps the two equal).
REASONS = ("BOUNCE", "COMPLAINT", "MANUAL", "UNSUBSCRIBED")
MAX_LIMIT = 100

_STR = {"type": "string"}
_NULLABLE_STR = {"type": "string", "nullable": True}
CHANGE = {
    "type": "object",
    "properties": {
        "at": _STR,
        "by": _STR,
        "action": {
            "type": "string",
            "enum": [
                "added",
                "updated",
                "unsubscribed",
                "imported",
                "removed",
                "removed_from_ses",
                "rekeyed",
            ],
        },
        "why": _NULLABLE_STR,
    },
}
ENTRY_PROPERTIES: dict[str, Any] = {
    "address": _STR,
    "suppressed": {"type": "boolean", "description": "false for a removed address (tombstone)"},
    "reason": {"type": "string", "enum": list(REASONS)},
    "reasons": {"type": "array", "items": {"type": "string", "enum": list(REASONS)}},
    "note": _NULLABLE_STR,
    "created_at": _STR,
    "created_by": _NULLABLE_STR,
    "occurrences": {"type": "integer"},
    "source_message_id": _NULLABLE_STR,
    "event_at": _NULLABLE_STR,
    "bounce_type": _NULLABLE_STR,
    "bounce_subtype": _NULLABLE_STR,
    "feedback_type": _NULLABLE_STR,
    "diagnostic_code": _NULLABLE_STR,
    "removed_at": _NULLABLE_STR,
    "removed_by": _NULLABLE_STR,
    "last_change": CHANGE,
}
SUMMARY = {"type": "object", "properties": ENTRY_PROPERTIES}
ENTRY_PROPERTIES_FULL = {**ENTRY_PROPERTIES, "history": {"type": "array", "items": CHANGE}}
ENTRY = {"type": "object", "properties": ENTRY_PROPERTIES_FULL}
PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": SUMMARY},
        "next": {**_NULLABLE_STR, "description": "pass as `next` for the following page"},
    },
}
WHY = {
    "type": "object",
    "required": ["reason"],
    "properties": {"reason": {**_STR, "maxLength": 500, "example": "asked us by phone"}},
}
SYNC_REPORT = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["completed", "incomplete", "not_available"]},
        "message": _STR,
        "imported": {"type": "integer"},
        "pushed": {"type": "integer"},
        "in_both": {"type": "integer"},
        "removed_from_ses": {"type": "integer"},
        "errors": {"type": "integer"},
        "failures": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"address": _STR, "action": _STR, "message": _STR},
            },
        },
        "pushed_as": {
            "type": "object",
            "description": "the SES reason each SESami reason is pushed as",
            "additionalProperties": _STR,
        },
    },
}


def _actor(ctx: RequestContext) -> str:
    """Who is changing the list, for the history (from the verified token)."""
    return str(ctx.membership.actor)


def _address(email: str) -> str:
    # API Gateway (and Chalice's local server) pass path parameters still percent-encoded.
    return unquote(email)


def _optional_body(ctx: RequestContext) -> dict[str, Any]:
    if not ctx.request.raw_body:
        return {}
    try:
        body = json.loads(ctx.request.raw_body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


@api.route(
    "/suppression-list",
    methods=["GET"],
    permission=Permission.READ,
    summary="The suppression list, in address order: prefix search, reason filter, paged",
    params=(
        Param("q", _STR, description="the start of the address (case-insensitive)"),
        Param("reason", {"type": "string", "enum": list(REASONS)}),
        Param("removed", {"type": "boolean"}, description="list removed addresses instead"),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}),
        Param("next", _STR, description="the cursor of the previous page"),
    ),
    response=PAGE,
)
def list_suppressed(ctx: RequestContext) -> dict[str, Any]:
    return wiring.suppression_service().search(
        ctx.tenant.tenant_id,
        q=ctx.query("q"),
        reason=ctx.query("reason"),
        removed=ctx.query("removed"),
        limit=ctx.query("limit"),
        cursor=ctx.query("next"),
    )


@api.route(
    "/suppression-list/{email}",
    methods=["GET"],
    permission=Permission.READ,
    summary="One address: its entry and history, or who removed it and when",
    response=ENTRY,
    errors=(400, 404),
)
def get_suppressed(ctx: RequestContext, email: str) -> dict[str, Any]:
    return wiring.suppression_service().get(ctx.tenant.tenant_id, _address(email))


@api.route(
    "/suppression-list/{email}",
    methods=["PUT"],
    permission=Permission.SUPPRESS,
    summary="Suppress an address by hand (reason MANUAL); an existing entry gets the new note",
    body=WHY,
    response={
        "type": "object",
        "properties": {**ENTRY_PROPERTIES_FULL, "created": {"type": "boolean"}},
    },
    errors=(400, 409),
)
def put_suppressed(ctx: RequestContext, email: str) -> dict[str, Any]:
    body = ctx.json_body()
    entry = wiring.suppression_service().add(
        ctx.tenant.tenant_id, _address(email), body.get("reason"), _actor(ctx)
    )
    if entry.get("created"):
        wiring.suppression_changed(
            ctx.tenant.tenant_id, "suppression.added", entry["address"], "MANUAL", _actor(ctx)
        )
    return entry


@api.route(
    "/suppression-list/{email}",
    methods=["DELETE"],
    permission=Permission.ADMIN,
    summary="Remove an address (it can be mailed again); a tombstone keeps who, when and why. "
    'Optional body {"reason": "..."} or query parameter `reason`.',
    params=(Param("reason", _STR, description="why it is removed, for the history"),),
    response=ENTRY,
    errors=(400, 404, 409),
)
def delete_suppressed(ctx: RequestContext, email: str) -> dict[str, Any]:
    why = _optional_body(ctx).get("reason", ctx.query("reason"))
    entry = wiring.suppression_service().remove(
        ctx.tenant.tenant_id, _address(email), why, _actor(ctx)
    )
    tid, address, reason = ctx.tenant.tenant_id, entry["address"], entry.get("reason")
    wiring.suppression_changed(tid, "suppression.removed", address, reason, _actor(ctx))
    return entry


@api.route(
    "/suppression-list/sync",
    methods=["POST"],
    permission=Permission.ADMIN,
    summary="Two-way sync with the SES account-level suppression list of the connected account",
    response=SYNC_REPORT,
    errors=(409, 422),
)
def sync_suppressed(ctx: RequestContext) -> dict[str, Any]:
    from chalicelib.suppression.sync import sync_with_ses

    tenant_aws = wiring.gateway().for_tenant(ctx.tenant)
    return sync_with_ses(tenant_aws, wiring.suppression_service(), _actor(ctx))
