"""A tenant's webhook endpoints, as the API manages them: create (the secret shown once), list,
change, delete, rotate the secret with an overlap, send a test event, read the delivery log,
replay one delivery or a time range. Bounds (invariant 11): MAX_ENDPOINTS per tenant, a URL of
2,048 characters, 20 types, 10 tag filters, 200 characters of description, MAX_REPLAY
deliveries per replay request."""

from __future__ import annotations

import re
import secrets as random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import api, keys
from chalicelib.core.errors import Conflict, InvalidRequest, NotFound
from chalicelib.core.signing import Signer
from chalicelib.core.tables import WebhookDeliveryModel, WebhookEndpointModel
from chalicelib.webhooks import outbound, payloads, secrets
from chalicelib.webhooks.enqueue import Notifier, Route
from chalicelib.webhooks.queue import Task
from chalicelib.webhooks.store import WebhookStore

MAX_ENDPOINTS = 10
MAX_TYPES = 20
MAX_TAGS = 10
MAX_DESCRIPTION = 200
MAX_OVERLAP_HOURS = 168
DEFAULT_OVERLAP_HOURS = 24
MAX_SECRETS = 3
MAX_REPLAY = 500
MAX_PAGE = 100
CURSOR = "webhook-deliveries"
FIELDS = {"url", "event_types", "tags", "enabled", "description"}
STATUSES = ("pending", "retrying", "delivered", "failed")
_ENDPOINT_ID = re.compile(r"^ep_[0-9a-f]{16}$")
_DELIVERY_ID = re.compile(r"^\d{8}T\d{9}Z-[0-9a-f]{32}$")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_OVERLAP = {"field": "overlap_hours"}


def _bad_status() -> InvalidRequest:
    allowed = ", ".join(STATUSES)
    return InvalidRequest(f"status must be one of {allowed}", details={"field": "status"})


def _now() -> datetime:
    return datetime.now(UTC)


def routes_of(endpoints: list[WebhookEndpointModel]) -> list[Route]:
    return [
        Route(
            e.endpoint_id,
            tuple(e.event_types or ()),
            frozenset(e.tags or ()),
        )
        for e in endpoints
        if e.enabled
    ]


def endpoint_view(e: WebhookEndpointModel) -> dict[str, Any]:
    return {
        "id": e.endpoint_id,
        "url": e.url,
        "description": e.description,
        "event_types": list(e.event_types or ()),
        "tags": [pair.replace("=", ":", 1) for pair in (e.tags or ())],
        "enabled": bool(e.enabled),
        "created_at": e.created_at,
        "created_by": e.created_by,
        "updated_at": e.updated_at,
        "failing_since": e.failing_since,
        "disabled_reason": e.disabled_reason,
        "disabled_at": e.disabled_at,
        "secrets": [
            {"id": s["id"], "created_at": s["created_at"], "expires_at": s.get("expires_at")}
            for s in e.secrets
        ],
    }


def delivery_view(d: WebhookDeliveryModel, *, full: bool = False) -> dict[str, Any]:
    last = (d.log or [None])[-1] or {}
    view = {
        "id": d.sk[2:],
        "webhook_id": d.webhook_id,
        "type": d.event_type,
        "status": d.status,
        "attempts": int(d.attempts or 0),
        "created_at": d.created_at,
        "first_attempt_at": d.first_attempt_at,
        "next_attempt_at": d.next_attempt_at,
        "finished_at": d.finished_at,
        "last_code": last.get("code"),
        "last_ms": last.get("ms"),
        "last_error": last.get("error"),
    }
    if full:
        view |= {"log": list(d.log or ()), "payload": d.body}
    return view


class EndpointService:
    def __init__(
        self,
        store: WebhookStore,
        box: secrets.SecretBox,
        notifier: Notifier,
        signer: Signer,
        *,
        policy: outbound.Policy,
        resolver: outbound.Resolver = outbound.system_resolver,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store, self._box, self._notifier, self._signer = store, box, notifier, signer
        self._policy, self._resolver, self._clock = policy, resolver, clock

    # ------------------------------------------------------------------ endpoints

    def endpoints(self, tenant_id: str) -> dict[str, Any]:
        found = sorted(self._store.endpoints(tenant_id), key=lambda e: e.created_at)
        views = [endpoint_view(e) for e in found]
        return {"endpoints": views, "event_types": list(payloads.PATTERNS)}

    def get(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        return endpoint_view(self._endpoint(tenant_id, endpoint_id))

    def create(self, tenant_id: str, body: Mapping[str, Any], actor: str) -> dict[str, Any]:
        fields = self._fields(body, creating=True)
        if len(self._store.endpoints(tenant_id)) >= MAX_ENDPOINTS:
            raise Conflict(f"a tenant has at most {MAX_ENDPOINTS} webhook endpoints")
        now = keys.iso_ms(self._clock())
        endpoint_id = "ep_" + random.token_hex(8)
        secret, entry = self._new_secret(tenant_id, endpoint_id, now)
        endpoint = WebhookEndpointModel(
            keys.webhooks_pk(tenant_id),
            keys.endpoint_sk(endpoint_id),
            endpoint_id=endpoint_id,
            url=fields["url"],
            description=fields.get("description"),
            event_types=fields.get("event_types", ["*"]),
            tags=fields.get("tags"),
            enabled=fields.get("enabled", True),
            secrets=[entry],
            created_at=now,
            created_by=actor,
        )
        if not self._store.create_endpoint(endpoint):
            raise Conflict("try again")  # a 64-bit ID collided
        self._notifier.routes.forget(tenant_id)
        return {**endpoint_view(endpoint), "secret": secret.value}

    def update(
        self, tenant_id: str, endpoint_id: str, body: Mapping[str, Any], actor: str
    ) -> dict[str, Any]:
        endpoint = self._endpoint(tenant_id, endpoint_id)
        fields = self._fields(body, creating=False)
        model = WebhookEndpointModel
        actions = [model.updated_at.set(keys.iso_ms(self._clock()))]
        for name, value in fields.items():
            attr = getattr(model, name)
            actions.append(attr.set(value) if value is not None else attr.remove())
        if fields.get("enabled") is True:  # enabled again by hand: a fresh start
            actions += [
                model.failing_since.remove(),
                model.disabled_reason.remove(),
                model.disabled_at.remove(),
            ]
        if not self._store.update_endpoint(endpoint, actions):
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        self._notifier.routes.forget(tenant_id)
        return endpoint_view(endpoint)

    def delete(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        endpoint = self._endpoint(tenant_id, endpoint_id)
        self._store.delete_endpoint(endpoint)
        self._notifier.routes.forget(tenant_id)
        return {"id": endpoint_id, "deleted": True}

    def rotate(self, tenant_id: str, endpoint_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A new current secret; the old one keeps signing for `overlap_hours` (0: stops now)."""
        endpoint = self._endpoint(tenant_id, endpoint_id)
        hours = body.get("overlap_hours", DEFAULT_OVERLAP_HOURS)
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise InvalidRequest("overlap_hours must be a number", details=_OVERLAP)
        if not 0 <= hours <= MAX_OVERLAP_HOURS:
            raise InvalidRequest(f"overlap_hours must be 0-{MAX_OVERLAP_HOURS}", details=_OVERLAP)
        now_dt = self._clock()
        now, until = keys.iso_ms(now_dt), keys.iso_ms(now_dt + timedelta(hours=float(hours)))
        secret, entry = self._new_secret(tenant_id, endpoint_id, now)
        kept = []
        for old in endpoint.secrets:
            expires = old.get("expires_at")
            if expires is None:
                kept.append({**old, "expires_at": until})
            elif expires > now:
                kept.append(old)
        entries = [entry, *[s for s in kept if s["expires_at"] > now]][:MAX_SECRETS]
        model = WebhookEndpointModel
        actions = [model.secrets.set(entries), model.updated_at.set(now)]
        if not self._store.update_endpoint(endpoint, actions):
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        return {**endpoint_view(endpoint), "secret": secret.value}

    def send_test(self, tenant_id: str, endpoint_id: str) -> dict[str, Any]:
        endpoint = self._endpoint(tenant_id, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("the endpoint is disabled: enable it first")
        message = payloads.sample_event(tenant_id, endpoint_id, self._clock())
        delivery = self._notifier.to_endpoint(tenant_id, endpoint_id, message)
        return {"queued": 1, "delivery_id": delivery, "webhook_id": message.webhook_id}

    # ------------------------------------------------------------------ the delivery log

    def deliveries(
        self,
        tenant_id: str,
        endpoint_id: str,
        *,
        status: str | None,
        limit: str | None,
        cursor: str | None,
    ) -> dict[str, Any]:
        self._endpoint(tenant_id, endpoint_id)
        if status is not None and status not in STATUSES:
            raise _bad_status()
        size = _limit(limit)
        query = {"t": tenant_id, "e": endpoint_id, "s": status}
        after = None
        if cursor:
            data = self._signer.verify(CURSOR, cursor, field="next")
            if {k: data.get(k) for k in query} != query:
                raise InvalidRequest("next is not a valid token", details={"field": "next"})
            after = str(data["a"])
        items, end = self._store.deliveries(
            tenant_id, endpoint_id, start="0", end="~", limit=size, after=after, status=status
        )
        token = self._signer.sign(CURSOR, {**query, "a": end}) if end else None
        return {"items": [delivery_view(d) for d in items], "next": token}

    def delivery(self, tenant_id: str, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        return delivery_view(self._delivery(tenant_id, endpoint_id, delivery_id), full=True)

    def replay(self, tenant_id: str, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        endpoint = self._endpoint(tenant_id, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("the endpoint is disabled: enable it first")
        self._delivery(tenant_id, endpoint_id, delivery_id)
        self._queue_replays(tenant_id, endpoint_id, [delivery_id])
        return {"queued": 1, "delivery_ids": [delivery_id]}

    def replay_range(
        self, tenant_id: str, endpoint_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Replay the deliveries of [from, to] (by the time of what they delivered), optionally
        only those with `status`: at most MAX_REPLAY, oldest first."""
        endpoint = self._endpoint(tenant_id, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("the endpoint is disabled: enable it first")
        start, end = _time(body.get("from"), "from"), _time(body.get("to"), "to")
        if end < start:
            raise InvalidRequest("to is before from", details={"field": "to"})
        status = body.get("status")
        if status is not None and status not in STATUSES:
            raise _bad_status()
        items, more = self._store.deliveries(
            tenant_id,
            endpoint_id,
            start=_bound(start),
            end=_bound(end) + "~",
            limit=MAX_REPLAY,
            newest_first=False,
            status=status,
        )
        ids = [d.sk[2:] for d in items]
        self._queue_replays(tenant_id, endpoint_id, ids)
        return {"queued": len(ids), "delivery_ids": ids, "more": more is not None}

    # ------------------------------------------------------------------ helpers

    def _queue_replays(self, tenant_id: str, endpoint_id: str, ids: list[str]) -> None:
        task = {"k": "deliver", "m": "replay", "t": tenant_id, "e": endpoint_id}
        tasks = [Task(tenant_id, {**task, "d": i}) for i in ids]
        if tasks:
            self._notifier.send(tasks)

    def _endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpointModel:
        found = None
        if _ENDPOINT_ID.match(endpoint_id):
            found = self._store.endpoint(tenant_id, endpoint_id)
        if found is None:
            raise NotFound(f"no webhook endpoint {endpoint_id[:40]!r}")
        return found

    def _delivery(self, tenant_id: str, endpoint_id: str, delivery_id: str) -> WebhookDeliveryModel:
        found = (
            self._store.delivery(tenant_id, endpoint_id, delivery_id)
            if _DELIVERY_ID.match(delivery_id)
            else None
        )
        if found is None:
            raise NotFound(f"no delivery {delivery_id[:60]!r} to this endpoint")
        return found

    def _new_secret(
        self, tenant_id: str, endpoint_id: str, now: str
    ) -> tuple[secrets.Secret, dict[str, Any]]:
        secret, secret_id = secrets.new_secret(), secrets.new_secret_id()
        sealed = self._box.seal(secret, secrets.context(tenant_id, endpoint_id, secret_id))
        return secret, {"id": secret_id, "sealed": sealed, "created_at": now, "expires_at": None}

    def _fields(self, body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field {unknown[0]!r}", details={"field": unknown[0]})
        out: dict[str, Any] = {}
        if creating and "url" not in body:
            raise InvalidRequest("url is required", details={"field": "url"})
        if "url" in body:
            url = body["url"]
            if not isinstance(url, str):
                raise InvalidRequest("url must be a string", details={"field": "url"})
            target = outbound.check_url(url, self._policy)
            outbound.resolve(target, self._policy, self._resolver)  # refused now, not later
            out["url"] = url.strip()
        if "event_types" in body:
            types = body["event_types"]
            if (
                not isinstance(types, list)
                or not 1 <= len(types) <= MAX_TYPES
                or not all(isinstance(t, str) and t in payloads.PATTERNS for t in types)
            ):
                raise InvalidRequest(
                    f"event_types must list 1-{MAX_TYPES} of: {', '.join(payloads.PATTERNS)}",
                    details={"field": "event_types"},
                )
            out["event_types"] = sorted(set(types))
        if "tags" in body:
            out["tags"] = _tags(body["tags"])
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise InvalidRequest("enabled must be true or false", details={"field": "enabled"})
            out["enabled"] = body["enabled"]
        if "description" in body:
            text = body["description"]
            if text is not None and (not isinstance(text, str) or len(text) > MAX_DESCRIPTION):
                raise InvalidRequest(
                    f"description must be text of at most {MAX_DESCRIPTION} characters",
                    details={"field": "description"},
                )
            out["description"] = text or None
        return out


def _tags(raw: Any) -> list[str] | None:
    if raw is None or raw == []:
        return None
    bad = InvalidRequest(
        f"tags must list at most {MAX_TAGS} name:value pairs (letters, digits, _ and -)",
        details={"field": "tags"},
    )
    if not isinstance(raw, list) or len(raw) > MAX_TAGS:
        raise bad
    pairs = set()
    for item in raw:
        name, sep, value = item.partition(":") if isinstance(item, str) else ("", "", "")
        if not sep or not _TAG.match(name) or not _TAG.match(value):
            raise bad
        pairs.add(f"{name}={value}")
    return sorted(pairs)


def _limit(raw: str | None) -> int:
    return api.parse_limit(raw, default=50, maximum=MAX_PAGE)


def _time(raw: Any, field: str) -> datetime:
    if not isinstance(raw, str):
        raise InvalidRequest(f"{field} is required (ISO 8601)", details={"field": field})
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{field} is not an ISO 8601 time", details={"field": field}) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _bound(at: datetime) -> str:
    at = at.astimezone(UTC)
    return at.strftime("%Y%m%dT%H%M%S") + f"{at.microsecond // 1000:03d}Z"
