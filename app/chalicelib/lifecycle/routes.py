"""Disconnecting, erasing a recipient, deleting the tenant, and the audit trail: an admin's,
each route declaring it (core/api.py); the deletion's progress is any member's."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from chalice.app import Response

from chalicelib.core import wiring
from chalicelib.core.api import JSON, Api, Param, RequestContext
from chalicelib.core.permissions import Permission

api = Api(__name__, wiring.authenticate)
# GET /tenant/deletion answers while the tenant is being deleted, when every other route is 410.
progress_api = Api(f"{__name__}.progress", wiring.authenticate_while_deleting)

_STR = {"type": "string"}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
JOB = {
    "type": "object",
    "properties": {
        "job_id": _STR,
        "kind": {"type": "string", "enum": ["erasure", "deletion"]},
        "state": {"type": "string", "enum": ["running", "waiting", "finished"]},
        "step": _STR,
        "counts": _COUNTS,
        "counting": {
            "type": "object",
            "description": (
                "An erasure's last step (`step: counting`, state waiting): clicks on links that "
                "named the address, taken in by the counters so far; their link counters are "
                "deleted again once all are (usually seconds, at most a day)"
            ),
            "properties": {
                "marked": {"type": "integer"},
                "counted": {"type": "integer"},
                "since": _STR,
                "gave_up_waiting": {"type": "boolean"},
            },
        },
        "started_at": _STR,
        "finished_at": _STR,
        "requested_by": _STR,
    },
}


@api.route(
    "/account",
    methods=["DELETE"],
    summary="Disconnect the AWS account: its binding and role go, the history stays (admins)",
    response={
        "type": "object",
        "properties": {
            "disconnected": {"type": "string", "nullable": True},
            "connected": {"type": "boolean"},
            "history": _STR,
        },
    },
    errors=(403, 409),
    permission=Permission.ADMIN,
)
def disconnect_account(ctx: RequestContext) -> dict[str, Any]:
    return wiring.lifecycle().disconnect(ctx.membership)


@api.route(
    "/recipients/{email}",
    methods=["DELETE"],
    summary=(
        "Erase every trace of one address (GDPR art. 17): 200 with what was removed, or 202 "
        "while the rest goes on (GET /erasures/{job_id}). A suppressed address stays suppressed "
        "under its hash (admins)"
    ),
    response=JOB,
    errors=(400, 403, 409),
    permission=Permission.ADMIN,
)
def erase_recipient(ctx: RequestContext, email: str) -> Response:
    status, body = wiring.lifecycle().erase(ctx.membership, unquote(email))
    return Response(body=json.dumps(body), status_code=status, headers=dict(JSON))


@api.route(
    "/erasures/{job_id}",
    methods=["GET"],
    summary="A recipient erasure's progress and what it removed (admins)",
    response=JOB,
    errors=(403, 404),
    permission=Permission.ADMIN,
)
def get_erasure(ctx: RequestContext, job_id: str) -> dict[str, Any]:
    return wiring.lifecycle().erasure(ctx.membership, job_id)


@api.route(
    "/tenant/deletion",
    methods=["POST"],
    summary="Ask to delete the tenant: a confirmation for DELETE /tenant, for 10 minutes (admins)",
    response={
        "type": "object",
        "properties": {
            "confirmation": _STR,
            "expires_at": _STR,
            "tenant_id": _STR,
            "will_delete": {"type": "array", "items": _STR},
        },
    },
    errors=(403,),
    permission=Permission.ADMIN,
)
def ask_tenant_deletion(ctx: RequestContext) -> dict[str, Any]:
    return wiring.lifecycle().deletion_confirmation(ctx.membership)


@api.route(
    "/tenant",
    methods=["DELETE"],
    summary="Delete the tenant and everything of it, in the background (GET /tenant/deletion)",
    status=202,
    body={"type": "object", "required": ["confirmation"], "properties": {"confirmation": _STR}},
    response=JOB,
    errors=(400, 403, 409),
    permission=Permission.ADMIN,
)
def delete_tenant(ctx: RequestContext) -> dict[str, Any]:
    return wiring.lifecycle().delete_tenant(ctx.membership, ctx.json_body().get("confirmation"))


@progress_api.route(
    "/tenant/deletion",
    methods=["GET"],
    summary="The tenant deletion's progress: counts per table and the step it is at",
    response=JOB,
    errors=(404,),
    permission=Permission.READ,
)
def tenant_deletion_progress(ctx: RequestContext) -> dict[str, Any]:
    return wiring.lifecycle().deletion_progress(ctx.membership)


@api.route(
    "/audit",
    methods=["GET"],
    summary="The tenant's audit trail, newest first: disconnections, erasures, deletion (admins)",
    params=(
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
        Param("next", _STR, description="the previous page's cursor"),
    ),
    response={
        "type": "object",
        "properties": {
            "entries": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": _STR,
                        "actor": _STR,
                        "action": _STR,
                        "target": {"type": "string", "nullable": True},
                        "detail": {"type": "object"},
                    },
                },
            },
            "next": {"type": "string", "nullable": True},
        },
    },
    errors=(400, 403),
    permission=Permission.ADMIN,
)
def get_audit(ctx: RequestContext) -> dict[str, Any]:
    return wiring.lifecycle().audit(ctx.membership, ctx.query("limit"), ctx.query("next"))
