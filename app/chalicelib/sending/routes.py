"""Sending mail through the tenant's SES account: one message, or a templated bulk batch."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Response

from chalicelib.core import wiring
from chalicelib.core.api import JSON, Api, Param, RequestContext
from chalicelib.core.permissions import Permission

api = Api(__name__, wiring.authenticate)

_STR = {"type": "string"}
_ADDRESS = {
    "oneOf": [
        {**_STR, "example": "Ada Lovelace <ada@example.com>"},
        {
            "type": "object",
            "required": ["address"],
            "properties": {"address": _STR, "name": _STR},
            "additionalProperties": False,
        },
    ]
}
_ADDRESSES = {"oneOf": [_ADDRESS, {"type": "array", "items": _ADDRESS, "maxItems": 50}]}
_TAGS = {
    "type": "object",
    "description": "name: value; ASCII letters, digits, '_' and '-', 1-256 characters each; at "
    "most 48 (SES allows 50; SESami adds sesami-tenant and, in bulk, sesami-batch)",
    "maxProperties": 48,
    "additionalProperties": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,256}$"},
}
_CONFIG_SET = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_-]{1,64}$",
    "description": "defaults to the tenant's configuration set",
}
_HEADER_TEXT = "no line breaks or control characters, raw or RFC 2047-encoded"
_SUPPRESSED = {
    "type": "object",
    "properties": {
        "address": _STR,
        "reason": {"type": "string", "example": "BOUNCE"},
        "reasons": {"type": "array", "items": _STR},
        "since": {"type": "string", "nullable": True},
    },
}
_TEMPLATE_ID = {
    "type": "string",
    "pattern": "^[0-9a-f]{32}$",
    "description": "a stored template (POST /templates), instead of inline content",
}
_VERSION = {
    "type": "integer",
    "minimum": 1,
    "description": "the template's published version; default: the latest",
}
_VARIABLES = {
    "type": "object",
    "maxProperties": 50,
    "additionalProperties": {"oneOf": [_STR, {"type": "number"}]},
}
MAIL = {
    "type": "object",
    "required": ["from"],
    "additionalProperties": False,
    "description": "to, cc and bcc hold 1-50 addresses in all; give subject with html, text or "
    "both (10 MB together), or template_id (with variables) instead",
    "properties": {
        "from": _ADDRESS,
        "to": _ADDRESSES,
        "cc": _ADDRESSES,
        "bcc": _ADDRESSES,
        "reply_to": _ADDRESSES,
        "subject": {**_STR, "maxLength": 998, "description": _HEADER_TEXT},
        "html": _STR,
        "text": _STR,
        "tags": _TAGS,
        "configuration_set": _CONFIG_SET,
        "skip_suppressed": {
            "type": "boolean",
            "default": False,
            "description": "send to the others instead of refusing when some are suppressed",
        },
        "template_id": _TEMPLATE_ID,
        "version": _VERSION,
        "variables": {**_VARIABLES, "description": "the template's variables"},
    },
}
MAIL_SENT = {
    "type": "object",
    "properties": {
        "message_id": _STR,
        "status": {"type": "string", "enum": ["sent"]},
        "configuration_set": _STR,
        "recipients": {"type": "array", "items": _STR},
        "skipped": {"type": "array", "items": _SUPPRESSED},
        "recorded": {
            "type": "boolean",
            "description": "the message is already visible at GET /messages/{message_id}",
        },
    },
}
BULK = {
    "type": "object",
    "required": ["from", "recipients"],
    "additionalProperties": False,
    "description": "give template (inline) or template_id (a stored template)",
    "properties": {
        "from": _ADDRESS,
        "reply_to": _ADDRESSES,
        "template_id": _TEMPLATE_ID,
        "version": _VERSION,
        "template": {
            "type": "object",
            "required": ["subject"],
            "additionalProperties": False,
            "description": "Mustache: {{name}} placeholders take each recipient's variables "
            "(HTML-escaped in html), {{#name}}...{{/name}} sections; give html, text or both",
            "properties": {
                "subject": {**_STR, "example": "Hello {{first_name}}"},
                "html": _STR,
                "text": _STR,
            },
        },
        "recipients": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {
                "type": "object",
                "required": ["to"],
                "additionalProperties": False,
                "properties": {
                    "to": _ADDRESS,
                    "variables": _VARIABLES,
                },
            },
        },
        "tags": _TAGS,
        "configuration_set": _CONFIG_SET,
    },
}
_RESULT_STATUSES = ["sent", "suppressed", "failed", "not_sent", "unknown", "queued", "sending"]
BATCH = {
    "type": "object",
    "properties": {
        "batch_id": _STR,
        "status": {
            "type": "string",
            "enum": ["queued", "sending", "done", "incomplete"],
            "description": "incomplete: some recipients are not_sent (SES refused the "
            "account's sending, or the worker was lost: send to those again) or unknown (a "
            "worker died while sending to them: SES may have sent them; never sent again)",
        },
        "created_at": _STR,
        "configuration_set": _STR,
        "progress": {
            "type": "object",
            "properties": {"total": {"type": "integer"}, "processed": {"type": "integer"}},
        },
        "counts": {
            "type": "object",
            "properties": {s: {"type": "integer"} for s in _RESULT_STATUSES},
        },
        "send_rate": {
            "type": "object",
            "nullable": True,
            "description": "known once the first worker runs",
            "properties": {
                "per_second": {"type": "number"},
                "source": {"type": "string", "enum": ["ses", "default"]},
                "note": {"type": "string", "nullable": True},
            },
        },
        "skipped": {
            "type": "array",
            "items": _SUPPRESSED,
            "description": "POST only: the suppressed recipients, not sent",
        },
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "address": _STR,
                    "status": {"type": "string", "enum": _RESULT_STATUSES},
                    "message_id": _STR,
                    "reason": _STR,
                    "error": _STR,
                },
            },
        },
    },
}
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    {"type": "string", "maxLength": 255},
    where="header",
    description="replays the first response for 24 h instead of sending again; reusing a key "
    "with another body is a 409",
)


def _reply(status: int, body: dict[str, Any], replayed: bool) -> Response:
    headers = dict(JSON)
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body=json.dumps(body, default=str), status_code=status, headers=headers)


def _key(ctx: RequestContext) -> str | None:
    value = ctx.request.headers.get("idempotency-key")
    return None if value is None else str(value)


@api.route(
    "/mail",
    methods=["POST"],
    permission=Permission.SEND,
    summary="Send one message through SES in the tenant's account",
    params=(IDEMPOTENCY_KEY,),
    body=MAIL,
    response=MAIL_SENT,
    errors=(400, 404, 409, 422, 423, 503),
    charges_sends=True,
)
def send_mail(ctx: RequestContext) -> Response:
    charge = ctx.quota.sends if ctx.quota is not None else None
    outcome = wiring.mail_service().send(ctx.tenant, ctx.json_body(), _key(ctx), charge)
    return _reply(outcome.status, outcome.body, outcome.replayed)


@api.route(
    "/mail/bulk",
    methods=["POST"],
    permission=Permission.SEND,
    summary="Queue one template for up to 1,000 recipients: sent in the background, paced to "
    "the account's send rate, with one-click unsubscribe headers (follow it at GET "
    "/mail/bulk/{batch_id})",
    status=202,
    params=(IDEMPOTENCY_KEY,),
    body=BULK,
    response=BATCH,
    errors=(400, 404, 409, 422, 423, 503),
)
def send_bulk(ctx: RequestContext) -> Response:
    outcome = wiring.mail_service().send_bulk(ctx.tenant, ctx.json_body(), _key(ctx))
    return _reply(outcome.status, outcome.body, outcome.replayed)


@api.route(
    "/mail/bulk/{batch_id}",
    methods=["GET"],
    permission=Permission.READ,
    summary="A bulk batch and its per-recipient results",
    response=BATCH,
    errors=(404,),
)
def get_bulk(ctx: RequestContext, batch_id: str) -> dict[str, Any]:
    return wiring.mail_service().batch(ctx.tenant, batch_id)
