"""The webhook queue in the operator stack: encrypted, a redrive to a dead-letter queue that
alarms at one message, consumed by the webhooks function with partial batch responses and a
concurrency cap (so deliveries never take the Lambda concurrency ingest needs). Pulumi's mocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    ALARM_TOPIC,
    PACKAGE_SIZING,
    Deployment,
    package_template,
    run_program,
    stack_config,
    write_package,
)
from pulumi_mocks import (  # noqa: E402
    ALARM,
    EVENT_SOURCE,
    QUEUE,
    plain,
)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("package"), package_template())


@pytest.fixture(scope="module")
def deployed(package: Path) -> Deployment:
    return run_program(stack_config(package))


def _queue(deployed: Deployment, suffix: str) -> dict[str, object]:
    (queue,) = [q.state for q in deployed.mocks.of_type(QUEUE) if q.state["name"].endswith(suffix)]
    return queue


def test_the_webhook_queue_is_encrypted_and_redrives_to_its_dead_letter_queue(
    deployed: Deployment,
) -> None:
    queue, dlq = _queue(deployed, "-webhooks"), _queue(deployed, "-webhooks-dlq")
    assert queue["sqsManagedSseEnabled"] is True and dlq["sqsManagedSseEnabled"] is True
    redrive = json.loads(plain(queue["redrivePolicy"]))
    assert redrive == {"deadLetterTargetArn": dlq["arn"], "maxReceiveCount": 5}
    assert queue["visibilityTimeoutSeconds"] == 6 * PACKAGE_SIZING["webhooks"][1]
    assert dlq["messageRetentionSeconds"] == 14 * 86_400
    assert deployed.outputs["webhook_queue_url"] == queue["url"]
    assert deployed.outputs["webhook_dlq_url"] == dlq["url"]


def test_one_message_in_the_webhook_dead_letter_queue_alarms(deployed: Deployment) -> None:
    alarm = deployed.state(ALARM, "webhooks-dlq-depth")
    assert alarm["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["dimensions"] == {"QueueName": _queue(deployed, "-webhooks-dlq")["name"]}
    assert alarm["threshold"] == 1 and alarm["comparisonOperator"].startswith("GreaterThanOrEqual")
    assert alarm["alarmActions"] == [ALARM_TOPIC]


def test_the_webhooks_function_consumes_the_queue_with_partial_batches_and_a_cap(
    deployed: Deployment, package: Path
) -> None:
    source = deployed.state(EVENT_SOURCE, "webhooks")
    assert source["eventSourceArn"] == _queue(deployed, "-webhooks")["arn"]
    assert source["functionName"] == deployed.function("webhooks")["name"]
    assert source["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["batchSize"] == 10
    assert source["scalingConfig"] == {"maximumConcurrency": 20}
    capped = run_program(stack_config(package, webhookConcurrency="5"))
    assert capped.state(EVENT_SOURCE, "webhooks")["scalingConfig"] == {"maximumConcurrency": 5}
