"""API keys: create (the key is in that answer only), list, revoke. Admins only."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Response

from chalicelib.core import wiring
from chalicelib.core.api import JSON, Api, RequestContext
from chalicelib.core.permissions import SCOPES, Permission

api = Api(__name__, wiring.authenticate)

_STR = {"type": "string"}
_WHEN = {"type": "string", "format": "date-time", "nullable": True}
KEY_PROPERTIES: dict[str, Any] = {
    "id": {**_STR, "description": "the key's public ID"},
    "prefix": {**_STR, "description": "`sk_<id>`: how the key is named in lists and histories"},
    "name": _STR,
    "scope": {"type": "string", "enum": list(SCOPES)},
    "status": {"type": "string", "enum": ["active", "expired", "revoked"]},
    "created_by": _STR,
    "created_at": _WHEN,
    "expires_at": {**_WHEN, "description": "null: the key does not expire"},
    "last_used_at": {**_WHEN, "description": "last request, to within a minute"},
    "revoked_at": _WHEN,
    "revoked_by": {"type": "string", "nullable": True},
}
KEY = {"type": "object", "properties": KEY_PROPERTIES}


@api.route(
    "/api-keys",
    methods=["POST"],
    permission=Permission.ADMIN,
    summary="Create an API key for a program; the key is in this answer and never again",
    status=201,
    body={
        "type": "object",
        "required": ["name", "scope"],
        "properties": {
            "name": {"type": "string", "maxLength": 64},
            "scope": {
                "type": "string",
                "enum": list(SCOPES),
                "description": "read: what a viewer may do; send: a sender; admin: an admin",
            },
            "expires_at": {
                "type": "string",
                "nullable": True,
                "description": "ISO 8601, at most 3 years ahead; absent or null: never",
            },
        },
    },
    response={
        "type": "object",
        "properties": {
            **KEY_PROPERTIES,
            "key": {**_STR, "description": "`sk_<id>_<secret>`: shown once, store it now"},
            "warning": _STR,
        },
    },
    errors=(400, 409),
)
def create_key(ctx: RequestContext) -> Response:
    body = ctx.json_body()
    created = wiring.api_key_service().create(
        ctx.membership, body.get("name"), body.get("scope"), body.get("expires_at")
    )
    # The only answer that carries the key: no cache along the way may keep it.
    headers = {**JSON, "Cache-Control": "no-store"}
    return Response(body=json.dumps(created), status_code=201, headers=headers)


@api.route(
    "/api-keys",
    methods=["GET"],
    permission=Permission.ADMIN,
    summary="The team's API keys (never their secrets), newest first",
    response={"type": "object", "properties": {"keys": {"type": "array", "items": KEY}}},
)
def list_keys(ctx: RequestContext) -> dict[str, Any]:
    return wiring.api_key_service().list_keys(ctx.membership)


@api.route(
    "/api-keys/{key_id}",
    methods=["DELETE"],
    permission=Permission.ADMIN,
    summary="Revoke an API key: the next request with it is a 401",
    response=KEY,
    errors=(404,),
)
def revoke_key(ctx: RequestContext, key_id: str) -> dict[str, Any]:
    return wiring.api_key_service().revoke(ctx.membership, key_id)
