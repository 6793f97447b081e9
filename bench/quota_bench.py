"""Quota figures: calls to the quota store (the real local Momento server, reached by the real
SDK, counting every RPC it receives) per request, through the real route view of core/api.py
(a small app declared with `Api`, whose authenticator hands out memberships of 10 tenants, people
and API keys, so no DynamoDB or Cognito is involved: what is measured is the quota path alone).

- quota_store_calls_per_request: a realistic mix under the limits, over 3 instances (each its
  own `Quotas` and Momento client): reads, sends of 1-5 recipients (counted with their request
  in one increment), sends refused as bad input (counted after the answer), API-key requests,
  and anonymous sign-ins from 50 addresses. Goal <= 1.
- quota_store_calls_per_request_flood: one tenant sending 5x its limit within one window over the
  3 instances: once an instance has seen the window spent it refuses from memory.
- quota_store_calls_per_key_request_with_key_limit: an API key whose own limit is tighter than
  its tenant's has a second counter (Momento has no atomic increment of two keys): 2.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalice.app import Chalice
from chalice.test import Client
from chalicelib.core.api import Api, RequestContext
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.permissions import Permission, Role
from chalicelib.core.settings import Settings
from chalicelib.core.tables import TenantModel
from chalicelib.quotas.limiter import Quotas
from chalicelib.quotas.limits import Limits
from chalicelib.quotas.momento import momento_counters_from_settings
from chalicelib.tenants.membership import Membership

from devstack.momento_local.server import MomentoLocalServer

CACHE = "sesami-quota-bench"
TENANTS = 10
INSTANCES = 3
MIX_REQUESTS = 3_000
FLOOD_FACTOR = 5
KEY_REQUESTS = 200


class _Clock:
    """All instances on one clock, held inside one window of every counter."""

    def __init__(self) -> None:
        self.now = 1_760_000_000.0

    def __call__(self) -> float:
        return self.now


def _members() -> dict[str, Membership]:
    out: dict[str, Membership] = {}
    for i in range(TENANTS):
        tenant = TenantModel(f"bench-tenant-{i:02d}", external_id="x", created_at=datetime.now(UTC))
        out[f"p{i}"] = Membership(tenant, Role.SENDER)
        out[f"k{i}"] = Membership(tenant, Role.SENDER, key_name=f"deploy-{i}")
    return out


def _app(gate: list[Quotas], members: dict[str, Membership]) -> Chalice:
    """Routes shaped like SESami's: a read, a send (charges_sends), an anonymous sign-in."""

    def authenticate(request: Any) -> Membership:
        return members[request.headers["x-principal"]]

    api = Api(__name__, authenticate, gate=lambda: gate[0])
    public = Api(f"{__name__}.auth", authenticate, per_ip="auth", gate=lambda: gate[0])

    @api.route("/read", methods=["GET"], summary="read", permission=Permission.READ)
    def read(ctx: RequestContext) -> dict[str, Any]:
        return {"ok": True}

    @api.route(
        "/send", methods=["POST"], summary="send", permission=Permission.SEND, charges_sends=True
    )
    def send(ctx: RequestContext) -> dict[str, Any]:
        body = ctx.json_body()
        if not body.get("to"):
            raise InvalidRequest("to is required")  # refused before anything is counted
        assert ctx.quota is not None
        ctx.quota.sends(len(body["to"]))
        return {"sent": len(body["to"])}

    @public.route("/auth/sign-in", methods=["POST"], summary="sign in", public=True)
    def sign_in(ctx: RequestContext) -> dict[str, Any]:
        return {"ok": True}

    app = Chalice(app_name="quota-bench", configure_logs=False)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(public.blueprint)
    return app


def _instances(server: MomentoLocalServer, limits: Limits, clock: _Clock) -> list[Quotas]:
    out = []
    for _ in range(INSTANCES):
        store = momento_counters_from_settings(None, server.endpoint, CACHE)
        out.append(Quotas(limits, store, clock=clock))
    return out


def _mix(client: Client, gate: list[Quotas], instances: list[Quotas], rng: random.Random) -> int:
    json_headers = {"Content-Type": "application/json"}
    statuses: dict[int, int] = {}
    for n in range(MIX_REQUESTS):
        gate[0] = instances[n % INSTANCES]
        tenant = rng.randrange(TENANTS)
        roll = rng.random()
        principal = f"{'k' if roll < 0.1 else 'p'}{tenant}"
        headers = {**json_headers, "x-principal": principal}
        if roll < 0.55:
            response = client.http.get("/read", headers=headers)
        elif roll < 0.8:
            to = [f"r{j}@example.org" for j in range(rng.randint(1, 5))]
            response = client.http.post("/send", headers=headers, body=json.dumps({"to": to}))
        elif roll < 0.85:
            response = client.http.post("/send", headers=headers, body=json.dumps({}))
        else:
            ip = f"198.51.100.{rng.randrange(50)}"
            client_ip(ip)
            response = client.http.post("/auth/sign-in", headers=json_headers, body="{}")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert 429 not in statuses, statuses  # the mix is under every limit
    return MIX_REQUESTS


def client_ip(address: str) -> None:
    from chalice.local import LambdaEventConverter

    LambdaEventConverter.LOCAL_SOURCE_IP = address


def run() -> dict[str, object]:
    from chalicelib.core import api

    # The bench's routes are declared with Api, which records them for SESami's OpenAPI
    # document and gateway: put those records back as they were afterwards.
    docs, public = list(api.ROUTE_DOCS), set(api.PUBLIC_ROUTES)
    try:
        return _run()
    finally:
        api.ROUTE_DOCS[:] = docs
        api.PUBLIC_ROUTES.clear()
        api.PUBLIC_ROUTES.update(public)


def _run() -> dict[str, object]:
    from chalice.local import LambdaEventConverter

    members = _members()
    defaults = Limits.from_settings(Settings())
    rng = random.Random(12)
    clock = _Clock()
    original_ip = LambdaEventConverter.LOCAL_SOURCE_IP
    results: dict[str, object] = {}
    with MomentoLocalServer() as server:
        server.store.create_cache(CACHE)
        try:
            gate: list[Quotas] = []
            instances = _instances(server, defaults, clock)
            gate.append(instances[0])
            with Client(_app(gate, members)) as client:
                requests = _mix(client, gate, instances, rng)
                mix_calls = server.calls["Increment"]
                results["quota_store_calls_per_request"] = round(mix_calls / requests, 3)

                # A flood: one tenant, 5x its limit within the window, over the instances.
                server.reset_calls()
                clock.now += 3_600  # a fresh window for every counter
                flood = defaults.requests_per_minute * FLOOD_FACTOR
                refused = 0
                for n in range(flood):
                    gate[0] = instances[n % INSTANCES]
                    r = client.http.get("/read", headers={"x-principal": "p0"})
                    refused += r.status_code == 429
                assert refused == flood - defaults.requests_per_minute
                results["quota_store_calls_per_request_flood"] = round(
                    server.calls["Increment"] / flood, 3
                )

                # An API key with a limit of its own.
                server.reset_calls()
                clock.now += 3_600
                keyed = replace(defaults, key_requests_per_minute=KEY_REQUESTS * 2)
                gate[0] = _instances(server, keyed, clock)[0]
                for _ in range(KEY_REQUESTS):
                    client.http.get("/read", headers={"x-principal": "k1"})
                results["quota_store_calls_per_key_request_with_key_limit"] = round(
                    server.calls["Increment"] / KEY_REQUESTS, 3
                )
        finally:
            LambdaEventConverter.LOCAL_SOURCE_IP = original_ip
    results["quota_store_calls_mix_requests"] = MIX_REQUESTS
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
