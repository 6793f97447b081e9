"""The deployed refresh of Apple's relay ranges (infra/relay_ranges.py): a private bucket, a daily
schedule on the default bus that only it may use to invoke the relay_ranges function, an alarm
on a failed run, and two one-object grants: the function puts the copy, ingest gets it, nobody
lists the bucket or touches anything else in S3."""

from __future__ import annotations

import json

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    ACCOUNT,
    ALARM_TOPIC,
    REGION,
    STACK,
    Deployment,
    import_infra,
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import (  # noqa: E402
    ALARM,
    BUCKET,
    BUCKET_PUBLIC_ACCESS,
    PERMISSION,
    RULE,
    TARGET,
    as_list,
)

relays = import_infra("relay_ranges")
target_module = import_infra("target")
BUCKET_NAME = f"sesami-{STACK}-relay-ranges-{ACCOUNT}-{REGION}"
OBJECT = f"arn:aws:s3:::{BUCKET_NAME}/relay-ranges/apple_relay_egress.csv"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    package = write_package(tmp_path_factory.mktemp("package"), package_template())
    return run_program(stack_config(package, alarmTopicArn=ALARM_TOPIC))


def test_the_copy_lives_in_a_private_bucket_named_before_it_exists(deployed: Deployment) -> None:
    bucket = deployed.state(BUCKET, "relay-ranges")
    assert bucket["bucket"] == BUCKET_NAME == deployed.outputs["relay_ranges_bucket"]
    private = deployed.state(BUCKET_PUBLIC_ACCESS, "relay-ranges")
    assert private["bucket"] == BUCKET_NAME
    for setting in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"):
        assert private[setting] is True, setting
    assert private["restrictPublicBuckets"] is True


def test_a_daily_schedule_on_the_default_bus_invokes_only_the_refresh(
    deployed: Deployment,
) -> None:
    rule = deployed.state(RULE, "relay-ranges")
    assert rule["scheduleExpression"] == "rate(1 day)"
    assert "eventBusName" not in rule and "eventPattern" not in rule  # schedules: default bus
    target = deployed.state(TARGET, "relay-ranges")
    function = deployed.function("relay_ranges")
    assert target["rule"] == rule["name"] and target["arn"] == function["arn"]
    permission = deployed.state(PERMISSION, "relay-ranges")
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["function"] == function["name"]
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["sourceArn"] == rule["arn"]


def test_a_failed_refresh_alarms(deployed: Deployment) -> None:
    alarm = deployed.state(ALARM, "relay-ranges")
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["dimensions"] == {"FunctionName": deployed.function("relay_ranges")["name"]}
    assert alarm["alarmActions"] == [ALARM_TOPIC]


def test_the_refresh_puts_the_one_object_and_ingest_gets_it_nothing_else_in_s3(
    deployed: Deployment,
) -> None:
    s3 = {}
    for name in (
        "api",
        "ingest",
        "bulk_worker",
        "webhooks",
        "authorizer",
        "relay_ranges",
        "count_events",
    ):
        s3[name] = {
            (action, resource)
            for statement in deployed.role_policy(name)["Statement"]
            for action in as_list(statement["Action"])
            if action.startswith("s3:")
            for resource in as_list(statement["Resource"])
            if "relay-ranges" in resource  # the content bucket's grants: test_operator_content
        }
    assert s3 == {
        "api": set(),
        "ingest": {("s3:GetObject", OBJECT)},
        "bulk_worker": set(),
        "webhooks": set(),
        "authorizer": set(),
        "relay_ranges": {("s3:PutObject", OBJECT)},
        "count_events": set(),
    }
    # The refresh function: that object and its logs, nothing else (no table, queue, secret).
    actions = {
        a for s in deployed.role_policy("relay_ranges")["Statement"] for a in as_list(s["Action"])
    }
    assert actions == {"s3:PutObject", "logs:CreateLogStream", "logs:PutLogEvents"}


def test_bucket_names_are_valid_s3_names_whatever_the_stack() -> None:
    target = target_module.Target(account_id=ACCOUNT, region=REGION)
    for prefix in ("sesami-prod-", "sesami-Dev_Ana-", "sesami-" + "x" * 80 + "-"):
        name = relays.bucket_name(prefix, target)
        assert 3 <= len(name) <= 63 and name == name.lower(), name
        assert all(c.isalnum() or c == "-" for c in name) and name[0] != "-" != name[-1], name
    assert json.dumps(relays.object_arn("aws", BUCKET_NAME)) == json.dumps(OBJECT)


def test_the_scope_without_its_object_is_refused() -> None:
    roles = import_infra("roles")
    scope = roles.Scope(partition="aws", tables=(), indexes=(), log_group="arn:x")
    with pytest.raises(ValueError, match="object"):
        roles.relay_ranges_policy(scope)
