"""The counters' feed in the operator stack: the messages table's stream (from the one table
description), the event source mapping that hands it to `count_events` with settings under which
a retry sees the very same batch and no counter change is dropped, the function's role (that
stream and the counters table, nothing else) and the alarms on lag and errors. Pulumi's mocks."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
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
from pulumi_mocks import ALARM, EVENT_SOURCE, TABLE, as_list  # noqa: E402

tables_module = pytest.importorskip("chalicelib.core.tables")
tables = import_infra("tables")
roles = import_infra("roles")

ACCOUNT = "444455556666"
# Spelled out, not imported: what the function is owed (see infra/counting.py).
FILTER = {
    "eventName": ["INSERT", "MODIFY"],
    "dynamodb": {"NewImage": {"cc": {"S": [{"exists": True}]}}},
}
LOGS = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/sesami-{STACK}-count-events:*"
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("package"), package_template())


@pytest.fixture(scope="module")
def deployed(package: Path) -> Deployment:
    return run_program(stack_config(package))


def _table(deployed: Deployment, logical: str) -> dict[str, Any]:
    (table,) = [
        t.state
        for t in deployed.mocks.of_type(TABLE)
        if t.state["name"] == f"sesami-{STACK}-{logical}"
    ]
    return table


def _mapping(deployed: Deployment) -> dict[str, Any]:
    return deployed.state(EVENT_SOURCE, "count-events")


# --- The stream ---------------------------------------------------------------------------------


def test_the_messages_table_streams_new_and_old_images(deployed: Deployment) -> None:
    messages = _table(deployed, "messages")
    assert messages["streamEnabled"] is True
    assert messages["streamViewType"] == "NEW_AND_OLD_IMAGES"
    assert deployed.outputs["messages_stream_arn"] == messages["streamArn"]


def test_only_the_tables_whose_spec_says_so_have_a_stream(deployed: Deployment) -> None:
    specs = tables_module.table_specs()
    streamed = {name for name, spec in specs.items() if spec.get("stream_view_type")}
    assert streamed == {"messages"}
    for name, spec in specs.items():
        table = _table(deployed, name)
        if name in streamed:
            assert table["streamViewType"] == spec["stream_view_type"], name
        else:
            assert not table.get("streamEnabled") and "streamViewType" not in table, name


def test_the_stream_follows_the_spec_not_the_table_name() -> None:
    spec: dict[str, Any] = {
        "hash_key": "pk",
        "range_key": None,
        "attributes": {"pk": "S"},
        "global_secondary_indexes": [],
        "ttl_attribute": None,
    }
    args = tables.TablesArgs("p-")
    plain_args = tables.table_args("messages", spec | {"stream_view_type": None}, args)
    assert "stream_enabled" not in plain_args and "stream_view_type" not in plain_args
    keys_only = tables.table_args("x", spec | {"stream_view_type": "KEYS_ONLY"}, args)
    assert (keys_only["stream_enabled"], keys_only["stream_view_type"]) == (True, "KEYS_ONLY")


# --- The mapping --------------------------------------------------------------------------------


def test_the_mapping_reads_the_messages_stream_into_count_events(deployed: Deployment) -> None:
    mapping = _mapping(deployed)
    assert mapping["eventSourceArn"] == _table(deployed, "messages")["streamArn"]
    assert mapping["functionName"] == deployed.function("count_events")["name"]
    assert mapping["startingPosition"] == "TRIM_HORIZON"


def test_batches_of_a_thousand_gathered_for_five_seconds(deployed: Deployment) -> None:
    mapping = _mapping(deployed)
    assert mapping["batchSize"] == 1000
    assert mapping["maximumBatchingWindowInSeconds"] == 30


def test_a_retry_sees_the_very_same_batch(deployed: Deployment) -> None:
    mapping = _mapping(deployed)
    assert mapping["bisectBatchOnFunctionError"] is False
    assert not mapping.get("functionResponseTypes")  # no partial batch responses
    assert mapping["parallelizationFactor"] == 1
    assert not mapping.get("tumblingWindowInSeconds")


def test_no_counter_change_is_dropped_by_the_mapping(deployed: Deployment) -> None:
    mapping = _mapping(deployed)
    assert mapping["maximumRetryAttempts"] == -1
    assert mapping["maximumRecordAgeInSeconds"] == -1


def test_only_inserted_or_modified_entries_carrying_counter_changes_invoke_it(
    deployed: Deployment,
) -> None:
    (only,) = _mapping(deployed)["filterCriteria"]["filters"]
    assert json.loads(only["pattern"]) == FILTER
    assert tables_module.COUNTED_ATTRIBUTE == "cc"


# --- The role -----------------------------------------------------------------------------------


def _granted(deployment: Deployment) -> set[tuple[str, str]]:
    return {
        (action, resource)
        for statement in deployment.role_policy("count_events")["Statement"]
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def test_the_role_reads_the_messages_stream_and_adds_to_the_counters_nothing_else(
    deployed: Deployment,
) -> None:
    streams = _table(deployed, "messages")["arn"] + "/stream/*"
    counters = _table(deployed, "counters")["arn"]
    assert _granted(deployed) == {
        ("dynamodb:DescribeStream", streams),
        ("dynamodb:GetRecords", streams),
        ("dynamodb:GetShardIterator", streams),
        ("dynamodb:ListStreams", "*"),  # no resource type in IAM (roles.py)
        ("dynamodb:UpdateItem", counters),
        ("dynamodb:PutItem", counters),
        ("logs:CreateLogStream", LOGS),
        ("logs:PutLogEvents", LOGS),
    }
    for statement in deployed.role_policy("count_events")["Statement"]:
        assert statement["Effect"] == "Allow" and "Condition" not in statement


def test_the_stream_grant_covers_the_mapped_stream_and_no_other_table(
    deployed: Deployment,
) -> None:
    (streams,) = {r for a, r in _granted(deployed) if a == "dynamodb:GetRecords"}
    assert fnmatch.fnmatchcase(_mapping(deployed)["eventSourceArn"], streams)
    for table in deployed.mocks.of_type(TABLE):
        other = f"{table.state['arn']}/stream/{'2026-12-01T14:24:00.000'}"
        assert fnmatch.fnmatchcase(other, streams) == table.state["name"].endswith("-messages")


def test_with_tracing_the_role_adds_only_x_ray(package: Path, deployed: Deployment) -> None:
    traced = run_program(stack_config(package, tracing="true"))
    assert _granted(traced) == _granted(deployed) | {(a, "*") for a in XRAY}


def test_the_policy_builder_refuses_a_scope_without_the_stream_or_the_counters() -> None:
    base = {"partition": "aws", "tables": (), "indexes": (), "log_group": "arn:x"}
    for missing in ({"counters_table": "arn:t"}, {"stream": "arn:t/stream/*"}, {}):
        with pytest.raises(ValueError, match="messages stream and the counters table"):
            roles.count_events_policy(roles.Scope(**base, **missing))


# --- The alarms ---------------------------------------------------------------------------------


def test_the_counters_lag_alarms_past_a_minute_for_five_minutes(deployed: Deployment) -> None:
    alarm = deployed.state(ALARM, "counters-lag")
    assert alarm["name"] == f"sesami-{STACK}-counters-lag"
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Lambda", "IteratorAge")
    assert alarm["dimensions"] == {"FunctionName": deployed.function("count_events")["name"]}
    assert alarm["statistic"] == "Maximum"
    assert alarm["threshold"] == 60_000  # IteratorAge is in milliseconds
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert (alarm["period"], alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (60, 5, 5)
    assert alarm["treatMissingData"] == "notBreaching"
    assert alarm["alarmActions"] == [ALARM_TOPIC]


def test_a_failed_count_events_invocation_alarms(deployed: Deployment) -> None:
    alarm = deployed.state(ALARM, "count-events-errors")
    assert alarm["name"] == f"sesami-{STACK}-count-events-errors"
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["dimensions"] == {"FunctionName": deployed.function("count_events")["name"]}
    assert alarm["statistic"] == "Sum" and alarm["threshold"] == 1
    assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["alarmActions"] == [ALARM_TOPIC]
