"""Reading a tenant's history: events, one message, one recipient, links, statistics.

Route modules import their services inside the handlers: importing `app.py` (every Lambda cold
start) then loads neither PynamoDB nor the query code until a request needs them."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalice.app import Response

from chalicelib.core import addresses, csv_cells, wiring
from chalicelib.core.api import Api, Param, RequestContext
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.permissions import Permission
from chalicelib.events.status import Status
from chalicelib.history.schemas import MESSAGE

if TYPE_CHECKING:
    from chalicelib.core.tables import EventModel
    from chalicelib.history.event_list import EventQuery, TimeRange

api = Api(__name__, wiring.authenticate)

_S = {"type": "string"}
# events/engagement.py's classes (not imported: the module loads when a request needs it).
ENGAGEMENT_CLASSES = ("human", "apple_privacy", "image_proxy", "scanner", "unknown")
RANGE_PARAMS = (
    Param("from", {**_S, "format": "date-time"}, description="start (ISO 8601)"),
    Param("to", {**_S, "format": "date-time"}, description="end (ISO 8601), default now"),
    Param(
        "range",
        {"type": "string", "enum": ["24h", "7d", "30d", "90d", "1y"]},
        description="a preset instead of from/to (default 7d)",
    ),
)
EVENT = {
    "type": "object",
    "properties": {
        "id": _S,
        "message_id": _S,
        "type": _S,
        "status": _S,
        "recipient": {**_S, "nullable": True},
        "at": _S,
        "subject": {**_S, "nullable": True},
        "from": {**_S, "nullable": True},
        "tags": {"type": "object"},
        "detail": {"type": "object"},
        "engagement": {
            **_S,
            "nullable": True,
            "enum": [*ENGAGEMENT_CLASSES, None],
            "description": "opens and clicks: who made it, as classified when the event "
            "arrived (GET /messages/{id} gives the final verdict)",
        },
    },
}
CSV_COLUMNS = [
    "at",
    "status",
    "type",
    "recipient",
    "message_id",
    "subject",
    "from",
    "tags",
    "detail",
    "engagement",
]
MAX_CSV_BYTES = 5_000_000  # under Lambda's 6 MB response limit
_TWO_DAYS = timedelta(days=2)


def _range(ctx: RequestContext) -> TimeRange:
    from chalicelib.history.event_list import TimeRange

    return TimeRange.parse(
        ctx.query("from"),
        ctx.query("to"),
        ctx.query("range"),
        now=datetime.now(UTC),
        retention_days=wiring.settings().retention_days,
    )


def _event_view(row: EventModel) -> dict[str, Any]:
    return {
        "id": f"{row.key()}:{row.sk[-2:]}",
        "message_id": row.message_id,
        "type": row.kind(),
        "status": row.status,
        "recipient": row.address(),
        "at": row.at(),
        "subject": row.subject,
        "from": row.source,
        "tags": row.tag_map(),
        # (rows keep their class once, as `engagement`; the detail showed it too)
        "detail": {
            **(row.detail or {}),
            **({"engagement": row.engagement} if row.engagement else {}),
        },
        "engagement": row.engagement,
    }


def _event_query(ctx: RequestContext) -> EventQuery:
    from chalicelib.core.tables import indexed_tags_covering
    from chalicelib.history.event_list import EventQuery, parse_statuses

    params = ctx.request.query_params
    statuses = parse_statuses(params.getlist("status") if params and "status" in params else [])
    tag = None
    if (raw_tag := ctx.query("tag")) is not None:
        name, sep, value = raw_tag.partition(":")
        if not sep or not name or not value:
            raise InvalidRequest("tag must be name:value", details={"field": "tag"})
        tag = (name, value)
    recipient = ctx.query("recipient")
    if recipient is not None and ("@" not in recipient or len(recipient) > 320):
        raise InvalidRequest("recipient is not an email address", details={"field": "recipient"})
    engagement = _engagement_filter(
        params.getlist("engagement") if params and "engagement" in params else []
    )
    if engagement and not statuses:  # only opens and clicks have a class: read only those
        statuses = [Status.OPENED, Status.CLICKED]
    tenant = ctx.tenant
    time_range = _range(ctx)
    return EventQuery(
        tenant_id=tenant.tenant_id,
        shards=int(tenant.write_shards or 1),
        range=time_range,
        statuses=tuple(statuses),
        recipient=addresses.key(recipient) if recipient else None,
        tag=tag,
        engagement=engagement,
        indexed_tags=indexed_tags_covering(tenant, time_range.start),
    )


def _engagement_filter(raw: list[str]) -> tuple[str, ...]:
    wanted: list[str] = []
    for chunk in raw:
        for name in chunk.split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in ENGAGEMENT_CLASSES:
                raise InvalidRequest(
                    f"engagement {name[:40]!r} is not one of {', '.join(ENGAGEMENT_CLASSES)}",
                    details={"field": "engagement"},
                )
            if name not in wanted:
                wanted.append(name)
    return tuple(wanted)


@api.route(
    "/events",
    methods=["GET"],
    permission=Permission.READ,
    summary="The tenant's events, newest first, filtered by time, status, recipient and tag",
    params=(
        *RANGE_PARAMS,
        Param(
            "status",
            {"type": "string"},
            description=f"one or several (comma-separated or repeated) of "
            f"{', '.join(s.value for s in Status)}",
        ),
        Param("recipient", _S),
        Param("tag", _S, description="name:value"),
        Param(
            "engagement",
            {"type": "string"},
            description="opens and clicks of one or several classes (comma-separated or "
            f"repeated) of {', '.join(ENGAGEMENT_CLASSES)}, as classified on arrival; "
            "without status, implies status=OPENED,CLICKED",
        ),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
        Param("next", _S, description="the opaque cursor of the previous page"),
        Param("format", {"type": "string", "enum": ["json", "csv"]}),
    ),
    response={
        "type": "object",
        "properties": {
            "events": {"type": "array", "items": EVENT},
            "next": {**_S, "nullable": True},
        },
    },
    other_content={
        "text/csv": {
            **_S,
            "description": "with format=csv: a header line, then one line per event; header "
            "X-SESami-Next carries the cursor when more than one response holds",
        }
    },
)
def get_events(ctx: RequestContext) -> Any:
    from chalicelib.history.event_list import list_events, parse_limit

    query = _event_query(ctx)
    signer = wiring.signer()
    fmt = ctx.query("format") or "json"
    if fmt == "csv":
        return _csv(query, signer, ctx.query("next"))
    if fmt != "json":
        raise InvalidRequest("format must be json or csv", details={"field": "format"})
    page = list_events(
        query, limit=parse_limit(ctx.query("limit")), signer=signer, cursor=ctx.query("next")
    )
    return {"events": [_event_view(r) for r in page.items], "next": page.next_cursor}


def _csv(query: EventQuery, signer: Any, cursor: str | None) -> Response:
    from chalicelib.history.event_list import list_events

    buffer = io.StringIO()
    writer = csv_cells.writer(buffer)  # no cell can become a spreadsheet formula
    writer.writeheader(CSV_COLUMNS)
    while True:
        page = list_events(query, limit=100, signer=signer, cursor=cursor)
        for row in page.items:
            view = _event_view(row)
            writer.writerow(
                [
                    view[c] if c not in ("tags", "detail") else json.dumps(view[c])
                    for c in CSV_COLUMNS
                ]
            )
        cursor = page.next_cursor
        if cursor is None or buffer.tell() > MAX_CSV_BYTES:
            break
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="sesami-events.csv"',
    }
    if cursor is not None:  # more than one response holds: continue with ?format=csv&next=...
        headers["X-SESami-Next"] = cursor
    return Response(body=buffer.getvalue(), status_code=200, headers=headers)


@api.route(
    "/messages/{message_id}",
    methods=["GET"],
    permission=Permission.READ,
    summary="One message: summary, recipients, opens, clicks per link, its timeline a page at "
    "a time (oldest first; at most 256 KB a response), and what SESami sent (`content`, on the "
    "first page, while the tenant's content retention keeps it)",
    params=(
        Param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": 500},
            description="events "
            "of the timeline per page (default 100; fewer if the page would pass 256 KB)",
        ),
        Param("next", _S, description="the opaque cursor of the previous page"),
    ),
    response=MESSAGE,
    errors=(400, 404),
)
def get_message(ctx: RequestContext, message_id: str) -> dict[str, Any]:
    from chalicelib.history import timeline
    from chalicelib.history.event_list import parse_limit

    limit = parse_limit(
        ctx.query("limit"), default=timeline.DEFAULT_LIMIT, maximum=timeline.MAX_LIMIT
    )
    cursor = ctx.query("next")
    detail = timeline.message_detail(
        ctx.tenant.tenant_id,
        message_id,
        signer=wiring.signer(),
        limit=limit,
        cursor=cursor,
    )
    if cursor is None:  # the content once, with the first page
        detail["content"] = wiring.content_service().view(ctx.tenant, message_id)
    return detail


@api.route(
    "/recipients/{email}",
    methods=["GET"],
    permission=Permission.READ,
    summary="Every message to one address, what they did with it, and whether it is suppressed",
    params=(*RANGE_PARAMS, Param("limit", {"type": "integer", "minimum": 1, "maximum": 100})),
    response={"type": "object"},
)
def get_recipient(ctx: RequestContext, email: str) -> dict[str, Any]:
    from urllib.parse import unquote

    from chalicelib.history import reports
    from chalicelib.history.event_list import TimeRange, parse_limit

    address = unquote(email)
    if "@" not in address or len(address) > 320:
        raise InvalidRequest("not an email address", details={"field": "email"})
    span = (
        _range(ctx)
        if (ctx.query("from") or ctx.query("to") or ctx.query("range"))
        else TimeRange.parse(
            None,
            None,
            "1y",
            now=datetime.now(UTC),
            retention_days=wiring.settings().retention_days,
        )
    )
    return reports.recipient_history(
        ctx.tenant.tenant_id, address, span, parse_limit(ctx.query("limit"))
    )


@api.route(
    "/links",
    methods=["GET"],
    permission=Permission.READ,
    summary="Clicks per link in a range (counted per UTC day), top N",
    params=(*RANGE_PARAMS, Param("top", {"type": "integer", "minimum": 1, "maximum": 100})),
    response={"type": "object"},
)
def get_links(ctx: RequestContext) -> dict[str, Any]:
    from chalicelib.history import reports
    from chalicelib.history.event_list import parse_limit

    tenant = ctx.tenant
    top = parse_limit(ctx.query("top"), default=10)
    return reports.top_links(tenant.tenant_id, int(tenant.write_shards or 1), _range(ctx), top)


@api.route(
    "/stats",
    methods=["GET"],
    permission=Permission.READ,
    summary="Counts per status per hour or day, totals, bounce and complaint rates against "
    "SES's lines",
    params=(*RANGE_PARAMS, Param("interval", {"type": "string", "enum": ["hour", "day"]})),
    response={"type": "object"},
)
def get_stats(ctx: RequestContext) -> dict[str, Any]:
    from chalicelib.history import reports

    span = _range(ctx)
    interval = ctx.query("interval") or ("hour" if span.end - span.start <= _TWO_DAYS else "day")
    if interval not in ("hour", "day"):
        raise InvalidRequest("interval must be hour or day", details={"field": "interval"})
    tenant = ctx.tenant
    return reports.stats(tenant.tenant_id, int(tenant.write_shards or 1), span, interval)
