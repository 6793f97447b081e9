"""Stored content: the tenant's retention setting, and the sandboxed frame that shows a stored
message's HTML (or a template's preview) in the dashboard (see content/display.py)."""

from __future__ import annotations

from typing import Any

from chalice.app import Response

from chalicelib.core import wiring
from chalicelib.core.api import Api, RequestContext
from chalicelib.core.permissions import Permission

api = Api(__name__, wiring.authenticate)

SETTINGS = {
    "type": "object",
    "properties": {
        "retention_days": {
            "type": "integer",
            "description": "days the content of sent mail is kept; 0 keeps none",
        },
        "allowed_retention_days": {"type": "array", "items": {"type": "integer"}},
        "available": {
            "type": "boolean",
            "description": "false where SESami has no content bucket configured",
        },
        "purge": {
            "type": "object",
            "description": "the deletion of what is past the retention, started when it was "
            "lowered: job_id, state (running, finished), retention_days, deleted (objects)",
        },
    },
}
CHANGE = {
    "type": "object",
    "required": ["retention_days"],
    "additionalProperties": False,
    "properties": {
        "retention_days": {"type": "integer", "enum": [0, 1, 3, 7, 14, 30, 60, 90, 180, 365]}
    },
}


@api.route(
    "/account/content",
    methods=["GET"],
    permission=Permission.READ,
    summary="How long the content of sent mail is kept",
    response=SETTINGS,
    errors=(),
)
def get_content_settings(ctx: RequestContext) -> dict[str, Any]:
    return wiring.content_settings(ctx.tenant)


@api.route(
    "/account/content",
    methods=["PUT"],
    permission=Permission.ADMIN,
    summary="Change how long the content of sent mail is kept (0: keep none; a shorter time "
    "hides older content at once and deletes it, in the background if it takes long)",
    body=CHANGE,
    response=SETTINGS,
    errors=(400,),
)
def put_content_settings(ctx: RequestContext) -> dict[str, Any]:
    return wiring.set_content_retention(ctx.tenant, ctx.json_body())


@api.route(
    "/frames/{token}",
    methods=["GET"],
    summary="A stored message's HTML or a template preview, sanitised, for a sandboxed frame "
    "(the signed, short-lived token is the credential; scripts never run, remote content loads "
    "only with a token that allows it)",
    public=True,
    response={"type": "string"},
    errors=(400, 404),
    content_type="text/html",
)
def frame(ctx: RequestContext, token: str) -> Response:
    from chalicelib.content.display import frame_headers

    document, remote = wiring.frame(token)
    return Response(body=document, status_code=200, headers=frame_headers(remote))
