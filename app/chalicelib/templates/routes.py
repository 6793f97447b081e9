"""Stored templates: list, create, read, edit the draft, publish a version, read a version,
delete, preview (see templates/service.py). Senders and admins change them; everyone reads."""

from __future__ import annotations

from typing import Any

from chalice.app import Response

from chalicelib.core import wiring
from chalicelib.core.api import Api, RequestContext
from chalicelib.core.permissions import Permission

api = Api(__name__, wiring.authenticate)

_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_NAMES = {"type": "array", "items": _STR}
_VALUES = {
    "type": "object",
    "maxProperties": 50,
    "additionalProperties": {"oneOf": [{"type": "string", "maxLength": 10000}, {"type": "number"}]},
}
_TEXT = "a Mustache template: {{name}} placeholders, {{#name}}...{{/name}} sections"
CONTENT_PROPERTIES: dict[str, Any] = {
    "subject": {**_STR, "maxLength": 998, "description": f"{_TEXT}; no line breaks"},
    "html": {
        **_NSTR,
        "description": f"{_TEXT}; every value is HTML-escaped ({{{{{{name}}}}}} is refused)",
    },
    "text": {**_NSTR, "description": _TEXT},
    "sample_variables": {**_VALUES, "description": "what the preview renders with"},
}
CONTENT_VIEW = {
    **CONTENT_PROPERTIES,
    "variables": {**_NAMES, "description": "every variable a send must give"},
    "sections": {**_NAMES, "description": "section names: optional, absent means false"},
}
HEAD = {
    "template_id": _STR,
    "name": _STR,
    "latest_version": {"type": "integer", "nullable": True, "description": "null: none yet"},
    "created_at": _STR,
    "created_by": _STR,
    "updated_at": _STR,
    "updated_by": _STR,
}
TEMPLATE = {
    "type": "object",
    "properties": {
        **HEAD,
        "draft": {
            "type": "object",
            "properties": {
                **CONTENT_VIEW,
                "revision": {"type": "integer"},
                "updated_at": _STR,
                "updated_by": _STR,
                "preview_url": {**_NSTR, "description": "the HTML, for a sandboxed frame"},
            },
        },
        "versions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "version": {"type": "integer"},
                    "published_at": _STR,
                    "published_by": _STR,
                },
            },
        },
    },
}
VERSION = {
    "type": "object",
    "properties": {
        "template_id": _STR,
        "version": {"type": "integer"},
        "published_at": _STR,
        "published_by": _STR,
        **CONTENT_VIEW,
        "preview_url": _NSTR,
    },
}
LIST = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": HEAD}},
        "limit": {"type": "integer", "description": "the most templates an account may keep"},
    },
}
NEW = {
    "type": "object",
    "required": ["name", "subject"],
    "additionalProperties": False,
    "properties": {"name": {**_STR, "maxLength": 100}, **CONTENT_PROPERTIES},
}
EDIT = {
    "type": "object",
    "required": ["subject"],
    "additionalProperties": False,
    "properties": {
        "name": {**_STR, "maxLength": 100},
        **CONTENT_PROPERTIES,
        "revision": {
            "type": "integer",
            "description": "the draft's revision you read: a stale one is a 409",
        },
    },
}
PREVIEW_STORED = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "version": {
            "oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["draft"]}],
            "default": "draft",
        },
        "variables": {**_VALUES, "description": "default: the template's sample_variables"},
    },
}
PREVIEW_INLINE = {
    "type": "object",
    "required": ["subject"],
    "additionalProperties": False,
    "properties": {
        "subject": CONTENT_PROPERTIES["subject"],
        "html": CONTENT_PROPERTIES["html"],
        "text": CONTENT_PROPERTIES["text"],
        "variables": _VALUES,
    },
}
RENDERED = {
    "type": "object",
    "properties": {
        "subject": _STR,
        "html": _NSTR,
        "text": _NSTR,
        "variables": _NAMES,
        "sections": _NAMES,
        "missing": {**_NAMES, "description": "variables not given: rendered empty here"},
    },
}


def _by(ctx: RequestContext) -> str:
    return str(ctx.membership.actor)


@api.route(
    "/templates",
    methods=["GET"],
    permission=Permission.READ,
    summary="The account's stored templates",
    response=LIST,
    errors=(),
)
def list_templates(ctx: RequestContext) -> dict[str, Any]:
    return wiring.template_service().list(ctx.tenant.tenant_id)


@api.route(
    "/templates",
    methods=["POST"],
    permission=Permission.SEND,
    summary="Create a template (its draft); publish it to send with it",
    status=201,
    body=NEW,
    response=TEMPLATE,
    errors=(400, 409),
)
def create_template(ctx: RequestContext) -> dict[str, Any]:
    return wiring.template_service().create(ctx.tenant.tenant_id, ctx.json_body(), _by(ctx))


@api.route(
    "/templates/{template_id}",
    methods=["GET"],
    permission=Permission.READ,
    summary="A template: its draft, the variables it needs, its published versions",
    response=TEMPLATE,
    errors=(404,),
)
def get_template(ctx: RequestContext, template_id: str) -> dict[str, Any]:
    return wiring.template_service().get(ctx.tenant.tenant_id, template_id)


@api.route(
    "/templates/{template_id}",
    methods=["PUT"],
    permission=Permission.SEND,
    summary="Replace the template's draft (published versions never change)",
    body=EDIT,
    response=TEMPLATE,
    errors=(400, 404, 409),
)
def update_template(ctx: RequestContext, template_id: str) -> dict[str, Any]:
    return wiring.template_service().update(
        ctx.tenant.tenant_id, template_id, ctx.json_body(), _by(ctx)
    )


@api.route(
    "/templates/{template_id}",
    methods=["DELETE"],
    permission=Permission.SEND,
    summary="Delete a template and all its versions",
    status=204,
    errors=(404,),
)
def delete_template(ctx: RequestContext, template_id: str) -> Response:
    wiring.template_service().delete(ctx.tenant.tenant_id, template_id)
    return Response(body="", status_code=204)


@api.route(
    "/templates/{template_id}/versions",
    methods=["POST"],
    permission=Permission.SEND,
    summary="Publish the draft as the next version (immutable: sends use it)",
    status=201,
    response=VERSION,
    errors=(404, 409),
)
def publish_template(ctx: RequestContext, template_id: str) -> dict[str, Any]:
    return wiring.template_service().publish(ctx.tenant.tenant_id, template_id, _by(ctx))


@api.route(
    "/templates/{template_id}/versions/{version}",
    methods=["GET"],
    permission=Permission.READ,
    summary="One published version of a template",
    response=VERSION,
    errors=(400, 404),
)
def get_template_version(ctx: RequestContext, template_id: str, version: str) -> dict[str, Any]:
    return wiring.template_service().version(ctx.tenant.tenant_id, template_id, version)


@api.route(
    "/templates/{template_id}/preview",
    methods=["POST"],
    permission=Permission.READ,
    summary="Render the draft or a version with sample variables (missing ones are listed)",
    body=PREVIEW_STORED,
    response=RENDERED,
    errors=(400, 404),
)
def preview_template(ctx: RequestContext, template_id: str) -> dict[str, Any]:
    body = ctx.json_body() if ctx.request.raw_body else {}
    return wiring.template_service().preview(ctx.tenant.tenant_id, template_id, body)


@api.route(
    "/template-preview",
    methods=["POST"],
    permission=Permission.READ,
    summary="Render a template given inline, with sample variables (nothing is stored)",
    body=PREVIEW_INLINE,
    response=RENDERED,
    errors=(400,),
)
def preview_inline(ctx: RequestContext) -> dict[str, Any]:
    return wiring.template_service().preview(ctx.tenant.tenant_id, None, ctx.json_body())
