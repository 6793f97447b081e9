"""The client speaks the API that `GET /openapi.json` documents: every request each method makes
is a documented operation, with only documented query parameters and headers and a body valid
against the documented schema; and the result types name the documented response fields. A
route or a field renamed on the server fails here, not in a customer's program."""

from __future__ import annotations

import json
import re
from typing import Any, get_type_hints

import httpx
import pytest
from jsonschema import Draft7Validator
from sesami_client import Client, types

from tests.clients.fake_api import KEY

BASE = "https://sesami.example.com"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from chalicelib.core import openapi

    import app  # noqa: F401 - declares every route

    return openapi.document()


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    for template, operations in document["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in operations:
            operation: dict[str, Any] = operations[method.lower()]
            return operation
    raise AssertionError(f"{method} {path} is not in /openapi.json")


ANSWERS: dict[str, Any] = {
    "/events": {"events": [], "next": None},
    "/suppression-list": {"items": [], "next": None},
    "/mail/bulk/": {"batch_id": "b", "status": "done", "progress": {"total": 0, "processed": 0}},
}


class Checker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.seen: set[tuple[str, str]] = set()

    def handle(self, request: httpx.Request) -> httpx.Response:
        operation = _operation(self.document, request.method, request.url.path)
        self.seen.add((request.method, request.url.path))
        declared = {(p["in"], p["name"].lower()) for p in operation["parameters"]}
        for name in request.url.params:
            assert ("query", name.lower()) in declared, (request.url.path, name)
        if "idempotency-key" in request.headers:
            assert ("header", "idempotency-key") in declared, request.url.path
        if request.content:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            errors = list(Draft7Validator(schema).iter_errors(json.loads(request.content)))
            assert not errors, (request.url.path, [e.message for e in errors])
        else:
            assert "requestBody" not in operation, request.url.path
        body: dict[str, Any] = next(
            (v for k, v in ANSWERS.items() if request.url.path.startswith(k)), {}
        )
        return httpx.Response(200, json={"message_id": "m", "replayed": False, **body})


def test_every_call_the_client_makes_is_a_documented_operation(document: dict[str, Any]) -> None:
    checker = Checker(document)
    client = Client(KEY, BASE, transport=httpx.MockTransport(checker.handle), sleep=lambda s: None)
    client.account()
    client.send(
        from_={"address": "news@example.com", "name": "News"},
        to=["a@example.org", "B <b@example.org>"],
        cc="c@example.org",
        bcc=["d@example.org"],
        reply_to="r@example.org",
        subject="Hi",
        text="T",
        html="<p>H</p>",
        tags={"campaign": "spring"},
        configuration_set="sesami-events",
        skip_suppressed=True,
    )
    client.send_bulk(
        from_="news@example.com",
        subject="Hi {{name}}",
        text="T",
        html="<p>{{name}}</p>",
        recipients=["a@example.org", {"to": "b@example.org", "variables": {"name": "B", "n": 2}}],
        reply_to="r@example.org",
        tags={"campaign": "spring"},
        configuration_set="sesami-events",
    )
    client.wait_for_batch("b1")
    list(client.events(status="BOUNCED,SENT", recipient="a@example.org", tag="k:v", range="7d"))
    list(client.events(from_="2026-05-01T00:00:00Z", to="2026-05-02T00:00:00Z", page_size=5))
    list(client.events_csv(since="36h"))
    client.message("m1")
    client.message("m1", page_size=500, cursor="c")
    list(client.message_events("m1", page_size=50))
    client.recipient("a@example.org", since="30d", limit=5)
    client.links(range="30d", top=3)
    client.stats(range="24h", interval="hour")
    list(client.suppressions(q="a", reason="BOUNCE", removed=True, page_size=10))
    client.suppression("a@example.org")
    client.add_suppression("a@example.org", "why")
    client.remove_suppression("a@example.org", "why")
    assert len({m for m, _ in checker.seen}) == 4  # GET, POST, PUT, DELETE were all checked


@pytest.mark.parametrize(
    ("typed", "method", "path", "client_fields"),
    [
        (types.Event, "get", "/events", set()),
        (types.MailSent, "post", "/mail", {"idempotency_key", "replayed"}),
        (types.Batch, "get", "/mail/bulk/{batch_id}", {"idempotency_key", "replayed"}),
        (types.SuppressionPage, "get", "/suppression-list", set()),
        (types.Suppression, "put", "/suppression-list/{email}", set()),
        (types.Account, "get", "/account", set()),
        (types.Message, "get", "/messages/{message_id}", set()),
        (types.MessageEvent, "get", "/messages/{message_id}", set()),
        (types.Opens, "get", "/messages/{message_id}", set()),
        (types.Clicks, "get", "/messages/{message_id}", set()),
        (types.Bounded, "get", "/messages/{message_id}", set()),
    ],
)
def test_result_types_name_the_documented_response_fields(
    document: dict[str, Any], typed: type, method: str, path: str, client_fields: set[str]
) -> None:
    operation = document["paths"][path][method]
    success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
    schema = success["content"]["application/json"]["schema"]
    if path == "/events":
        schema = schema["properties"]["events"]["items"]
    part = {"MessageEvent": "events", "Opens": "opens", "Clicks": "clicks", "Bounded": "bounded"}
    if typed.__name__ in part and path.startswith("/messages"):
        schema = schema["properties"][part[typed.__name__]]
        schema = schema.get("items", schema)
    documented = set(schema["properties"])
    assert set(get_type_hints(typed)) - client_fields == documented
