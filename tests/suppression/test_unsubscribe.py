"""Unsubscribe links (RFC 8058 one-click POST, and a confirmation page on GET) through Chalice's
test client, with tokens signed by the app's own signer and storage on DynamoDB Local."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client
from chalicelib.core import wiring
from chalicelib.core.signing import Signer

from tests.api_fixtures import call, sign_in

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ONE_CLICK = "List-Unsubscribe=One-Click"


def tenant(api: Client, moto: str, pool: dict[str, str]) -> tuple[str, str]:
    token = sign_in(moto, pool)
    return token, call(api, "GET", "/account", token).json_body["tenant_id"]


def link(tenant_id: str, address: str) -> str:
    """What the bulk sender puts in List-Unsubscribe."""
    return "/unsubscribe/" + wiring.signer().sign("unsubscribe", {"t": tenant_id, "r": address})


def one_click(api: Client, path: str, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", FORM)
    kwargs.setdefault("body", ONE_CLICK)
    return api.http.post(path, **kwargs)


def entry(api: Client, token: str, address: str) -> Any:
    return call(api, "GET", "/suppression-list/" + quote(address, safe=""), token)


def listed(api: Client, token: str, query: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = call(api, "GET", f"/suppression-list?{query}", token).json_body[
        "items"
    ]
    return items


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (FORM, ONE_CLICK),
        ({}, ""),
        ({"Content-Type": "multipart/form-data; boundary=xyz"}, "--xyz--"),
        ({"Content-Type": "text/plain"}, ONE_CLICK),
    ],
)
def test_one_click_post_unsubscribes_without_a_login(
    api: Client, moto: str, pool: dict[str, str], headers: dict[str, str], body: str
) -> None:
    token, tenant_id = tenant(api, moto, pool)
    response = one_click(api, link(tenant_id, "Reader@Example.com"), headers=headers, body=body)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"reader@example.com" in response.body
    [item] = listed(api, token)
    assert (item["address"], item["reason"]) == ("reader@example.com", "UNSUBSCRIBED")
    assert listed(api, token, "reason=UNSUBSCRIBED") == [item]
    [change] = entry(api, token, "reader@example.com").json_body["history"]
    assert (change["by"], change["action"]) == ("recipient", "unsubscribed")


def test_unsubscribing_twice_changes_nothing_the_second_time(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id = tenant(api, moto, pool)
    path = link(tenant_id, "twice@example.com")
    first = one_click(api, path)
    second = one_click(api, path)
    assert first.status_code == second.status_code == 200
    shown = entry(api, token, "twice@example.com").json_body
    assert len(shown["history"]) == 1 and shown["reasons"] == ["UNSUBSCRIBED"]


def test_get_shows_a_page_that_posts_and_does_not_unsubscribe(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id = tenant(api, moto, pool)
    path = link(tenant_id, "a&b@example.com")
    response = api.http.get(path)
    assert response.status_code == 200
    page = response.body.decode()
    assert response.headers["Content-Type"].startswith("text/html")
    assert '<form method="post" action="">' in page and 'value="One-Click"' in page
    assert "a&amp;b@example.com" in page and "a&b@" not in page  # escaped
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert listed(api, token) == []  # a mail scanner following the link changes nothing
    assert one_click(api, path).status_code == 200
    assert [i["address"] for i in listed(api, token)] == ["a&b@example.com"]


def bad_tokens(tenant_id: str) -> list[str]:
    signer = wiring.signer()
    good = signer.sign("unsubscribe", {"t": tenant_id, "r": "x@example.com"})
    body, mac = good.split(".")
    return [
        "garbage",
        f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}",  # tampered signature
        f"{'A' if body[0] != 'A' else 'B'}{body[1:]}.{mac}",  # tampered payload
        Signer(secrets.token_bytes(32)).sign("unsubscribe", {"t": tenant_id, "r": "x@example.com"}),
        signer.sign("suppression-cursor", {"t": tenant_id, "r": "x@example.com"}),  # other purpose
        signer.sign("unsubscribe", {"t": tenant_id}),  # no address
        signer.sign("unsubscribe", {"t": tenant_id, "r": "not an address"}),
        signer.sign("unsubscribe", {"r": "x@example.com"}),  # no tenant
    ]


def test_a_bad_token_is_a_400_page_on_get_and_a_400_error_on_post(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id = tenant(api, moto, pool)
    for bad in bad_tokens(tenant_id):
        page = api.http.get(f"/unsubscribe/{bad}")
        assert page.status_code == 400, bad
        assert page.headers["Content-Type"].startswith("text/html")
        assert b"not valid" in page.body
        posted = one_click(api, f"/unsubscribe/{bad}")
        assert posted.status_code == 400, bad
        assert posted.json_body["error"]["code"] == "invalid_request"
    assert listed(api, token) == []


def test_unsubscribing_an_address_suppressed_for_another_reason_keeps_that_reason(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id = tenant(api, moto, pool)
    call(api, "PUT", "/suppression-list/m%40example.com", token, {"reason": "by hand"})
    assert one_click(api, link(tenant_id, "m@example.com")).status_code == 200
    shown = entry(api, token, "m@example.com").json_body
    assert shown["reason"] == "MANUAL" and shown["reasons"] == ["MANUAL", "UNSUBSCRIBED"]
    assert [h["action"] for h in shown["history"]] == ["added", "unsubscribed"]
    assert [i["address"] for i in listed(api, token, "reason=UNSUBSCRIBED")] == ["m@example.com"]


def test_unsubscribing_after_a_removal_suppresses_again_with_the_whole_history(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token, tenant_id = tenant(api, moto, pool)
    call(api, "PUT", "/suppression-list/r%40example.com", token, {"reason": "by hand"})
    call(api, "DELETE", "/suppression-list/r%40example.com", token)
    assert one_click(api, link(tenant_id, "r@example.com")).status_code == 200
    shown = entry(api, token, "r@example.com").json_body
    assert shown["suppressed"] is True and shown["reason"] == "UNSUBSCRIBED"
    assert [h["action"] for h in shown["history"]] == ["added", "removed", "unsubscribed"]


def test_a_link_for_one_tenant_never_touches_another(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    first, first_id = tenant(api, moto, pool)
    second, _ = tenant(api, moto, pool)
    assert one_click(api, link(first_id, "shared@example.com")).status_code == 200
    assert [i["address"] for i in listed(api, first)] == ["shared@example.com"]
    assert listed(api, second) == []


def test_the_unsubscribe_routes_are_public_and_documented_as_html() -> None:
    from chalicelib.core.api import PUBLIC_ROUTES, ROUTE_DOCS

    import app  # registers every route

    assert app.app.routes["/unsubscribe/{token}"]
    assert {("GET", "/unsubscribe/{token}"), ("POST", "/unsubscribe/{token}")} <= PUBLIC_ROUTES
    docs = [d for d in ROUTE_DOCS if d.path == "/unsubscribe/{token}"]
    assert {d.method for d in docs} == {"GET", "POST"}
    assert all(d.content_type == "text/html" for d in docs)
