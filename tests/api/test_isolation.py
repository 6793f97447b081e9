"""Tenant isolation through the API: tenant B, with a valid token, calls every read and write
route on tenant A's messages, recipients, links, suppression entries and cursors and gets nothing
of A's. And every way a token can be wrong is a 401. Tokens are crafted with moto's own Cognito
signing key, so the app checks them against the pool's real JWKS."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from chalicelib.core.tables import AccountModel
from chalicelib.ingest.directory import TenantDirectory
from chalicelib.ingest.pipeline import ingest_envelopes
from chalicelib.ingest.store import EventStore

from devstack.traffic import traffic
from tests.api_fixtures import call, sign_in
from tests.support import BOUND_LONG_AGO


@pytest.fixture(scope="module")
def moto_key() -> Any:
    from moto.utilities.utils import load_resource

    return jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json")).key


@pytest.fixture
def two_tenants(api: Any, moto: str, pool: dict[str, str], settings: Any) -> dict[str, Any]:
    a, b = sign_in(moto, pool), sign_in(moto, pool)
    tenant_a = call(api, "GET", "/account", a).json_body["tenant_id"]
    call(api, "GET", "/account", b)
    account = "".join(secrets.choice("0123456789") for _ in range(12))
    AccountModel(account, tenant_id=tenant_a, bound_at=BOUND_LONG_AGO).save()
    now = datetime.now(UTC)
    envelopes = list(
        traffic(
            account, 40, start=now - timedelta(days=2), span=timedelta(days=1), seed=77, until=now
        )
    )
    ingest_envelopes(envelopes, tenants=TenantDirectory(0), store=EventStore(settings))
    assert call(
        api, "PUT", "/suppression-list/private%40example.com", a, {"reason": "A's own"}
    ).status_code in (200, 201)
    first = envelopes[0]["detail"]["mail"]
    return {"a": a, "b": b, "message_id": first["messageId"], "recipient": first["destination"][0]}


def test_tenant_b_sees_and_changes_nothing_of_tenant_a(
    api: Any, two_tenants: dict[str, Any]
) -> None:
    t = two_tenants
    a, b, mid, who = t["a"], t["b"], t["message_id"], t["recipient"]
    assert call(api, "GET", f"/messages/{mid}", a).status_code == 200  # A sees its own
    assert call(api, "GET", f"/messages/{mid}", b).status_code == 404
    mine = call(api, "GET", f"/recipients/{who}", b).json_body
    assert mine["messages"] == [] and mine["suppressed"] is False
    assert call(api, "GET", f"/events?range=7d&recipient={who}", b).json_body["events"] == []
    assert call(api, "GET", "/events?range=7d", b).json_body["events"] == []
    assert call(api, "GET", "/links?range=7d", b).json_body["total_clicks"] == 0
    assert call(api, "GET", "/stats?range=7d", b).json_body["totals"]["SENT"] == 0
    listed = call(api, "GET", "/suppression-list", b).json_body["items"]
    assert all(i["address"] != "private@example.com" for i in listed)
    assert call(api, "DELETE", "/suppression-list/private%40example.com", b).status_code == 404
    assert call(api, "GET", "/suppression-list/private%40example.com", a).status_code == 200
    cursor = call(api, "GET", "/events?range=7d&limit=3", a).json_body["next"]
    assert (
        cursor and call(api, "GET", f"/events?range=7d&limit=3&next={cursor}", b).status_code == 400
    )


def _token(key: Any, pool: dict[str, str], sub: tuple[str, str], **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://cognito-idp.us-east-1.amazonaws.com/{pool['pool_id']}",
        "sub": sub[0],
        "aud": pool["client_id"],
        "token_use": "id",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
        "cognito:username": sub[1],
    }
    alg = changes.pop("alg", "RS256")
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": "dummy"})


def _sub_of(token: str) -> tuple[str, str]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return str(claims["sub"]), str(claims["cognito:username"])


def test_every_kind_of_bad_token_is_a_401(
    api: Any, moto: str, pool: dict[str, str], moto_key: Any
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = sign_in(moto, pool)
    sub = _sub_of(real)
    good = _token(moto_key, pool, sub)
    ok = call(api, "GET", "/account", good)
    assert ok.status_code == 200, ok.json_body  # the crafting is right
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "==="))
    claims["sub"] = "someone-else"
    tampered_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    unsigned = jwt.encode({"sub": sub[0], "token_use": "id"}, key="", algorithm="none")
    bad = {
        "missing": None,
        "expired by one second": _token(moto_key, pool, sub, exp=int(time.time()) - 1),
        "signed by another key": _token(other_key, pool, sub),
        "another client id": _token(moto_key, pool, sub, aud="another-client"),
        "another issuer": _token(moto_key, pool, sub, iss="https://issuer.example.com/x"),
        "alg none": unsigned,
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
        "id token claiming to be an access token": _token(moto_key, pool, sub, token_use="access"),
        "unknown token_use": _token(moto_key, pool, sub, token_use="refresh"),
    }
    for name, token in bad.items():
        response = call(api, "GET", "/account", token)
        assert response.status_code == 401, name
        assert response.json_body["error"]["code"] == "unauthorized", name
