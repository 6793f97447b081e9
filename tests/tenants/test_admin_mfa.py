from __future__ import annotations

import uuid
from dataclasses import replace

from chalice.test import Client

from tests.api_fixtures import call, client, sign_in


def test_an_admin_adds_an_authenticator_app_and_may_then_administer_where_mfa_is_required(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    """Where the operator requires admins to use MFA, an admin without it may read but not
    administer; the dashboard's MFA routes add an authenticator app, after which it may."""
    from chalicelib.core import wiring

    from tests.api_fixtures import PASSWORD

    wiring.use(replace(wiring.settings(), admin_mfa_required=True))
    email = f"mfa-admin-{uuid.uuid4().hex[:6]}@example.com"
    token = sign_in(moto, pool, email)
    assert call(api, "GET", "/account", token).status_code == 200  # reading needs no MFA
    refused = call(api, "GET", "/account/onboarding/stack", token)
    assert refused.status_code == 403, refused.json_body
    assert refused.json_body["error"]["details"]["code"] == "admin_mfa_required"

    access = client(moto, "cognito-idp").initiate_auth(
        ClientId=pool["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]
    setup = call(api, "POST", "/auth/mfa/setup", None, {"access_token": access})
    assert setup.status_code == 200, setup.json_body
    assert setup.json_body["otpauth_uri"].startswith("otpauth://totp/")
    verified = call(
        api, "POST", "/auth/mfa/verify", None, {"access_token": access, "code": "123456"}
    )
    assert verified.status_code == 200, verified.json_body
    wiring.use(replace(wiring.settings(), admin_mfa_required=True))  # a fresh instance
    allowed = call(api, "GET", "/account/onboarding/stack", token)
    assert allowed.status_code == 200, allowed.json_body
