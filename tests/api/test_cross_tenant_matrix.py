"""The other-tenant half of the route matrix (invariants 7 and 9): tenant A makes a real
resource for every path parameter of the private routes; tenant B's admin, sender and viewer,
and B's API keys of every scope, call every such route with A's real IDs. A caller the route's
permission refuses gets a 403 naming it; an allowed caller gets a 404, or, on the routes keyed
by an address (tenant-scoped by nature: B's own view of that address), an answer holding
nothing of A's; every status is one the route documents. Then A reads every resource again and
finds it as it was. The routes come from the app's own OpenAPI document: a new route with a
path parameter this test cannot fill fails it until the test learns to make its resource.

test_mail's fixtures are used by name (a connected tenant: what reaches SES, inline bulk
workers); the webhook test event is delivered once to a local receiver and never again."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from chalice.test import Client

from tests.api_fixtures import call, sign_in
from tests.lifecycle.test_routes import sent_now
from tests.sending import test_mail
from tests.sending.test_mail import SENDER, Tenant
from tests.tenants.test_roles import _join
from tests.webhooks.support import receiver

pytestmark = pytest.mark.ddb_local

wire, sender_identity, sent, runner = (
    test_mail.wire,
    test_mail.sender_identity,
    test_mail.sent,
    test_mail.runner,
)

# Every path parameter of a private route, and (for `email`) every route prefix it sits under.
KNOWN_PARAMETERS = {
    "message_id",
    "email",
    "job_id",
    "batch_id",
    "template_id",
    "version",
    "key_id",
    "sub",
    "endpoint",
    "delivery",
    "rule",
}
EMAIL_OF = {  # the route prefix -> which of A's addresses it takes
    "/recipients/": "recipient",
    "/suppression-list/": "suppressed",
    "/account/invitations/": "invited",
}
# Routes keyed by an address or a rule name: B's own view of the same name, never A's record.
BY_NAME = ("/recipients/{email}", "/suppression-list/{email}", "/alerts/{rule}")


def _private_routes() -> list[tuple[str, str, str, dict[str, Any]]]:
    from chalicelib.core import openapi

    import app  # noqa: F401  (declares every route)

    return [
        (method.upper(), path, op["x-sesami-permission"], op)
        for path, ops in openapi.document()["paths"].items()
        for method, op in ops.items()
        if "x-sesami-permission" in op
    ]


def _bodies(a: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """A valid body for each writing route, so an allowed caller is refused for the resource
    (404), not for the body (400)."""
    return {
        ("PUT", "/templates/{template_id}"): {
            "subject": "B was here",
            "text": "B was here",
            "revision": a["template_revision"],
        },
        ("PUT", "/webhooks/{endpoint}"): {"description": "B was here"},
        ("POST", "/webhooks/{endpoint}/secret"): {"overlap_hours": 0},
        ("POST", "/webhooks/{endpoint}/replay"): {
            "from": "2020-01-01T00:00:00Z",
            "to": "2100-01-01T00:00:00Z",
        },
        ("PUT", "/account/users/{sub}"): {"role": "admin"},
        ("PUT", "/suppression-list/{email}"): {"reason": "B's own"},
        ("PUT", "/alerts/{rule}"): {"threshold": 0.5, "min_volume": 5},
        ("POST", "/templates/{template_id}/preview"): {"variables": {"first_name": "B"}},
    }


@pytest.fixture
def tenant_a(
    api: Client, moto: str, pool: dict[str, str], webhook_queue: Any
) -> Iterator[dict[str, Any]]:
    """Tenant A, connected, with one real resource behind every path parameter."""
    from chalicelib.core import wiring

    # Webhook URLs on loopback, as on the local stack (a receiver there answers the test event).
    wiring.use(replace(wiring.settings(), webhooks_to_loopback=True))
    owner = Tenant(api, moto, pool)
    token = owner.token
    marker = f"A-private-{uuid.uuid4().hex[:10]}"

    def ok(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = call(api, method, path, token, body)
        assert response.status_code == status, (method, path, response.json_body)
        return response.json_body

    # A's addresses carry their own token, not the marker: B's answer on an address names it.
    tag = uuid.uuid4().hex[:10]
    recipient = f"r-{tag}@example.org"
    message_id = f"m-{uuid.uuid4().hex}"
    assert wiring.ingest(
        [
            sent_now("send", message_id, alice=recipient),
            sent_now("delivery", message_id, alice=recipient),
        ]
    ).counts() == {"stored": 2}
    sent_one = ok(
        "POST", "/mail", {"from": SENDER, "to": recipient, "subject": marker, "text": marker}
    )
    suppressed = f"sup-{tag}@example.org"
    ok("PUT", f"/suppression-list/{suppressed}", {"reason": marker})
    erased = call(api, "DELETE", f"/recipients/gone-{tag}%40example.org", token)
    assert erased.status_code in (200, 202), erased.json_body
    batch = ok(
        "POST",
        "/mail/bulk",
        {
            "from": SENDER,
            "template": {"subject": marker, "text": "Hi {{name}}"},
            "recipients": [{"to": recipient, "variables": {"name": "Ann"}}],
        },
        status=202,
    )
    template = ok(
        "POST", "/templates", {"name": marker, "subject": marker, "text": "Hi {{name}}"}, status=201
    )
    version = ok("POST", f"/templates/{template['template_id']}/versions", status=201)
    key = ok("POST", "/api-keys", {"name": marker, "scope": "read"}, status=201)
    _, member = _join(api, moto, pool, token, "viewer")
    invited = f"inv-{tag}@example.org"
    ok("POST", "/account/users", {"email": invited, "role": "sender"}, status=201)
    with receiver() as hook:
        endpoint = ok("POST", "/webhooks", {"url": hook.url, "description": marker}, status=201)
        test = ok("POST", f"/webhooks/{endpoint['id']}/test", status=202)
        for task in webhook_queue.due():
            wiring.delivery_worker().handle(task.body)
    assert len(hook.requests) == 1
    ok("PUT", "/alerts/bounce_rate", {"threshold": 0.0777, "min_volume": 777})
    users = ok("GET", "/account/users")["users"]
    sub = next(u["sub"] for u in users if u["role"] == "viewer")
    yield {
        "token": token,
        "tenant_id": owner.id,
        "marker": marker,
        "key": key["key"],
        "member": member,
        "template_revision": ok("GET", f"/templates/{template['template_id']}")["draft"].get(
            "revision", 1
        ),
        "values": {
            "message_id": sent_one["message_id"],
            "ingested_message_id": message_id,
            "recipient": recipient,
            "suppressed": suppressed,
            "invited": invited,
            "job_id": erased.json_body["job_id"],
            "batch_id": batch["batch_id"],
            "template_id": template["template_id"],
            "version": str(version["version"]),
            "key_id": key["id"],
            "sub": sub,
            "endpoint": endpoint["id"],
            "delivery": test["delivery_id"],
            "rule": "bounce_rate",
        },
    }
    wiring.use(replace(wiring.settings(), webhooks_to_loopback=False))


@pytest.fixture
def tenant_b(api: Client, moto: str, pool: dict[str, str]) -> list[tuple[str, Any, str]]:
    """B's admin, sender and viewer, and B's keys of every scope: (who, role, credential)."""
    from chalicelib.core.permissions import SCOPES, Role

    admin = sign_in(moto, pool)
    assert call(api, "GET", "/account", admin).status_code == 200
    callers = [("B role admin", Role("admin"), admin)]
    for role in ("sender", "viewer"):
        callers.append((f"B role {role}", Role(role), _join(api, moto, pool, admin, role)[1]))
    for scope in SCOPES:
        made = call(api, "POST", "/api-keys", admin, {"name": f"B {scope}", "scope": scope})
        assert made.status_code == 201, made.json_body
        callers.append((f"B key {scope}", SCOPES[scope], made.json_body["key"]))
    return callers


def _concrete(path: str, values: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name != "email":
            return values[name]
        prefix = next(p for p in EMAIL_OF if path.startswith(p))
        return values[EMAIL_OF[prefix]].replace("@", "%40")

    return re.sub(r"\{(\w+)\}", fill, path)


VOLATILE = ("last_seen_at", "preview_url")  # A's own activity; a link signed at each read


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _snapshot(api: Client, a: dict[str, Any], readers: list[str]) -> dict[str, Any]:
    """What A reads of every resource."""
    seen = {}
    for path in readers:
        response = call(api, "GET", path, a["token"])
        assert response.status_code == 200, (path, response.json_body)
        seen[path] = _stable(response.json_body)
    return seen


def test_another_tenants_callers_find_nothing_of_a_and_change_nothing(
    api: Client,
    tenant_a: dict[str, Any],
    tenant_b: list[tuple[str, Any, str]],
    webhook_queue: Any,
) -> None:
    from chalicelib.core.permissions import Permission, allows

    a, values = tenant_a, tenant_a["values"]
    routes = [r for r in _private_routes() if "{" in r[1]]
    parameters = {name for _, path, _, _ in routes for name in re.findall(r"\{(\w+)\}", path)}
    assert parameters == KNOWN_PARAMETERS  # a new one: teach this test to make its resource
    for _, path, _, _ in routes:
        if "{email}" in path:
            assert any(path.startswith(p) for p in EMAIL_OF), path

    readers = [_concrete(p, values) for m, p, _, _ in routes if m == "GET"]
    readers += [f"/messages/{values['ingested_message_id']}", "/api-keys", "/account/users"]
    readers += ["/alerts", "/webhooks", "/templates", "/suppression-list"]
    before = _snapshot(api, a, readers)
    # Each resource is really there for A (not a 404 the matrix would mistake for isolation).
    assert before[f"/recipients/{values['recipient'].replace('@', '%40')}"]["messages"]
    assert a["marker"] in json.dumps(
        before[f"/suppression-list/{values['suppressed']}".replace("@", "%40")]
    )
    mine = {values[k] for k in ("message_id", "ingested_message_id", "job_id", "batch_id")}
    mine |= {values[k] for k in ("template_id", "key_id", "sub", "endpoint", "delivery")}
    mine |= {a["marker"], a["tenant_id"]}

    # Every read without a path parameter (lists, stats, the account), before B names any of
    # A's addresses itself: nothing of A's at all, not even an address.
    everything = mine | {values[k] for k in ("recipient", "suppressed", "invited")}
    lists = [r for r in _private_routes() if "{" not in r[1] and r[0] == "GET"]
    for method, path, permission, op in lists:
        for who, role, credential in tenant_b:
            response = call(api, method, path, credential)
            status, answer = response.status_code, response.json_body
            where = (method, path, who, status, answer)
            assert str(status) in op["responses"], where
            if not allows(role, Permission(permission)):
                assert status == 403, where
            else:
                assert status not in (401, 403), where
                assert not [m for m in everything if m in json.dumps(answer)], where
    assert len(lists) >= 15

    def queued_for_a() -> list[Any]:
        """Tasks of A's tenant or naming A's endpoint, whoever queued them."""
        return [
            t
            for _, t in webhook_queue.pending
            if t.tenant_id == a["tenant_id"] or values["endpoint"] in json.dumps(t.body)
        ]

    queued_before = queued_for_a()
    bodies = _bodies(a)
    checked = 0
    for method, path, permission, op in routes:
        concrete = _concrete(path, values)
        body = bodies.get((method, path), None if method == "GET" else {})
        for who, role, credential in tenant_b:
            response = call(api, method, concrete, credential, body)
            status, answer = response.status_code, response.json_body
            where = (method, path, who, status, answer)
            # Nothing of A's but what the caller asked for (a 404 may echo the ID it was given).
            leaked = [m for m in mine if m in json.dumps(answer) and m not in concrete]
            assert str(status) in op["responses"], where
            if not allows(role, Permission(permission)):
                assert status == 403, where
                assert answer["error"]["details"]["permission"] == permission, where
            elif path in BY_NAME:
                assert status not in (401, 403), where
                assert not leaked and "0.0777" not in json.dumps(answer), where
            else:
                assert status == 404 and not leaked, where
            checked += 1
    assert checked == 6 * len(routes) and len(routes) >= 25

    after = _snapshot(api, a, readers)
    assert after == before
    # No test event, replay or rotation was queued for A (B's own alert evaluation may be).
    assert queued_for_a() == queued_before
    # A's key and A's member still work: B removed and revoked nothing.
    assert call(api, "GET", "/account", a["key"]).status_code == 200
    assert call(api, "GET", "/events", a["member"]).status_code == 200
