"""GET /account/onboarding/stack hands an admin a ready-to-run bundle of the onboarding program
with the tenant's own values (tests/infra/test_onboarding_bundle.py runs the program's tests
against a bundle)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from typing import Any

from chalice.test import Client

from tests.api_fixtures import call, sign_in
from tests.conftest import ROOT


def _stack_config(body: dict[str, Any]) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(body["content_base64"]))) as archive:
        text = archive.read("sesami-onboarding/Pulumi.sesami.yaml").decode()
    config: dict[str, Any] = json.loads(
        "\n".join(x for x in text.splitlines() if not x.startswith("#"))
    )["config"]
    return config


def test_an_admin_gets_the_program_with_the_tenants_values(
    api: Client, moto: str, pool: dict[str, str], app_settings: Any
) -> None:
    token = sign_in(moto, pool)
    account = call(api, "GET", "/account", token).json_body
    response = call(api, "GET", "/account/onboarding/stack", token)
    assert response.status_code == 200, response.json_body
    body = response.json_body
    data = base64.b64decode(body["content_base64"])
    assert hashlib.sha256(data).hexdigest() == body["sha256"] and len(data) == body["bytes"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        program = {n.split("/", 1)[1]: archive.read(n) for n in names}
    for name in ("Pulumi.yaml", "__main__.py", "onboarding.py", "policies.py"):
        assert program[name] == (ROOT / "customer-onboarding" / name).read_bytes(), name
    lines = [x for x in program["Pulumi.sesami.yaml"].decode().splitlines() if x[:1] != "#"]
    config = json.loads("\n".join(lines))["config"]
    ns = "sesami-customer-onboarding"
    assert config[f"{ns}:externalId"] == account["external_id"]
    assert config[f"{ns}:sesamiEventBusArn"] == pool["bus_arn"]
    assert config["aws:region"] == "us-east-1"
    assert body["steps"][-2:] == ["pulumi stack init sesami", "pulumi up"]
    # Another tenant's bundle carries its own external ID, never this one's.
    other = call(api, "GET", "/account/onboarding/stack", sign_in(moto, pool)).json_body
    assert account["external_id"] not in base64.b64decode(other["content_base64"]).decode("latin-1")
