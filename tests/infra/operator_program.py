"""Runs the operator stack's program (infra/__main__.py) under Pulumi's mocks.

The mocks answer like AWS would (ARNs, URLs and IDs in SESami's account), keep every registered
resource's inputs, and the program reads a stand-in for the `chalice package` output: a small
zip and a sam.json in Chalice's shape, made from the app's own routes and functions (the real
package is built and checked by test_package.py)."""

from __future__ import annotations

import importlib
import json
import runpy
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from chalice.deploy.swagger import SwaggerGenerator

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PROJECT = "sesami"
STACK = "prod"
ACCOUNT = "444455556666"
REGION = "eu-west-1"
ALARM_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:sesami-ops"
USER_POOL_ID = f"{REGION}_Ab12Cd34E"
CLIENT_ID = "4q2hv1e6ks0jg3c9o7n5r8t1ab"
REST_API_ID = "k3x9q2w1z0"
# Shaped like the real ones, never used anywhere else.
SECRETS = {
    "momentoApiKey": "eyJhcGlfa2V5IjoibW9tZW50by10ZXN0LW9ubHkifQ",
    "signingKey": "5e" * 32,
    "credentialsKey": "c7" * 32,
}
# Memory and timeout of the stand-in package (the real ones come from app/.chalice/config.json).
PACKAGE_SIZING = {"api": (1024, 30), "ingest": (512, 30), "bulk_worker": (512, 300)}

USER_POOL = "aws:cognito/userPool:UserPool"
APP_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
BUS = "aws:cloudwatch/eventBus:EventBus"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
PERMISSION = "aws:lambda/permission:Permission"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PARAMETER = "aws:ssm/parameter:Parameter"
REST_API = "aws:apigateway/restApi:RestApi"
API_DEPLOYMENT = "aws:apigateway/deployment:Deployment"
API_STAGE = "aws:apigateway/stage:Stage"
BUCKET = "aws:s3/bucket:Bucket"

# How the SDK hands a secret input to the mock monitor: wrapped, tagged with Pulumi's signature.
_SIG_KEY = pulumi.runtime.rpc._special_sig_key
_SECRET_SIG = pulumi.runtime.rpc._special_secret_sig


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def plain(value: Any) -> Any:
    return value["value"] if is_secret(value) else value


def import_infra(name: str) -> Any:
    """An infra/ module, refusing a same-named module from elsewhere (tests/events is data)."""
    if str(INFRA) not in sys.path:
        sys.path.insert(0, str(INFRA))
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == INFRA, module.__file__
    return module


@dataclass
class Registered:
    typ: str
    name: str
    state: dict[str, Any]


class AwsMocks(pulumi.runtime.Mocks):
    """Answers like AWS would: ARNs, queue URLs and generated IDs in SESami's account."""

    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        name = state.get("name") or f"{args.name}-5d2a9c1"
        resource_id = name
        if args.typ == USER_POOL:
            resource_id = USER_POOL_ID
            state["arn"] = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{resource_id}"
        elif args.typ == APP_CLIENT:
            resource_id = CLIENT_ID
        elif args.typ == BUS:
            state["arn"] = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}"
        elif args.typ == RULE:
            state["arn"] = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{state['eventBusName']}/{name}"
            resource_id = f"{state['eventBusName']}/{name}"
        elif args.typ == QUEUE:
            state["arn"] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            state["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
            resource_id = state["url"]
        elif args.typ == TABLE:
            state["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        elif args.typ == FUNCTION:
            state["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
            state["version"] = "7" if state.get("publish") else "$LATEST"
            state["qualifiedArn"] = f"{state['arn']}:{state['version']}"
        elif args.typ == ALIAS:
            function = state["functionName"]
            state["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}:{name}"
        elif args.typ == ROLE:
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role{state.get('path', '/')}{name}"
        elif args.typ == LOG_GROUP:
            state["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"
        elif args.typ == PARAMETER:
            state["arn"] = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"
        elif args.typ == REST_API:
            resource_id = REST_API_ID
            state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{REST_API_ID}"
            state["rootResourceId"] = "a1b2c3d4e5"
        elif args.typ == BUCKET:
            state.setdefault("bucket", name)
            state["arn"] = f"arn:aws:s3:::{state['bucket']}"
            resource_id = state["bucket"]
        elif args.typ == API_DEPLOYMENT:
            resource_id = "dpl0y1"
        elif args.typ == API_STAGE:
            state["invokeUrl"] = (
                f"https://{state['restApi']}.execute-api.{REGION}.amazonaws.com/{state['stageName']}"
            )
        state.setdefault("name", name)
        self.resources.append(Registered(args.typ, args.name, state))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/operator",
                "userId": "AIDAEXAMPLEOPERATOR01",
                "id": ACCOUNT,
            }
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION, "id": REGION}
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }
        raise NotImplementedError(f"unexpected invoke {args.token}")

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name_contains: str = "") -> Registered:
        matches = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(matches) == 1, f"expected one {typ} named *{name_contains}*, got {matches}"
        return matches[0]


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
    handlers = {"api": "app.app", **{f.name: f"app.{f.name}" for f in app.pure_lambda_functions}}
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
    saved = dict(pulumi.runtime.config.CONFIG.get())
    saved_secret = set(pulumi.runtime.config._SECRET_KEYS.get())
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{k}": v for k, v in config.items()},
        [f"{PROJECT}:{k}" for k in (secret_keys if secret_keys is not None else SECRETS)],
    )
    mocks = AwsMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=STACK, preview=False)
    outputs: dict[str, Any] = {}
    import_infra("target")  # the program's modules import each other from infra/

    @pulumi.runtime.test
    def run() -> Any:
        runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")
        exported = pulumi.runtime.get_root_resource().outputs

        async def collect() -> None:
            for key, output in exported.items():
                outputs[key] = await pulumi.Output.from_input(output).future()

        return collect()

    try:
        run()
    finally:
        pulumi.runtime.set_all_config(saved, list(saved_secret))
    return Deployment(mocks, outputs)


def stack_config(package: Path, **extra: str) -> dict[str, str]:
    return {**SECRETS, "alarmTopicArn": ALARM_TOPIC, "packagePath": str(package), **extra}
