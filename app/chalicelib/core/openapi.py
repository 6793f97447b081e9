"""The OpenAPI 3 document, built from the routes' own declarations (`api.ROUTE_DOCS`)."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.core.api import ROUTE_DOCS, RouteDoc
from chalicelib.core.permissions import holders

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}
_ERROR_TEXT = {
    400: "Invalid request (the message names the problem)",
    401: "Missing or invalid token or API key",
    403: "Not allowed: the error names the permission the caller's role or key lacks",
    404: "Not found",
    409: "Conflict",
    422: "SESami or SES cannot act in the customer's account (role, SES refusal)",
    429: "Over a quota: `details.limit` names it; retry after `Retry-After` seconds",
    503: "A service SESami depends on is unavailable",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds until the quota's window ends",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _operation_id(doc: RouteDoc) -> str:
    words = re.sub(r"[^a-z0-9]+", "_", doc.path.lower()).strip("_")
    return f"{doc.method.lower()}_{words or 'root'}"


def _operation(doc: RouteDoc) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": doc.summary,
        "operationId": _operation_id(doc),
        "parameters": [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required or p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in doc.params
        ],
        "responses": {
            str(doc.status): {
                "description": "OK",
                "content": {
                    doc.content_type: {"schema": doc.response or {}},
                    **{media: {"schema": schema} for media, schema in doc.other_content.items()},
                },
            },
        },
    }
    codes = set(doc.errors) | ({401, 503} if not doc.public else set())
    error_content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
    }
    if doc.content_type != "application/json":
        # A page for people (e.g. "this unsubscribe link does not work") answers its own errors
        # as a page; what the API layer refuses still comes in the JSON error shape.
        error_content[doc.content_type] = {"schema": {"type": "string"}}
    for code in sorted(codes):
        op["responses"][str(code)] = {
            "description": _ERROR_TEXT.get(code, "Error"),
            "content": dict(error_content),
            **({"headers": dict(_RETRY_AFTER)} if code == 429 else {}),
        }
    if doc.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": doc.body}},
        }
    if doc.public:
        op["security"] = []
    if doc.permission is not None:
        roles, scopes = holders(doc.permission)
        op["x-sesami-permission"] = doc.permission.value
        op["description"] = (
            f"Needs the `{doc.permission.value}` permission: roles {', '.join(roles)}"
            + (f"; API-key scopes {', '.join(scopes)}." if scopes else ".")
        )
    return op


def document(server_url: str | None = None) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for doc in ROUTE_DOCS:
        paths.setdefault(doc.path, {})[doc.method.lower()] = _operation(doc)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "SESami API",
            "version": "1.0.0",
            "description": "Multi-tenant tracker for Amazon SES: events, messages, recipients, "
            "links, stats, suppression list, sending.",
        },
        "servers": [{"url": server_url}] if server_url else [],
        "components": {
            "securitySchemes": {
                "cognito": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "Cognito ID token (JWT) or SESami API key (sk_...)",
                }
            },
            "schemas": {"Error": ERROR_SCHEMA},
        },
        "security": [{"cognito": []}],
        "paths": paths,
    }
