"""Pulumi's mocks for SESami's two programs, the operator stack (infra/) and the customer's
onboarding stack (customer-onboarding/), and the helpers the tests of both use.

No Pulumi CLI or AWS account is reachable from the tests, so a program runs under
`pulumi.runtime.set_mocks`: `AwsMocks` keeps every registered resource's inputs and answers as
AWS would, with ARNs, queue URLs and generated IDs in the account and region it is given; the
tests assert on what would be sent to AWS. `run` resolves what a program exports (and which of
it is secret) once the mock engine has settled.

    mocks = use_mocks(AwsMocks(ACCOUNT, REGION), project="sesami", stack="prod")
    exported = run(lambda: {"roleArn": component.role_arn})
    mocks.one(ROLE, "access").state["assumeRolePolicy"]
"""

from __future__ import annotations

import importlib
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.stack import Stack

# Resource types, as Pulumi's AWS provider names them.
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ALIAS = "aws:lambda/alias:Alias"
API_DEPLOYMENT = "aws:apigateway/deployment:Deployment"
API_STAGE = "aws:apigateway/stage:Stage"
BUCKET = "aws:s3/bucket:Bucket"
METHOD_SETTINGS = "aws:apigateway/methodSettings:MethodSettings"
APP_CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUS = "aws:cloudwatch/eventBus:EventBus"
CONFIGURATION_SET = "aws:sesv2/configurationSet:ConfigurationSet"
EVENT_DESTINATION = "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination"
EVENT_SOURCE = "aws:lambda/eventSourceMapping:EventSourceMapping"
FUNCTION = "aws:lambda/function:Function"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PARAMETER = "aws:ssm/parameter:Parameter"
PERMISSION = "aws:lambda/permission:Permission"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
REST_API = "aws:apigateway/restApi:RestApi"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
RULE = "aws:cloudwatch/eventRule:EventRule"
TABLE = "aws:dynamodb/table:Table"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
USER_POOL = "aws:cognito/userPool:UserPool"

# What the mocks generate where AWS would: the suffix of autonamed resources, and IDs.
AUTONAME = "7c1f3e2"
USER_POOL_SUFFIX = "Ab12Cd34E"
CLIENT_ID = "4q2hv1e6ks0jg3c9o7n5r8t1ab"
REST_API_ID = "k3x9q2w1z0"
STREAM_LABEL = "2026-12-01T14:24:00.000"

# How the SDK hands a secret input to the engine (and so to the mock monitor): wrapped in a map
# tagged with Pulumi's secret signature.
_SIG_KEY = pulumi.runtime.rpc._special_sig_key
_SECRET_SIG = pulumi.runtime.rpc._special_secret_sig


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_SIG_KEY) == _SECRET_SIG


def plain(value: Any) -> Any:
    return value["value"] if is_secret(value) else value


def import_from(directory: Path, name: str) -> Any:
    """A program's module, imported the way Pulumi does (from the program's directory), refusing
    a same-named module from elsewhere on sys.path rather than testing the wrong code."""
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    module = importlib.import_module(name)
    assert Path(module.__file__ or "").resolve().parent == directory, module.__file__
    return module


@dataclass
class Registered:
    typ: str
    name: str
    state: dict[str, Any]


class AwsMocks(pulumi.runtime.Mocks):
    """Answers as AWS would in `account` and `region`: autonamed resources get a suffix; ARNs,
    queue URLs and generated IDs have the real shapes. `resources` keeps what was registered."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region
        self.resources: list[Registered] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        name = state.get("name") or f"{args.name}-{AUTONAME}"
        region, account = self.region, self.account
        resource_id = name
        if args.typ == USER_POOL:
            resource_id = f"{region}_{USER_POOL_SUFFIX}"
            state["arn"] = f"arn:aws:cognito-idp:{region}:{account}:userpool/{resource_id}"
        elif args.typ == APP_CLIENT:
            resource_id = CLIENT_ID
        elif args.typ == BUCKET:
            name = resource_id = state.get("bucket") or name
            state["arn"] = f"arn:aws:s3:::{name}"
        elif args.typ == BUS:
            state["arn"] = f"arn:aws:events:{region}:{account}:event-bus/{name}"
        elif args.typ == RULE:
            bus = state.get("eventBusName") or "default"
            path = name if bus == "default" else f"{bus}/{name}"
            state["arn"] = f"arn:aws:events:{region}:{account}:rule/{path}"
            resource_id = path
        elif args.typ == QUEUE:
            state["arn"] = f"arn:aws:sqs:{region}:{account}:{name}"
            state["url"] = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
            resource_id = state["url"]
        elif args.typ == QUEUE_POLICY:
            resource_id = state["queueUrl"]
        elif args.typ == TABLE:
            state["arn"] = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            if state.get("streamEnabled"):
                state["streamLabel"] = STREAM_LABEL
                state["streamArn"] = f"{state['arn']}/stream/{STREAM_LABEL}"
        elif args.typ == FUNCTION:
            state["arn"] = f"arn:aws:lambda:{region}:{account}:function:{name}"
            state["version"] = "7" if state.get("publish") else "$LATEST"
            state["qualifiedArn"] = f"{state['arn']}:{state['version']}"
        elif args.typ == ALIAS:
            function = state["functionName"]
            state["arn"] = f"arn:aws:lambda:{region}:{account}:function:{function}:{name}"
        elif args.typ == ROLE:
            state["arn"] = f"arn:aws:iam::{account}:role{state.get('path', '/')}{name}"
        elif args.typ == ROLE_POLICY:
            resource_id = f"{state['role']}:{name}"
        elif args.typ == CONFIGURATION_SET:
            resource_id = state["configurationSetName"]
            state["arn"] = f"arn:aws:ses:{region}:{account}:configuration-set/{resource_id}"
        elif args.typ == LOG_GROUP:
            state["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{name}"
        elif args.typ == PARAMETER:
            state["arn"] = f"arn:aws:ssm:{region}:{account}:parameter{name}"
        elif args.typ == REST_API:
            resource_id = REST_API_ID
            state["executionArn"] = f"arn:aws:execute-api:{region}:{account}:{REST_API_ID}"
            state["rootResourceId"] = "a1b2c3d4e5"
        elif args.typ == BUCKET:
            state.setdefault("bucket", name)
            state["arn"] = f"arn:aws:s3:::{state['bucket']}"
            resource_id = state["bucket"]
        elif args.typ == API_DEPLOYMENT:
            resource_id = "dpl0y1"
        elif args.typ == API_STAGE:
            state["invokeUrl"] = (
                f"https://{state['restApi']}.execute-api.{region}.amazonaws.com/{state['stageName']}"
            )
        state.setdefault("name", name)
        self.resources.append(Registered(args.typ, args.name, state))
        return resource_id, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account,
                "arn": f"arn:aws:iam::{self.account}:user/deployer",
                "userId": "AIDAEXAMPLEDEPLOYER01",
                "id": self.account,
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "region": self.region,
                "name": self.region,
                "id": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }, []
        raise NotImplementedError(f"unexpected invoke {args.token}")

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name_contains: str = "") -> Registered:
        matches = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(matches) == 1, f"expected one {typ} named *{name_contains}*, got {matches}"
        return matches[0]


def use_mocks(mocks: AwsMocks, project: str, stack: str) -> AwsMocks:
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False)
    return mocks


def set_config(project: str, values: Mapping[str, str], secret_keys: list[str]) -> None:
    """The stack's config (keys without the project prefix), `secret_keys` among them secret."""
    pulumi.runtime.set_all_config(
        {f"{project}:{key}": value for key, value in values.items()},
        [f"{project}:{key}" for key in secret_keys],
    )


@contextmanager
def saved_config() -> Iterator[None]:
    """Whatever config is set inside is undone on the way out."""
    saved = dict(pulumi.runtime.config.CONFIG.get())
    saved_secret = set(pulumi.runtime.config._SECRET_KEYS.get())
    try:
        yield
    finally:
        pulumi.runtime.set_all_config(saved, list(saved_secret))


@dataclass
class Exported:
    values: dict[str, Any] = field(default_factory=dict)
    secret: set[str] = field(default_factory=set)


def run(program: Callable[[], Mapping[str, Any]]) -> Exported:
    """Run `program` under the mocks set with `use_mocks`; resolve the outputs it returns."""
    exported = Exported()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]  # the SDK leaves it unannotated
    def test() -> Any:
        outputs = program()

        async def collect() -> None:
            for key, value in outputs.items():
                output = pulumi.Output.from_input(value)
                exported.values[key] = await output.future()
                if await output.is_secret():
                    exported.secret.add(key)

        return collect()

    test()
    return exported


def run_main(directory: Path) -> Exported:
    """Run a program's __main__.py as `pulumi up` would; resolve what it exports."""

    def program() -> Mapping[str, Any]:
        runpy.run_path(str(directory / "__main__.py"), run_name="__main__")
        stack = pulumi.runtime.get_root_resource()
        assert isinstance(stack, Stack), stack
        return stack.outputs

    return run(program)


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy document's statements (IAM allows one as a plain object)."""
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: str | list[str]) -> list[str]:
    """An Action, Resource or Principal value (a string or a list of them) as a list."""
    return [value] if isinstance(value, str) else list(value)
