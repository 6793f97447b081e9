"""Webhook endpoints, their delivery logs, and reputation alerts: the routes. Managing endpoints,
replaying, alert rules and resuming a paused account need `admin`; reading needs `read`.

The services are imported inside the handlers (through core/wiring.py): importing `app.py` must
not load PynamoDB."""

from __future__ import annotations

from typing import Any

from chalicelib.core import wiring
from chalicelib.core.api import Api, Param, RequestContext
from chalicelib.core.permissions import Permission

api = Api(__name__, wiring.authenticate)

_S: dict[str, Any] = {"type": "string"}
_NS: dict[str, Any] = {"type": "string", "nullable": True}
_NUM: dict[str, Any] = {"type": "number"}
_INT: dict[str, Any] = {"type": "integer"}
_STATUSES = ["pending", "retrying", "delivered", "failed"]
SECRET_INFO = {
    "type": "object",
    "properties": {"id": _S, "created_at": _S, "expires_at": _NS},
}
ENDPOINT_PROPERTIES: dict[str, Any] = {
    "id": _S,
    "url": _S,
    "description": _NS,
    "event_types": {"type": "array", "items": _S},
    "tags": {"type": "array", "items": _S},
    "enabled": {"type": "boolean"},
    "created_at": _S,
    "created_by": _NS,
    "updated_at": _NS,
    "failing_since": _NS,
    "disabled_reason": _NS,
    "disabled_at": _NS,
    "secrets": {"type": "array", "items": SECRET_INFO},
}
ENDPOINT = {"type": "object", "properties": ENDPOINT_PROPERTIES}
WITH_SECRET = {
    "type": "object",
    "properties": {
        **ENDPOINT_PROPERTIES,
        "secret": {**_S, "description": "whsec_...: shown this once, keep it"},
    },
}
ENDPOINT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "url": {**_S, "maxLength": 2048, "example": "https://hooks.example.com/sesami"},
        "event_types": {
            "type": "array",
            "items": _S,
            "minItems": 1,
            "maxItems": 20,
            "description": "types (email.bounced, suppression.added, alert.fired, ...), "
            "families (email.*, suppression.*, alert.*) or *; default *",
        },
        "tags": {
            "type": "array",
            "items": {**_S, "example": "campaign:nov"},
            "maxItems": 10,
            "description": "only email events carrying one of these name:value tags",
        },
        "enabled": {"type": "boolean"},
        "description": {**_NS, "maxLength": 200},
    },
}
NEW_ENDPOINT = {**ENDPOINT_BODY, "required": ["url"]}
DELIVERY_PROPERTIES: dict[str, Any] = {
    "id": _S,
    "webhook_id": _S,
    "type": _S,
    "status": {"type": "string", "enum": _STATUSES},
    "attempts": {"type": "integer"},
    "created_at": _S,
    "first_attempt_at": _NS,
    "next_attempt_at": _NS,
    "finished_at": _NS,
    "last_code": {"type": "integer", "nullable": True},
    "last_ms": {"type": "number", "nullable": True},
    "last_error": _NS,
}
ATTEMPT = {
    "type": "object",
    "properties": {
        "n": {"type": "integer"},
        "at": _S,
        "kind": _S,
        "code": {"type": "integer", "nullable": True},
        "ms": {"type": "number"},
        "body": _S,
        "error": _NS,
    },
}
DELIVERY = {
    "type": "object",
    "properties": {
        **DELIVERY_PROPERTIES,
        "log": {"type": "array", "items": ATTEMPT},
        "payload": {**_S, "description": "the exact body every attempt signs"},
    },
}
PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": {"type": "object", "properties": DELIVERY_PROPERTIES}},
        "next": _NS,
    },
}
QUEUED = {
    "type": "object",
    "properties": {
        "queued": {"type": "integer"},
        "delivery_id": _S,
        "webhook_id": _S,
        "delivery_ids": {"type": "array", "items": _S},
        "more": {"type": "boolean"},
    },
}
RULE = {
    "type": "object",
    "properties": {
        "name": _S,
        "label": _S,
        "counter": _S,
        "threshold": _NUM,
        "resolve_ratio": _NUM,
        "resolve_below": _NUM,
        "window_hours": {"type": "integer"},
        "min_volume": {"type": "integer"},
        "auto_pause": {"type": "boolean"},
        "enabled": {"type": "boolean"},
        "state": {"type": "string", "enum": ["ok", "firing"]},
        "alert_id": _NS,
        "since": _NS,
        "current": {
            "type": "object",
            "properties": {"value": _NUM, "volume": _INT, "count": _INT},
        },
    },
}
ALERTS = {
    "type": "object",
    "properties": {
        "rules": {"type": "array", "items": RULE},
        "sending_paused": {"type": "object", "nullable": True},
        "history": {"type": "array", "items": {"type": "object"}},
    },
}
RULE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "threshold": {"type": "number", "minimum": 0.0001, "maximum": 1},
        "window_hours": {"type": "integer", "minimum": 1, "maximum": 168},
        "min_volume": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "resolve_ratio": {"type": "number", "minimum": 0.1, "maximum": 1},
        "auto_pause": {"type": "boolean"},
        "enabled": {"type": "boolean"},
    },
}


def _tid(ctx: RequestContext) -> str:
    return str(ctx.tenant.tenant_id)


def _optional(ctx: RequestContext) -> dict[str, Any]:
    return ctx.json_body() if ctx.request.raw_body else {}


@api.route(
    "/webhooks",
    methods=["GET"],
    permission=Permission.READ,
    summary="The tenant's webhook endpoints (never their secrets) and the event types",
    response={
        "type": "object",
        "properties": {
            "endpoints": {"type": "array", "items": ENDPOINT},
            "event_types": {"type": "array", "items": _S},
        },
    },
)
def list_endpoints(ctx: RequestContext) -> dict[str, Any]:
    return wiring.webhook_endpoints().endpoints(_tid(ctx))


@api.route(
    "/webhooks",
    methods=["POST"],
    permission=Permission.ADMIN,
    status=201,
    summary="Add an endpoint; the answer holds its signing secret, shown this once",
    body=NEW_ENDPOINT,
    response=WITH_SECRET,
    errors=(400, 409),
)
def create_endpoint(ctx: RequestContext) -> dict[str, Any]:
    return wiring.webhook_endpoints().create(_tid(ctx), ctx.json_body(), str(ctx.membership.actor))


@api.route(
    "/webhooks/{endpoint}",
    methods=["GET"],
    permission=Permission.READ,
    summary="One endpoint",
    response=ENDPOINT,
    errors=(404,),
)
def get_endpoint(ctx: RequestContext, endpoint: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().get(_tid(ctx), endpoint)


@api.route(
    "/webhooks/{endpoint}",
    methods=["PUT"],
    permission=Permission.ADMIN,
    summary="Change an endpoint's URL, types, tag filter, description, or enable it again",
    body=ENDPOINT_BODY,
    response=ENDPOINT,
    errors=(400, 404),
)
def update_endpoint(ctx: RequestContext, endpoint: str) -> dict[str, Any]:
    service = wiring.webhook_endpoints()
    return service.update(_tid(ctx), endpoint, ctx.json_body(), str(ctx.membership.actor))


@api.route(
    "/webhooks/{endpoint}",
    methods=["DELETE"],
    permission=Permission.ADMIN,
    summary="Delete an endpoint (its delivery log expires with its records)",
    response={"type": "object", "properties": {"id": _S, "deleted": {"type": "boolean"}}},
    errors=(404,),
)
def delete_endpoint(ctx: RequestContext, endpoint: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().delete(_tid(ctx), endpoint)


@api.route(
    "/webhooks/{endpoint}/secret",
    methods=["POST"],
    permission=Permission.ADMIN,
    summary="Rotate the signing secret: the new one is shown once; the old one keeps signing "
    "beside it for overlap_hours (default 24, 0 stops it now)",
    body={
        "type": "object",
        "additionalProperties": False,
        "properties": {"overlap_hours": {"type": "number", "minimum": 0, "maximum": 168}},
    },
    response=WITH_SECRET,
    errors=(400, 404),
)
def rotate_secret(ctx: RequestContext, endpoint: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().rotate(_tid(ctx), endpoint, _optional(ctx))


@api.route(
    "/webhooks/{endpoint}/test",
    methods=["POST"],
    permission=Permission.ADMIN,
    status=202,
    summary="Send a test event (webhook.test) to the endpoint",
    response=QUEUED,
    errors=(404, 409),
)
def send_test(ctx: RequestContext, endpoint: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().send_test(_tid(ctx), endpoint)


@api.route(
    "/webhooks/{endpoint}/deliveries",
    methods=["GET"],
    permission=Permission.READ,
    summary="The endpoint's delivery log, newest first: status, attempts, last answer",
    params=(
        Param("status", {"type": "string", "enum": _STATUSES}),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
        Param("next", _S, description="the cursor of the previous page"),
    ),
    response=PAGE,
    errors=(400, 404),
)
def list_deliveries(ctx: RequestContext, endpoint: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().deliveries(
        _tid(ctx),
        endpoint,
        status=ctx.query("status"),
        limit=ctx.query("limit"),
        cursor=ctx.query("next"),
    )


@api.route(
    "/webhooks/{endpoint}/deliveries/{delivery}",
    methods=["GET"],
    permission=Permission.READ,
    summary="One delivery: its payload and every attempt (code, latency, first bytes)",
    response=DELIVERY,
    errors=(404,),
)
def get_delivery(ctx: RequestContext, endpoint: str, delivery: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().delivery(_tid(ctx), endpoint, delivery)


@api.route(
    "/webhooks/{endpoint}/deliveries/{delivery}/replay",
    methods=["POST"],
    permission=Permission.ADMIN,
    status=202,
    summary="Attempt one delivery again (same webhook-id, a fresh signature)",
    response=QUEUED,
    errors=(404, 409),
)
def replay_delivery(ctx: RequestContext, endpoint: str, delivery: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().replay(_tid(ctx), endpoint, delivery)


@api.route(
    "/webhooks/{endpoint}/replay",
    methods=["POST"],
    permission=Permission.ADMIN,
    status=202,
    summary="Attempt again every delivery between from and to (optionally of one status), at "
    "most 500, oldest first",
    body={
        "type": "object",
        "required": ["from", "to"],
        "additionalProperties": False,
        "properties": {
            "from": {**_S, "format": "date-time"},
            "to": {**_S, "format": "date-time"},
            "status": {"type": "string", "enum": _STATUSES},
        },
    },
    response=QUEUED,
    errors=(400, 404, 409),
)
def replay_range(ctx: RequestContext, endpoint: str) -> dict[str, Any]:
    return wiring.webhook_endpoints().replay_range(_tid(ctx), endpoint, ctx.json_body())


@api.route(
    "/alerts",
    methods=["GET"],
    permission=Permission.READ,
    summary="Reputation alert rules with their state and current rates, the sending pause, "
    "and the alerts' history",
    response=ALERTS,
)
def get_alerts(ctx: RequestContext) -> dict[str, Any]:
    return wiring.alerts().view(_tid(ctx))


@api.route(
    "/alerts/{rule}",
    methods=["PUT"],
    permission=Permission.ADMIN,
    summary="Change an alert rule (bounce_rate, complaint_rate): threshold, window, minimum "
    "volume, hysteresis, auto-pause, enabled",
    body=RULE_BODY,
    response=ALERTS,
    errors=(400, 404),
)
def put_rule(ctx: RequestContext, rule: str) -> dict[str, Any]:
    return wiring.alerts().set_rule(_tid(ctx), rule, ctx.json_body())


@api.route(
    "/alerts/resume",
    methods=["POST"],
    permission=Permission.ADMIN,
    summary="Resume sending after an alert's auto-pause",
    response=ALERTS,
)
def resume_sending(ctx: RequestContext) -> dict[str, Any]:
    return wiring.alerts().resume(_tid(ctx), str(ctx.membership.actor))
