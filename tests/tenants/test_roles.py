"""Roles through the API (invariant 9): every private route × every role, and × an API key of
every scope, gets the status the route's declared permission implies, and that status is
documented; team management keeps the last admin, and a removed user's still-valid token stops
working on its next call."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from chalice.test import Client

from tests.api_fixtures import PASSWORD, call, client, sign_in

SAMPLE = {
    "email": "someone%40example.org",
    "message_id": "0000-no-such-message",
    "batch_id": "0" * 32,
    "sub": "00000000-0000-0000-0000-000000000000",
    "key_id": "0" * 16,
}


def _invitee_token(moto: str, pool: dict[str, str], email: str) -> str:
    """The invited person signs in (their login was made by the invitation)."""
    from devstack import provision

    idp = client(moto, "cognito-idp")
    idp.admin_set_user_password(
        UserPoolId=pool["pool_id"], Username=email, Password=PASSWORD, Permanent=True
    )
    identity = provision.Identity(pool["pool_id"], pool["client_id"], jwks_url="")
    return provision.id_token(moto, identity, email, PASSWORD)


def _join(api: Client, moto: str, pool: dict[str, str], admin: str, role: str) -> tuple[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    invited = call(api, "POST", "/account/users", admin, {"email": email, "role": role})
    assert invited.status_code == 201, invited.json_body
    token = _invitee_token(moto, pool, email)
    pending = call(api, "GET", "/invitation", token)
    assert pending.status_code == 200, pending.json_body
    assert pending.json_body["role"] == role and pending.json_body["invited_by"]
    # Until accepted, an invitee can read nothing of the team.
    refused = call(api, "GET", "/events", token)
    assert refused.status_code == 403, refused.json_body
    accepted = call(api, "POST", "/invitation/accept", token)
    assert accepted.status_code == 200, accepted.json_body
    return email, token


@pytest.fixture
def team(api: Client, moto: str, pool: dict[str, str]) -> dict[str, str]:
    admin = sign_in(moto, pool)
    assert call(api, "GET", "/account", admin).status_code == 200
    _, sender = _join(api, moto, pool, admin, "sender")
    _, viewer = _join(api, moto, pool, admin, "viewer")
    return {"admin": admin, "sender": sender, "viewer": viewer}


def _routes() -> list[tuple[str, str, str]]:
    """(method, path, permission) of every private route, from the app's own document."""
    from chalicelib.core import openapi

    import app  # noqa: F401  (declares every route)

    out = []
    for path, ops in openapi.document()["paths"].items():
        for method, op in ops.items():
            if "x-sesami-permission" in op:
                out.append((method.upper(), path, op["x-sesami-permission"], op))
    return out  # type: ignore[return-value]


@pytest.fixture
def scoped_keys(api: Client, team: dict[str, str]) -> dict[str, str]:
    """An API key of every scope, made by the team's admin."""
    from chalicelib.core.permissions import SCOPES

    made = {}
    for scope in SCOPES:
        body = {"name": f"matrix {scope}", "scope": scope}
        created = call(api, "POST", "/api-keys", team["admin"], body)
        assert created.status_code == 201, created.json_body
        made[scope] = created.json_body["key"]
    return made


def test_every_route_answers_every_role_and_key_scope_as_its_permission_says(
    api: Client, team: dict[str, str], scoped_keys: dict[str, str]
) -> None:
    from chalicelib.core.permissions import SCOPES, Permission, Role, allows

    callers = [(f"role {name}", Role(name), token) for name, token in team.items()]
    callers += [(f"key {scope}", SCOPES[scope], key) for scope, key in scoped_keys.items()]
    checked = 0
    for method, path, permission, op in _routes():  # type: ignore[misc]
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "x"), path)
        for who, role, credential in callers:
            response = call(api, method, concrete, credential, {} if method != "GET" else None)
            status = response.status_code
            if allows(role, Permission(permission)):
                assert status not in (401, 403), (method, path, who, response.json_body)
            else:
                assert status == 403, (method, path, who, response.json_body)
                assert response.json_body["error"]["details"]["permission"] == permission
            documented = set(op["responses"])
            assert str(status) in documented, (method, path, who, status, documented)
            checked += 1
    assert checked >= 6 * 28  # every private route; three roles and three key scopes
    # The keys still work: nothing in the matrix revoked or spent them.
    for key in scoped_keys.values():
        assert call(api, "GET", "/account", key).status_code == 200


def test_another_tenants_users_and_invitations_are_not_found(
    api: Client, moto: str, pool: dict[str, str], team: dict[str, str]
) -> None:
    other = sign_in(moto, pool)
    assert call(api, "GET", "/account", other).status_code == 200
    members = call(api, "GET", "/account/users", team["admin"]).json_body["users"]
    a_sender = next(u for u in members if u["role"] == "sender")
    for method, body in (("PUT", {"role": "admin"}), ("DELETE", None)):
        response = call(api, method, f"/account/users/{a_sender['sub']}", other, body)
        assert response.status_code == 404, response.json_body
    mine = call(api, "GET", "/account/users", other).json_body
    assert [u["role"] for u in mine["users"]] == ["admin"] and mine["invitations"] == []


def test_the_last_admin_cannot_leave_and_roles_apply_at_once(
    api: Client, moto: str, pool: dict[str, str], team: dict[str, str]
) -> None:
    admin = team["admin"]
    members = {u["role"]: u for u in call(api, "GET", "/account/users", admin).json_body["users"]}
    me = members["admin"]
    for method, body in (("PUT", {"role": "viewer"}), ("DELETE", None)):
        response = call(api, method, f"/account/users/{me['sub']}", admin, body)
        assert response.status_code == 409, response.json_body
        assert response.json_body["error"]["code"] == "last_admin"
    # Promote the viewer: it may now do what only admins may, on its very next call.
    viewer = members["viewer"]
    assert (
        call(api, "DELETE", "/suppression-list/x%40example.org", team["viewer"]).status_code == 403
    )
    promoted = call(api, "PUT", f"/account/users/{viewer['sub']}", admin, {"role": "admin"})
    assert promoted.status_code == 200 and promoted.json_body["role"] == "admin"
    assert (
        call(api, "DELETE", "/suppression-list/x%40example.org", team["viewer"]).status_code == 404
    )
    # With a second admin, the first may step down.
    stepped = call(api, "PUT", f"/account/users/{me['sub']}", admin, {"role": "sender"})
    assert stepped.status_code == 200, stepped.json_body


def test_a_removed_users_token_stops_on_its_next_call(api: Client, team: dict[str, str]) -> None:
    sender = team["sender"]
    assert call(api, "GET", "/events", sender).status_code == 200
    members = call(api, "GET", "/account/users", team["admin"]).json_body["users"]
    sub = next(u["sub"] for u in members if u["role"] == "sender")
    removed = call(api, "DELETE", f"/account/users/{sub}", team["admin"])
    assert removed.status_code == 200, removed.json_body
    response = call(api, "GET", "/events", sender)
    assert response.status_code == 401, response.json_body
    assert "removed" in response.json_body["error"]["message"]
    listed = call(api, "GET", "/account/users", team["admin"]).json_body["users"]
    assert sub not in {u["sub"] for u in listed}


def test_invitations_can_be_listed_resent_and_cancelled(
    api: Client, moto: str, pool: dict[str, str], team: dict[str, str]
) -> None:
    admin = team["admin"]
    email = f"later-{uuid.uuid4().hex[:6]}@example.com"
    assert call(api, "POST", "/account/users", admin, {"email": email}).status_code == 201
    again = call(api, "POST", "/account/users", admin, {"email": email})
    assert again.status_code == 409
    pending = call(api, "GET", "/account/users", admin).json_body["invitations"]
    assert [(i["email"], i["role"], i["status"]) for i in pending] == [(email, "sender", "pending")]
    quoted = email.replace("@", "%40")
    assert call(api, "POST", f"/account/invitations/{quoted}/resend", admin).status_code == 200
    cancelled = call(api, "DELETE", f"/account/invitations/{quoted}", admin)
    assert cancelled.status_code == 200 and cancelled.json_body["status"] == "cancelled"
    assert call(api, "GET", "/account/users", admin).json_body["invitations"] == []
    assert call(api, "DELETE", f"/account/invitations/{quoted}", admin).status_code == 404


def test_a_members_last_activity_is_listed_and_written_at_most_every_few_minutes(
    api: Client, team: dict[str, str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.core.tables import UserModel
    from chalicelib.tenants.membership import TOUCH_EVERY

    def seen() -> str | None:
        users = call(api, "GET", "/account/users", team["admin"]).json_body["users"]
        value: str | None = next(u["last_seen_at"] for u in users if u["sub"] == sub)
        return value

    def stored_at(when: datetime) -> None:
        UserModel.get(sub).update([UserModel.last_seen_at.set(when)])

    members = call(api, "GET", "/account/users", team["admin"]).json_body["users"]
    sub = next(u["sub"] for u in members if u["role"] == "sender")
    long_ago = datetime.now(UTC) - TOUCH_EVERY - timedelta(minutes=1)
    stored_at(long_ago)
    assert seen() == long_ago.isoformat()  # the list shows what is stored
    assert call(api, "GET", "/events", team["sender"]).status_code == 200
    first = seen()
    assert first is not None and datetime.fromisoformat(first) > long_ago
    # Within the window the next calls do not write it again.
    for _ in range(3):
        assert call(api, "GET", "/events", team["sender"]).status_code == 200
    assert seen() == first and UserModel.get(sub).last_seen_at.isoformat() == first
    inside = datetime.now(UTC) - TOUCH_EVERY + timedelta(minutes=1)
    stored_at(inside)
    assert call(api, "GET", "/events", team["sender"]).status_code == 200
    assert seen() == inside.isoformat()


def test_removing_a_user_names_the_api_keys_they_made_that_still_work(
    api: Client, moto: str, pool: dict[str, str], team: dict[str, str]
) -> None:
    """Removing a person does not revoke their keys (a program may depend on one): the answer
    names the ones still active, and the key list shows who made each."""
    admin = team["admin"]
    users = lambda: call(api, "GET", "/account/users", admin).json_body["users"]  # noqa: E731
    before = {u["sub"] for u in users()}
    email, other_admin = _join(api, moto, pool, admin, "admin")
    (sub,) = {u["sub"] for u in users()} - before
    made = []
    for name in ("billing", "old billing", "reports"):
        created = call(api, "POST", "/api-keys", other_admin, {"name": name, "scope": "send"})
        assert created.status_code == 201, created.json_body
        made.append(created.json_body)
    assert call(api, "DELETE", f"/api-keys/{made[1]['id']}", other_admin).status_code == 200
    mine = call(api, "POST", "/api-keys", admin, {"name": "mine", "scope": "read"}).json_body
    listed = {k["id"]: k for k in call(api, "GET", "/api-keys", admin).json_body["keys"]}
    assert [listed[k["id"]]["created_by"] for k in made] == [email] * 3
    assert listed[mine["id"]]["created_by"] != email

    removed = call(api, "DELETE", f"/account/users/{sub}", admin)
    assert removed.status_code == 200, removed.json_body
    answer = removed.json_body
    assert answer["sub"] == sub and answer["removed"] is True
    live = sorted((k["id"], k["prefix"], k["name"], k["status"]) for k in answer["active_keys"])
    expected = [(made[i]["id"], made[i]["prefix"], made[i]["name"], "active") for i in (0, 2)]
    assert live == sorted(expected)
    assert all(k["key"] not in json.dumps(answer) for k in made)  # prefixes, never a secret
    # As documented: the person is out at once, their keys go on until an admin revokes them.
    assert call(api, "GET", "/events", other_admin).status_code == 401
    assert call(api, "GET", "/account", made[0]["key"]).status_code == 200
    again = call(api, "DELETE", f"/account/users/{sub}", admin)
    assert again.status_code == 404
