"""Runs the operator stack's program (infra/__main__.py) under Pulumi's mocks (pulumi_mocks.py,
in SESami's account).

The program reads a stand-in for the `chalice package` output: a small zip and a sam.json in
Chalice's shape, made from the app's own routes and functions (the real package is built and
checked by test_package.py)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.deploy.swagger import SwaggerGenerator
from pulumi_mocks import (
    FUNCTION,
    REST_API,
    ROLE_POLICY,
    AwsMocks,
    import_from,
    plain,
    run_main,
    saved_config,
    set_config,
    use_mocks,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PROJECT = "sesami"
STACK = "prod"
ACCOUNT = "444455556666"
REGION = "eu-west-1"
ALARM_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:sesami-ops"
# Shaped like the real ones, never used anywhere else.
SECRETS = {
    "momentoApiKey": "eyJhcGlfa2V5IjoibW9tZW50by10ZXN0LW9ubHkifQ",
    "signingKey": "5e" * 32,
    "credentialsKey": "c7" * 32,
    "webhookKey": "a9" * 32,
}
# Memory and timeout of the stand-in package (the real ones come from app/.chalice/config.json).
PACKAGE_SIZING = {
    "api": (1024, 30),
    "ingest": (512, 30),
    "bulk_worker": (512, 300),
    "webhooks": (512, 60),
    "authorizer": (512, 10),
    "relay_ranges": (512, 120),
    "count_events": (512, 60),
}


def import_infra(name: str) -> Any:
    """An infra/ module, refusing a same-named module from elsewhere (tests/events is data)."""
    return import_from(INFRA, name)


@dataclass
class Deployment:
    mocks: AwsMocks
    outputs: dict[str, Any]

    def state(self, typ: str, name_contains: str = "") -> dict[str, Any]:
        return self.mocks.one(typ, name_contains).state

    def function(self, chalice_name: str) -> dict[str, Any]:
        return self.state(FUNCTION, f"sesami-{chalice_name}")

    def environment(self, chalice_name: str) -> dict[str, Any]:
        variables: dict[str, Any] = plain(self.function(chalice_name)["environment"])["variables"]
        return variables

    def role_policy(self, chalice_name: str) -> dict[str, Any]:
        policy: dict[str, Any] = json.loads(
            plain(self.state(ROLE_POLICY, f"sesami-{chalice_name}-policy")["policy"])
        )
        return policy

    def api_body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(plain(self.state(REST_API)["body"]))
        return body


def app_and_public_routes() -> tuple[Any, frozenset[tuple[str, str]]]:
    app, public = import_infra("gateway").load_app()
    return app, public


def package_template(runtime: str = "python3.11") -> dict[str, Any]:
    """A sam.json in Chalice's shape for the app as it is: its routes and its functions."""
    app, _ = app_and_public_routes()
    handlers = {
        "api": "app.app",
        **{f.name: f"app.{f.name}" for f in app.pure_lambda_functions},
        **{a.name: a.handler_string for a in app.builtin_auth_handlers},
    }
    resources: dict[str, Any] = {
        f"Function{name.title().replace('_', '')}": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Runtime": runtime,
                "Handler": handler,
                "CodeUri": "./deployment.zip",
                "Architectures": ["x86_64"],
                "MemorySize": PACKAGE_SIZING[name][0],
                "Timeout": PACKAGE_SIZING[name][1],
            },
        }
        for name, handler in handlers.items()
    }
    swagger = SwaggerGenerator(
        "us-east-1", {"api_handler_arn": "arn:aws:lambda:us-east-1:1:function:x"}
    ).generate_swagger(app)
    resources["RestAPI"] = {
        "Type": "AWS::Serverless::Api",
        "Properties": {"StageName": "api", "DefinitionBody": swagger},
    }
    return {"Resources": resources}


def write_package(directory: Path, template: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    zip_path = directory / "deployment.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("app.py", "# stand-in for the chalice package\n")
    (directory / "sam.json").write_text(json.dumps(template))
    return zip_path


def run_program(config: dict[str, str], secret_keys: list[str] | None = None) -> Deployment:
    """Run infra/__main__.py with this stack config (keys without the project prefix)."""
    with saved_config():
        set_config(PROJECT, config, list(SECRETS) if secret_keys is None else secret_keys)
        mocks = use_mocks(AwsMocks(ACCOUNT, REGION), PROJECT, STACK)
        import_infra("target")  # the program's modules import each other from infra/
        exported = run_main(INFRA)
    return Deployment(mocks, exported.values)


def stack_config(package: Path, **extra: str) -> dict[str, str]:
    return {**SECRETS, "alarmTopicArn": ALARM_TOPIC, "packagePath": str(package), **extra}
