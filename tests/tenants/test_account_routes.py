"""The account routes through Chalice's test client, with real tokens from moto's Cognito, STS
and EventBridge on moto's server, and storage on DynamoDB Local.

moto ignores ExternalId in AssumeRole, so these tests run with the local-stack relaxation
(SESAMI_INSECURE_SKIP_EXTERNAL_ID_CHECK); the refusal itself is tested with fakes and botocore's
Stubber in tests/tenants/test_tenants_accounts.py and tests/tenant_aws/test_credentials.py."""

from __future__ import annotations

import uuid

import pytest
from chalice.test import Client
from chalicelib.core.tables import TenantModel

from tests.api_fixtures import MOTO_ACCOUNT, SESAMI_ACCOUNT, call, client, make_role, sign_in


def test_every_private_route_refuses_a_missing_or_bad_token(api: Client) -> None:
    from chalicelib.core.api import PUBLIC_ROUTES

    import app

    checked = 0
    for path, methods in app.app.routes.items():
        for method in methods:
            if (method, path) in PUBLIC_ROUTES:
                continue
            concrete = path.replace("{", "x").replace("}", "")
            for token in (None, "not-a-jwt"):
                response = call(api, method, concrete, token, {} if method != "GET" else None)
                assert response.status_code == 401, (method, path, token)
                error = response.json_body["error"]
                assert error["code"] == "unauthorized" and error["message"]
            checked += 1
    assert checked >= 5


def test_first_call_creates_the_tenant_and_sets_the_cognito_attribute(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token = sign_in(moto, pool, email := f"owner-{uuid.uuid4().hex[:6]}@example.com")
    first = call(api, "GET", "/account", token)
    assert first.status_code == 200
    body = first.json_body
    assert body["connected"] is False and body["external_id"].startswith("sesami-")
    user = client(moto, "cognito-idp").admin_get_user(UserPoolId=pool["pool_id"], Username=email)
    attrs = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attrs["custom:tenant_id"] == body["tenant_id"]
    assert attrs["custom:tenant_role"] == "admin"
    assert call(api, "GET", "/account", token).json_body == body  # same tenant, same external ID


def test_connect_account_binds_it_and_leaves_the_bus_policy_alone(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    from chalicelib.core.tables import AccountModel

    AccountModel(MOTO_ACCOUNT).delete()  # other modules' tests bind moto's one account
    before = client(moto, "events").describe_event_bus(Name="sesami").get("Policy")
    token = sign_in(moto, pool)
    role_arn = make_role(moto)
    response = call(api, "PUT", "/account", token, {"role_arn": role_arn, "region": "us-east-1"})
    assert response.status_code == 200, response.json_body
    assert response.json_body["account_id"] == MOTO_ACCOUNT
    assert AccountModel.get(MOTO_ACCOUNT).tenant_id == response.json_body["tenant_id"]
    # The bus accepts SES events from any account (ingest/bus.py): nothing per tenant on it.
    assert client(moto, "events").describe_event_bus(Name="sesami").get("Policy") == before


def test_second_tenant_cannot_take_a_bound_account(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    from chalicelib.core.tables import AccountModel

    AccountModel(MOTO_ACCOUNT).delete()  # earlier tests bound it
    first, second = sign_in(moto, pool), sign_in(moto, pool)
    role_arn = make_role(moto)
    assert call(api, "PUT", "/account", first, {"role_arn": role_arn}).status_code == 200
    refused = call(api, "PUT", "/account", second, {"role_arn": role_arn})
    assert refused.status_code == 409
    assert "already connected to another SESami tenant" in refused.json_body["error"]["message"]
    assert call(api, "GET", "/account", second).json_body["connected"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role_arn": "arn:aws:iam::12:role/sesami/X"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::123456789012:role/NoPath"}, "role_arn"),
        ({"role_arn": "arn:aws:iam::123456789012:role/sesami/X", "region": "mars-1"}, "region"),
        (
            {"role_arn": "arn:aws:iam::123456789012:role/sesami/X", "configuration_set": "a b"},
            "configuration_set",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(
    api: Client, moto: str, pool: dict[str, str], body: dict[str, str], field: str
) -> None:
    token = sign_in(moto, pool)
    response = call(api, "PUT", "/account", token, body)
    assert response.status_code == 400
    assert response.json_body["error"]["details"] == {"field": field}
    assert call(api, "GET", "/account", token).json_body["connected"] is False


def test_body_that_is_not_json_is_a_400(api: Client, moto: str, pool: dict[str, str]) -> None:
    token = sign_in(moto, pool)
    response = api.http.put(
        "/account",
        headers={"Authorization": token, "Content-Type": "application/json"},
        body="{not json",
    )
    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "invalid_request"


def test_onboarding_gives_the_commands_with_this_tenants_values(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token = sign_in(moto, pool)
    external_id = call(api, "GET", "/account", token).json_body["external_id"]
    info = call(api, "GET", "/account/onboarding", token).json_body
    assert info["external_id"] == external_id
    assert info["sesami_account_id"] == SESAMI_ACCOUNT
    assert any(external_id in c and "--secret" in c for c in info["commands"])


def test_checklist_reports_ok_only_for_what_it_checked(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    from chalicelib.core.tables import AccountModel

    AccountModel(MOTO_ACCOUNT).delete()
    token = sign_in(moto, pool)
    role_arn = make_role(moto)
    assert call(api, "PUT", "/account", token, {"role_arn": role_arn}).status_code == 200
    result = call(api, "GET", "/verify-sts", token).json_body
    checks = {c["id"]: c for c in result["checks"]}
    assert checks["role_assumable"]["status"] == "ok"
    assert checks["role_requires_external_id"]["status"] == "not_checked"
    assert "ignores external IDs" in checks["role_requires_external_id"]["message"]
    assert checks["last_event"]["status"] == "failed"  # nothing ingested for this tenant
    assert checks["forwarding_rule"]["status"] == "failed"  # no rule created yet
    assert checks["canary"]["status"] == "not_checked"
    # moto has no SESv2 GetAccount: reported as not checked, never ok, never a crash.
    assert checks["ses_account"]["status"] == "not_checked"
    assert "does not implement" in checks["ses_account"]["message"]
    assert result["ok"] is False
    for check in checks.values():
        assert check["status"] in ("ok", "failed", "not_checked") and check["message"]


def test_invite_by_admin_only(api: Client, moto: str, pool: dict[str, str]) -> None:
    admin = sign_in(moto, pool)
    call(api, "GET", "/account", admin)
    invitee = f"colleague-{uuid.uuid4().hex[:6]}@example.com"
    response = call(api, "POST", "/account/users", admin, {"email": invitee})
    assert response.status_code == 201
    user = client(moto, "cognito-idp").admin_get_user(UserPoolId=pool["pool_id"], Username=invitee)
    attrs = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attrs["custom:tenant_role"] == "sender"  # the default role of an invitation


def test_the_overview_rate_setting_defaults_to_people_and_can_be_changed(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token = sign_in(moto, pool)
    assert call(api, "GET", "/account", token).json_body["settings"] == {
        "overview_rate": "human",
        "indexed_tags": [],
    }
    saved = call(api, "PUT", "/account/settings", token, {"overview_rate": "raw"})
    assert saved.status_code == 200 and saved.json_body == {
        "overview_rate": "raw",
        "indexed_tags": [],
    }
    assert call(api, "GET", "/account", token).json_body["settings"]["overview_rate"] == "raw"
    for body, field in (({"overview_rate": "bots"}, "overview_rate"), ({"theme": "dark"}, "theme")):
        refused = call(api, "PUT", "/account/settings", token, body)
        assert refused.status_code == 400 and refused.json_body["error"]["details"] == {
            "field": field
        }
    other = sign_in(moto, pool)  # another tenant keeps its own
    assert call(api, "GET", "/account", other).json_body["settings"]["overview_rate"] == "human"


def test_up_to_three_tags_can_be_indexed_and_a_kept_tag_keeps_its_time(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token = sign_in(moto, pool)
    tenant_id = call(api, "GET", "/account", token).json_body["tenant_id"]
    saved = call(api, "PUT", "/account/settings", token, {"indexed_tags": ["campaign", "plan"]})
    assert saved.status_code == 200 and saved.json_body["indexed_tags"] == ["campaign", "plan"]
    first = TenantModel.get(tenant_id).indexed_tags_since
    assert set(first) == {"campaign", "plan"}
    again = call(api, "PUT", "/account/settings", token, {"indexed_tags": ["campaign", "list"]})
    assert again.json_body["indexed_tags"] == ["campaign", "list"]
    since = TenantModel.get(tenant_id).indexed_tags_since
    assert set(since) == {"campaign", "list"} and since["campaign"] == first["campaign"]
    for bad in (["a", "b", "c", "d"], ["ses:configuration-set"], "campaign", [""]):
        refused = call(api, "PUT", "/account/settings", token, {"indexed_tags": bad})
        assert refused.status_code == 400, bad
        assert refused.json_body["error"]["details"] == {"field": "indexed_tags"}
    cleared = call(api, "PUT", "/account/settings", token, {"indexed_tags": []})
    assert cleared.json_body["indexed_tags"] == []
    assert TenantModel.get(tenant_id).indexed_tags is None


def test_a_get_never_sends_the_canary_and_names_the_route_that_does(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    token = sign_in(moto, pool)
    for value in ("true", "1", "false", ""):
        response = call(api, "GET", f"/verify-sts?canary={value}", token)
        assert response.status_code == 400, (value, response.json_body)
        error = response.json_body["error"]
        assert error["details"]["field"] == "canary"
        assert "POST /verify-sts/canary" in error["message"]
    tenant = TenantModel.get(call(api, "GET", "/account", token).json_body["tenant_id"])
    assert tenant.canary_sent_at is None  # nothing was sent
    # The canary's own route runs the checklist (this tenant has no account: nothing to send).
    checked = call(api, "POST", "/verify-sts/canary", token)
    assert checked.status_code == 200, checked.json_body
    assert {c["id"] for c in checked.json_body["checks"]} >= {"canary", "role_assumable"}


def test_tags_named_like_dynamodb_types_are_indexed_and_the_tenant_still_reads(
    api: Client, moto: str, pool: dict[str, str]
) -> None:
    """Found by the fuzzing: {"S": time} is what PynamoDB takes for an already serialised
    string, so a tag named S was stored as a bare string and every later request was a 500."""
    token = sign_in(moto, pool)
    for names in (["S"], ["N", "M"], ["BOOL", "NULL", "SS"]):
        saved = call(api, "PUT", "/account/settings", token, {"indexed_tags": names})
        assert saved.status_code == 200, saved.json_body
        assert saved.json_body["indexed_tags"] == sorted(names)
        account = call(api, "GET", "/account", token)
        assert account.status_code == 200, account.json_body
        stored = TenantModel.get(account.json_body["tenant_id"]).indexed_tags_since
        assert sorted(stored) == sorted(names)
