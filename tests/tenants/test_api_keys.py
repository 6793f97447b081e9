"""API keys (invariant 10) through the API and the gateway's authorizer: shown once and stored
only as a hash bound to the tenant, listed without a secret, working on private routes with
their scope's role, revoked at once, every bad key the same 401, the last use written at most
once a minute, and never in a log line. The route x scope matrix is in
tests/tenants/test_roles.py."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.app import AuthRequest
from chalice.test import Client
from chalicelib.core import keys, wiring
from chalicelib.core.tables import ApiKeyModel, TenantModel
from chalicelib.tenants import api_keys
from chalicelib.tenants.api_keys import MALFORMED, REFUSED, ApiKeyService
from chalicelib.tenants.authorizer import Refused
from chalicelib.tenants.membership import Membership
from pynamodb.connection import base as pynamodb_base

from tests.api_fixtures import call, sign_in

KEY_SHAPE = re.compile(r"^sk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")
METHOD_ARN = "arn:aws:execute-api:eu-west-1:444455556666:k3x9q2w1z0/api/GET/events"


def create(api: Client, token: str, scope: str = "send", **extra: Any) -> dict[str, Any]:
    response = call(
        api, "POST", "/api-keys", token, {"name": f"{scope} bot", "scope": scope, **extra}
    )
    assert response.status_code == 201, response.json_body
    created: dict[str, Any] = response.json_body
    return created


@pytest.fixture
def admin(api: Client, moto: str, pool: dict[str, str]) -> str:
    token = sign_in(moto, pool)
    assert call(api, "GET", "/account", token).status_code == 200
    return token


class DynamoCalls:
    """Every DynamoDB operation PynamoDB makes, by (operation, table suffix)."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()

    def count(self, operation: str, table: str) -> int:
        return self.seen[(operation, table)]


@pytest.fixture
def dynamo_calls(monkeypatch: pytest.MonkeyPatch) -> DynamoCalls:
    calls = DynamoCalls()
    original = pynamodb_base.Connection._make_api_call

    def counted(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
        table = str(kwargs.get("TableName", "")).rsplit("-", 1)[-1]
        calls.seen[(operation, table)] += 1
        return original(conn, operation, kwargs)

    monkeypatch.setattr(pynamodb_base.Connection, "_make_api_call", counted)
    return calls


# ---------------------------------------------------------------------------- shown once


def test_a_key_is_shown_once_and_stored_only_as_a_hash_bound_to_its_tenant(
    api: Client, admin: str
) -> None:
    response = call(api, "POST", "/api-keys", admin, {"name": "deploy", "scope": "read"})
    assert response.status_code == 201, response.json_body
    assert response.headers["Cache-Control"] == "no-store"
    created = response.json_body
    key = created["key"]
    assert KEY_SHAPE.match(key)
    assert key.startswith(created["prefix"] + "_") and created["prefix"] == f"sk_{created['id']}"
    assert created["status"] == "active" and created["expires_at"] is None
    assert "again" in created["warning"]

    tenant_id = call(api, "GET", "/account", admin).json_body["tenant_id"]
    item = ApiKeyModel.get(keys.api_key_pk(created["id"]), consistent_read=True)
    assert item.tenant_id == tenant_id
    assert item.secret_hash == api_keys.digest(tenant_id, key)
    stored = json.dumps(item.to_simple_dict(), default=str)
    secret = key[20:]  # after "sk_", the 16-character ID and "_"
    assert len(secret) == 43 and secret not in stored and key not in stored

    listed = call(api, "GET", "/api-keys", admin)
    assert listed.status_code == 200
    (entry,) = [k for k in listed.json_body["keys"] if k["id"] == created["id"]]
    assert {k: v for k, v in created.items() if k not in ("key", "warning")} == entry
    text = json.dumps(listed.json_body)
    assert secret not in text and item.secret_hash not in text and "hash" not in text


def test_a_key_acts_for_its_tenant_with_its_scopes_role_and_is_named_in_histories(
    api: Client, admin: str
) -> None:
    created = create(api, admin, "send")
    key = created["key"]
    mine = call(api, "GET", "/account", key).json_body
    assert mine["tenant_id"] == call(api, "GET", "/account", admin).json_body["tenant_id"]
    assert mine["role"] == "sender" and "admin" not in mine["permissions"]
    added = call(api, "PUT", "/suppression-list/keyed%40example.org", key, {"reason": "bot"})
    assert added.status_code in (200, 201), added.json_body
    assert added.json_body["last_change"]["by"] == f"api key send bot ({created['prefix']})"
    # The scope caps it: a send key may not remove a suppression, nor manage keys.
    removed = call(api, "DELETE", "/suppression-list/keyed%40example.org", key)
    assert removed.status_code == 403
    assert removed.json_body["error"]["details"]["permission"] == "admin"
    assert call(api, "POST", "/api-keys", key, {"name": "x", "scope": "admin"}).status_code == 403
    # Bare or with the Bearer scheme, as for tokens.
    assert api.http.get("/events", headers={"Authorization": key}).status_code == 200


# ---------------------------------------------------------------------------- revocation


def test_a_revoked_key_is_refused_on_its_very_next_request(
    api: Client, admin: str, moto: str, pool: dict[str, str]
) -> None:
    created = create(api, admin, "admin")
    key = created["key"]
    assert call(api, "GET", "/events", key).status_code == 200
    other = sign_in(moto, pool)
    assert call(api, "DELETE", f"/api-keys/{created['id']}", other).status_code == 404
    assert call(api, "GET", "/events", key).status_code == 200  # another tenant revoked nothing

    revoked = call(api, "DELETE", f"/api-keys/{created['id']}", admin)
    assert revoked.status_code == 200, revoked.json_body
    assert revoked.json_body["status"] == "revoked" and revoked.json_body["revoked_by"]
    refused = call(api, "GET", "/events", key)
    assert refused.status_code == 401
    assert refused.json_body["error"] == {
        "code": "unauthorized",
        "message": REFUSED,
        "details": None,
    }
    again = call(api, "DELETE", f"/api-keys/{created['prefix']}", admin)
    assert again.status_code == 200 and again.json_body == revoked.json_body
    listed = {k["id"]: k for k in call(api, "GET", "/api-keys", admin).json_body["keys"]}
    assert listed[created["id"]]["status"] == "revoked"
    # A whole key pasted where its ID goes is not found, and not echoed.
    whole = create(api, admin, "read")["key"]
    pasted = call(api, "DELETE", f"/api-keys/{whole}", admin)
    assert pasted.status_code == 404 and whole[:20] not in json.dumps(pasted.json_body)
    # An admin key may revoke itself; nobody may revoke with a revoked key.
    assert call(api, "DELETE", f"/api-keys/{created['id']}", key).status_code == 401


# ---------------------------------------------------------------------------- bad keys


def _stored(created: dict[str, Any]) -> ApiKeyModel:
    item: ApiKeyModel = ApiKeyModel.get(keys.api_key_pk(created["id"]), consistent_read=True)
    return item


def test_every_bad_key_is_the_same_401_and_echoes_nothing(
    api: Client, admin: str, moto: str, pool: dict[str, str]
) -> None:
    good = create(api, admin, "read")
    key = good["key"]
    assert call(api, "GET", "/events", key).status_code == 200
    revoked = create(api, admin, "read")
    call(api, "DELETE", f"/api-keys/{revoked['id']}", admin)
    expired = create(api, admin, "read")
    _stored(expired).update([ApiKeyModel.valid_until.set(datetime.now(UTC) - timedelta(seconds=1))])
    # A key whose item was moved to another tenant: its digest is bound to the first one.
    other_tenant = call(api, "GET", "/account", sign_in(moto, pool)).json_body["tenant_id"]
    moved = create(api, admin, "admin")
    _stored(moved).update([ApiKeyModel.tenant_id.set(other_tenant)])
    gone_tenant = sign_in(moto, pool)
    gone_id = call(api, "GET", "/account", gone_tenant).json_body["tenant_id"]
    orphan = create(api, gone_tenant, "read")
    TenantModel(gone_id).delete()

    secret = key[20:]
    well_formed = {
        "unknown id": f"sk_{secrets.token_hex(8)}_{secret}",
        "another key's secret": f"{revoked['prefix']}_{secret}",
        "revoked": revoked["key"],
        "expired": expired["key"],
        "moved to another tenant": moved["key"],
        "its tenant deleted": orphan["key"],
    }
    malformed = {
        "prefix only": "sk_",
        "one character short": key[:-1],
        "one character long": key + "A",
        "upper-case id": "sk_" + key[3:19].upper() + key[19:],
        "non-ascii": key[:-1] + "é",
        "space inside": key[:30] + " " + key[31:],
        "huge": "sk_" + "a" * 100_000,
        "control character": key[:-1] + "\x01",
    }
    for name, bad in {**well_formed, **malformed}.items():
        response = call(api, "GET", "/events", bad)
        assert response.status_code == 401, name
        error = response.json_body["error"]
        expected = REFUSED if name in well_formed else MALFORMED
        assert error == {"code": "unauthorized", "message": expected, "details": None}, name
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="sesami"'
        assert secret not in json.dumps(response.json_body), name
    assert call(api, "GET", "/events", key).status_code == 200  # none of that harmed the key


# ---------------------------------------------------------------------------- last use


def test_last_use_is_written_at_most_once_a_minute(
    api: Client, admin: str, dynamo_calls: DynamoCalls
) -> None:
    created = create(api, admin, "read")
    now = [datetime.now(UTC)]
    service = ApiKeyService(clock=lambda: now[0])
    writes = lambda: dynamo_calls.count("UpdateItem", "api_keys")  # noqa: E731

    for _ in range(10):
        membership = service.membership(created["key"])
    assert isinstance(membership, Membership) and membership.key_name
    assert writes() == 1
    assert dynamo_calls.count("GetItem", "api_keys") == 10  # one read per request, no cache
    now[0] += timedelta(seconds=59)
    for _ in range(5):
        service.membership(created["key"])
    assert writes() == 1
    now[0] += timedelta(seconds=2)
    service.membership(created["key"])
    service.membership(created["key"])
    assert writes() == 2
    # An instance that read the item before that write loses the conditional write.
    stale = _stored(created)
    stale.last_used_at = None
    other = ApiKeyService(clock=lambda: now[0] + timedelta(seconds=10))
    other._touch(stale)
    assert _stored(created).last_used_at == now[0]
    listed = {k["id"]: k for k in call(api, "GET", "/api-keys", admin).json_body["keys"]}
    assert listed[created["id"]]["last_used_at"] == now[0].isoformat()


# ---------------------------------------------------------------------------- input


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "read"}, "name"),
        ({"name": "  ", "scope": "read"}, "name"),
        ({"name": "x" * 65, "scope": "read"}, "name"),
        ({"name": "new\nline", "scope": "read"}, "name"),
        ({"name": "ok"}, "scope"),
        ({"name": "ok", "scope": "root"}, "scope"),
        ({"name": "ok", "scope": "read", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "ok", "scope": "read", "expires_at": "next week"}, "expires_at"),
        ({"name": "ok", "scope": "read", "expires_at": "2999-01-01"}, "expires_at"),
        ({"name": "ok", "scope": "read", "expires_at": 1893456000}, "expires_at"),
    ],
)
def test_a_bad_request_for_a_key_names_the_field(
    api: Client, admin: str, body: dict[str, Any], field: str
) -> None:
    response = call(api, "POST", "/api-keys", admin, body)
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["details"]["field"] == field


def test_an_expiry_is_kept_and_a_tenant_has_a_bounded_number_of_live_keys(
    api: Client, admin: str
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = create(api, admin, "read", expires_at=soon.isoformat().replace("+00:00", "Z"))
    assert created["expires_at"] == soon.isoformat()
    assert _stored(created).expires_at == soon + api_keys.KEEP_REVOKED  # purged after that
    for n in range(api_keys.MAX_LIVE_KEYS - 1):
        create(api, admin, "read", name=f"bulk {n}")
    refused = call(api, "POST", "/api-keys", admin, {"name": "one too many", "scope": "read"})
    assert refused.status_code == 409
    assert refused.json_body["error"]["details"]["limit"] == api_keys.MAX_LIVE_KEYS
    call(api, "DELETE", f"/api-keys/{created['id']}", admin)  # a revoked key frees its place
    assert (
        call(api, "POST", "/api-keys", admin, {"name": "now", "scope": "read"}).status_code == 201
    )


# ---------------------------------------------------------------------------- never logged


@pytest.fixture
def every_log_line(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger, down to DEBUG (botocore's request dumps included)."""
    caplog.set_level(logging.DEBUG)
    return caplog


def test_no_key_ever_reaches_a_log_line(
    api: Client,
    admin: str,
    every_log_line: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created = create(api, admin, "send")
    key, secret = created["key"], created["key"][20:]
    call(api, "GET", "/events", key)
    call(api, "PUT", "/suppression-list/logs%40example.org", key, {"reason": "log test"})
    call(api, "GET", "/events", created["prefix"] + "_" + secret[::-1])  # a wrong secret
    call(api, "GET", "/events", key + "x")  # malformed
    call(api, "DELETE", f"/api-keys/{created['id']}", admin)
    call(api, "GET", "/events", key)  # revoked
    with pytest.raises(Refused):
        wiring.authorize(AuthRequest("TOKEN", f"Bearer {key}", METHOD_ARN))
    printed = capsys.readouterr()
    logged = every_log_line.text + printed.out + printed.err
    assert any("api_keys" in r.getMessage() for r in every_log_line.records)  # DEBUG was on
    assert secret not in logged and key not in logged


# ---------------------------------------------------------------------------- the gateway


def test_the_gateway_authorizer_allows_a_jwt_or_a_key_for_every_route_and_refuses_the_rest(
    api: Client, admin: str
) -> None:
    import app

    (config,) = app.app.builtin_auth_handlers
    assert config.name == "authorizer"
    assert config.ttl_seconds is not None and 0 < config.ttl_seconds <= 60
    assert config.header == "Authorization"
    created = create(api, admin, "read")
    everything = "arn:aws:execute-api:eu-west-1:444455556666:k3x9q2w1z0/api/*/*"

    def answer(token: str) -> dict[str, Any]:
        event = {"type": "TOKEN", "authorizationToken": token, "methodArn": METHOD_ARN}
        result: dict[str, Any] = app.authorizer(event, None)
        return result

    for token, principal in ((f"Bearer {admin}", "user:"), (created["key"], "key:")):
        allowed = answer(token)
        assert allowed["principalId"].startswith(principal)
        (statement,) = allowed["policyDocument"]["Statement"]
        # Cached per credential for every route it calls next: so it must allow them all.
        assert statement == {
            "Action": "execute-api:Invoke",
            "Effect": "Allow",
            "Resource": [everything],
        }
    assert answer(created["key"])["context"]["tenant_id"] == _stored(created).tenant_id

    call(api, "DELETE", f"/api-keys/{created['id']}", admin)
    for bad in (created["key"], "", "Bearer", "Bearer sk_nope", "not-a-jwt", admin + "x"):
        with pytest.raises(Exception, match=r"^Unauthorized$") as refused:
            answer(bad)
        assert refused.value.__cause__ is None and refused.value.__suppress_context__
