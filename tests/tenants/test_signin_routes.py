"""The sign-in routes (/auth/*) in front of the user pool, against moto's Cognito; the
translation of Cognito's errors with botocore's Stubber."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.api_fixtures import call, client

pytestmark = pytest.mark.ddb_local


def body(response: Any) -> Any:
    return json.loads(response.body)


def new_email() -> str:
    return f"dash-{uuid.uuid4().hex[:10]}@example.com"


# ------------------------------------------------------------------------------- /auth routes


def auth(api: Any, action: str, payload: dict[str, Any]) -> Any:
    return call(api, "POST", f"/auth/{action}", None, payload)


def test_sign_up_confirm_sign_in_refresh_and_sign_out(api: Any, moto: str) -> None:
    email = new_email()
    signed_up = auth(api, "sign-up", {"email": email.upper(), "password": "Sesami-test-2026"})
    assert signed_up.status_code == 200, signed_up.body
    assert body(signed_up)["email"] == email  # normalised
    assert body(signed_up)["confirmed"] is False
    # moto accepts any confirmation code; real Cognito checks it (Stubber test below).
    assert auth(api, "confirm", {"email": email, "code": "123456"}).status_code == 200

    signed_in = auth(api, "sign-in", {"email": email, "password": "Sesami-test-2026"})
    assert signed_in.status_code == 200, signed_in.body
    tokens = body(signed_in)
    # The refresh token never reaches the page's scripts: it comes as an HttpOnly cookie.
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"] is None
    cookie = signed_in.headers["Set-Cookie"]
    assert cookie.startswith("sesami_refresh=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Max-Age=2592000" in cookie
    refresh_token = cookie.split(";")[0].split("=", 1)[1]
    # The id token works on the API: the first call creates the user's tenant.
    account = call(api, "GET", "/account", tokens["id_token"])
    assert account.status_code == 200
    assert body(account)["connected"] is False

    from_cookie = api.http.post(
        "/auth/refresh",
        headers={"Content-Type": "application/json", "Cookie": f"sesami_refresh={refresh_token}"},
    )
    assert from_cookie.status_code == 200, from_cookie.body
    assert body(from_cookie)["refresh_token"] is None
    assert call(api, "GET", "/account", body(from_cookie)["id_token"]).status_code == 200
    refreshed = auth(api, "refresh", {"refresh_token": refresh_token})  # API clients' way
    assert refreshed.status_code == 200

    out = auth(api, "sign-out", {"access_token": tokens["access_token"]})
    assert out.status_code == 200 and body(out) == {"signed_out": True}
    assert "Max-Age=0" in out.headers["Set-Cookie"]  # the cookie is cleared
    again = auth(api, "sign-out", {"access_token": tokens["access_token"]})
    assert again.status_code == 401  # the token was revoked


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(api: Any, moto: str) -> None:
    email = new_email()
    auth(api, "sign-up", {"email": email, "password": "Sesami-test-2026"})
    auth(api, "confirm", {"email": email, "code": "1"})
    wrong = auth(api, "sign-in", {"email": email, "password": "not-it-2026"})
    unknown = auth(api, "sign-in", {"email": new_email(), "password": "Sesami-test-2026"})
    assert wrong.status_code == unknown.status_code == 401
    assert body(wrong)["error"]["message"] == body(unknown)["error"]["message"]
    assert email not in wrong.body.decode()


def test_signing_up_twice_is_a_conflict(api: Any) -> None:
    email = new_email()
    assert auth(api, "sign-up", {"email": email, "password": "Sesami-test-2026"}).status_code == 200
    second = auth(api, "sign-up", {"email": email, "password": "Sesami-test-2026"})
    assert second.status_code == 409
    assert "already exists" in body(second)["error"]["message"]


def test_an_invited_user_chooses_a_password_on_first_sign_in(
    api: Any, moto: str, pool: Any
) -> None:
    email = new_email()
    idp = client(moto, "cognito-idp")
    idp.admin_create_user(
        UserPoolId=pool["pool_id"],
        Username=email,
        TemporaryPassword="Temp-pass-2026",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}],
    )
    first = body(auth(api, "sign-in", {"email": email, "password": "Temp-pass-2026"}))
    assert first["challenge"] == "NEW_PASSWORD_REQUIRED" and first["session"]
    chosen = auth(
        api,
        "new-password",
        {"email": email, "session": first["session"], "password": "Mine-own-2026"},
    )
    assert chosen.status_code == 200, chosen.body
    assert call(api, "GET", "/account", body(chosen)["id_token"]).status_code == 200
    assert auth(api, "sign-in", {"email": email, "password": "Mine-own-2026"}).status_code == 200


@pytest.mark.parametrize(
    ("action", "payload", "field"),
    [
        ("sign-up", {"email": "not-an-address", "password": "x"}, "email"),
        ("sign-up", {"email": "a@example.com"}, "password"),
        ("sign-in", {"email": "", "password": "x"}, "email"),
        ("sign-in", {"email": "a@example.com", "password": "x" * 300}, "password"),
        ("confirm", {"email": "a@example.com", "code": "1" * 40}, "code"),
        ("refresh", {}, "refresh_token"),
        ("forgot-password", {"email": "a@example.com", "admin": True}, "admin"),
        ("sign-up", {"email": "a@example.com", "password": "x", "custom:tenant_id": "t"}, None),
        # Found by schemathesis: botocore's own check (Session >= 20 characters) was a 503.
        ("new-password", {"email": "a@example.com", "session": "s", "password": "x"}, "session"),
    ],
)
def test_bad_input_names_the_field(api: Any, action: str, payload: Any, field: str) -> None:
    response = auth(api, action, payload)
    assert response.status_code == 400
    # None: the first unknown field in sorted order (the attribute that binds a tenant, here).
    expected = field or sorted(set(payload) - {"email", "password"})[0]
    assert body(response)["error"]["details"]["field"] == expected


def test_an_unknown_sign_in_session_is_a_401_naming_it(api: Any, moto: str) -> None:
    # Found by schemathesis: moto answers an unknown session with ResourceNotFoundException
    # (Cognito: NotAuthorizedException), which was a 503 as if the pool were gone.
    session = "s" * 40
    for action, payload in (
        ("mfa-code", {"email": "a@example.com", "session": session, "code": "123456"}),
        ("new-password", {"email": "a@example.com", "session": session, "password": "Pw-2026!x"}),
    ):
        response = auth(api, action, payload)
        assert response.status_code == 401, (action, response.body)
        assert body(response)["error"]["details"]["field"] == "session"


def test_a_lone_surrogate_escape_is_a_400_not_a_crash(api: Any) -> None:
    # Found by schemathesis: JSON's "\\udbed" parses to a string UTF-8 cannot encode, which
    # botocore then failed on (a 500).
    raw = '{"email": "a@example.com", "session": "%s", "code": "4\\udbed7"}' % ("s" * 30)
    response = api.http.post(
        "/auth/mfa-code", headers={"Content-Type": "application/json"}, body=raw
    )
    assert response.status_code == 400, response.body
    assert "surrogate" in body(response)["error"]["message"]


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [
        ("CodeMismatchException", 400, "not the one we sent"),
        ("ExpiredCodeException", 400, "expired"),
        ("UserNotConfirmedException", 403, "not confirmed"),
        ("TooManyRequestsException", 429, "too many"),
        ("InvalidPasswordException", 400, "policy"),
        ("InternalErrorException", 503, "user pool"),
    ],
)
def test_cognito_errors_become_named_sesami_errors(code: str, status: int, words: str) -> None:
    import boto3
    from botocore.stub import Stubber
    from chalicelib.core.errors import RequestError
    from chalicelib.tenants.signin import UserPoolSignIn

    idp = boto3.client("cognito-idp", region_name="us-east-1")
    with Stubber(idp) as stub:
        stub.add_client_error(
            "confirm_sign_up", service_error_code=code, service_message="from Cognito"
        )
        with pytest.raises(RequestError) as raised:
            UserPoolSignIn(idp, "client").confirm("a@example.com", "123456")
    assert raised.value.status == status
    assert words in raised.value.message
    assert raised.value.details == {"cognito_error": code}
