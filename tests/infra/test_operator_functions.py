"""The operator stack's Lambda functions: deployed from the `chalice package` zip with what its
template says, the environment each needs (secrets only by SSM parameter name), ingest's async
failures kept in an encrypted queue, and SnapStart behind its switch. Pulumi's mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")
pytest.importorskip("pulumi_aws", reason="Pulumi programs are tested from .venv-infra")

from operator_program import (  # noqa: E402
    ACCOUNT,
    ALARM_TOPIC,
    PACKAGE_SIZING,
    REGION,
    SECRETS,
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
    ALIAS,
    FUNCTION,
    INVOKE_CONFIG,
    LOG_GROUP,
    PARAMETER,
    PERMISSION,
    QUEUE,
    is_secret,
    plain,
)

settings = pytest.importorskip("chalicelib.core.settings")

functions = import_infra("functions")
secret_store = import_infra("secret_store")

CHALICE_NAMES = {
    "api",
    "ingest",
    "bulk_worker",
    "webhooks",
    "authorizer",
    "relay_ranges",
    "count_events",
}
SECRET_ENV = {
    "SESAMI_MOMENTO_API_KEY",
    "SESAMI_SIGNING_KEY",
    "SESAMI_CREDENTIALS_KEY",
    "SESAMI_WEBHOOK_KEY",
}


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("package"), package_template())


@pytest.fixture(scope="module")
def deployed(package: Path) -> Deployment:
    return run_program(stack_config(package))


@pytest.fixture(scope="module")
def snap_started(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    package = write_package(
        tmp_path_factory.mktemp("package312"), package_template(runtime="python3.12")
    )
    return run_program(stack_config(package, snapStart="true"))


# --- From the package ---------------------------------------------------------------------------


def test_the_seven_functions_run_the_packaged_handlers_as_its_template_says(
    deployed: Deployment, package: Path
) -> None:
    assert {f.state["handler"] for f in deployed.mocks.of_type(FUNCTION)} == {
        "app.app",
        "app.ingest",
        "app.bulk_worker",
        "app.webhooks",
        "app.authorizer",
        "app.relay_ranges",
        "app.count_events",
    }
    for name in CHALICE_NAMES:
        function = deployed.function(name)
        assert function["name"] == f"sesami-{STACK}-{name.replace('_', '-')}"
        assert function["code"].path == str(package)
        assert function["runtime"] == "python3.11"
        assert function["architectures"] == ["x86_64"]
        assert (function["memorySize"], function["timeout"]) == PACKAGE_SIZING[name]


def test_each_function_logs_to_its_own_group_with_retention(deployed: Deployment) -> None:
    groups = {g.state["name"]: g.state for g in deployed.mocks.of_type(LOG_GROUP)}
    for name in CHALICE_NAMES:
        group = groups[f"/aws/lambda/{deployed.function(name)['name']}"]
        assert group["retentionInDays"] == 30


def test_a_missing_package_stops_the_program_naming_make_package(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="make package"):
        run_program(stack_config(tmp_path / "nowhere" / "deployment.zip"))


def test_a_package_whose_routes_differ_from_the_app_is_refused(tmp_path: Path) -> None:
    template = package_template()
    api = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    api["paths"].pop("/events")
    with pytest.raises(Exception, match=r"make package. again"):
        run_program(stack_config(write_package(tmp_path, template)))


# --- Environment ----------------------------------------------------------------------------------


def _known_names() -> set[str]:
    names = {v for k, v in vars(settings).items() if k.startswith("ENV_")}
    return (
        names
        | {f"{n}{settings.PARAMETER_SUFFIX}" for n in SECRET_ENV}
        | {settings.ENV_BULK_WORKER_FUNCTION}
    )


def test_every_variable_is_one_the_app_reads(deployed: Deployment) -> None:
    for name in CHALICE_NAMES:
        assert set(deployed.environment(name)) <= _known_names(), name


def test_api_and_worker_know_the_bulk_worker_function(deployed: Deployment) -> None:
    worker = deployed.function("bulk_worker")["name"]
    assert deployed.environment("api")[settings.ENV_BULK_WORKER_FUNCTION] == worker
    assert deployed.environment("bulk_worker")[settings.ENV_BULK_WORKER_FUNCTION] == worker


def test_api_environment_names_the_pool_clients_bus_and_account(deployed: Deployment) -> None:
    env = deployed.environment("api")
    pool = deployed.outputs["user_pool_id"]
    assert env["SESAMI_STAGE"] == STACK
    assert env["SESAMI_TABLE_PREFIX"] == f"sesami-{STACK}-"
    assert env["SESAMI_RETENTION_DAYS"] == "365"
    assert env["SESAMI_ACCOUNT_ID"] == ACCOUNT
    assert env["SESAMI_EVENT_BUS_ARN"] == deployed.outputs["event_bus_arn"]
    assert env["SESAMI_USER_POOL_ID"] == pool
    assert env["SESAMI_USER_POOL_CLIENT_IDS"] == deployed.outputs["user_pool_client_id"]
    assert env["SESAMI_JWKS_URL"] == (
        f"https://cognito-idp.{REGION}.amazonaws.com/{pool}/.well-known/jwks.json"
    )
    assert env["SESAMI_MOMENTO_CACHE"] == f"sesami-{STACK}"


def test_ingest_gets_its_tables_the_webhook_queue_the_relay_ranges_and_nothing_secret(
    deployed: Deployment,
) -> None:
    env = deployed.environment("ingest")
    assert env == {
        "SESAMI_STAGE": STACK,
        "SESAMI_TABLE_PREFIX": f"sesami-{STACK}-",
        "SESAMI_RETENTION_DAYS": "365",
        "SESAMI_WEBHOOK_QUEUE_URL": deployed.outputs["webhook_queue_url"],
        "SESAMI_RELAY_RANGES_BUCKET": deployed.outputs["relay_ranges_bucket"],
    }


def test_the_relay_ranges_function_knows_its_bucket_and_nothing_else(
    deployed: Deployment,
) -> None:
    env = deployed.environment("relay_ranges")
    assert env == {
        "SESAMI_STAGE": STACK,
        "SESAMI_TABLE_PREFIX": f"sesami-{STACK}-",
        "SESAMI_RETENTION_DAYS": "365",
        "SESAMI_RELAY_RANGES_BUCKET": f"sesami-{STACK}-relay-ranges-{ACCOUNT}-{REGION}",
    }


def test_count_events_knows_its_tables_and_nothing_else(deployed: Deployment) -> None:
    assert deployed.environment("count_events") == {
        "SESAMI_STAGE": STACK,
        "SESAMI_TABLE_PREFIX": f"sesami-{STACK}-",
        "SESAMI_RETENTION_DAYS": "365",
    }
    # One invocation per shard: no reserved concurrency to take from the account.
    assert deployed.function("count_events").get("reservedConcurrentExecutions") is None
    assert deployed.function("count_events")["timeout"] == 60


def test_the_webhooks_function_gets_its_queue_and_only_the_webhook_key(
    deployed: Deployment, package: Path
) -> None:
    env = deployed.environment("webhooks")
    assert env["SESAMI_WEBHOOK_QUEUE_URL"] == deployed.outputs["webhook_queue_url"]
    assert env["SESAMI_WEBHOOK_KEY_PARAMETER"] == f"/sesami/{STACK}/webhook-key"
    assert not {k for k in env if k.endswith("_PARAMETER")} - {"SESAMI_WEBHOOK_KEY_PARAMETER"}
    assert "SESAMI_ALERTS_FROM" not in env  # not configured: alerts are not emailed
    mailing = run_program(stack_config(package, alertsFrom="alerts@sesami.example"))
    assert mailing.environment("webhooks")["SESAMI_ALERTS_FROM"] == "alerts@sesami.example"


def test_the_authorizer_knows_the_pool_and_the_tables_and_nothing_secret(
    deployed: Deployment,
) -> None:
    env = deployed.environment("authorizer")
    api = deployed.environment("api")
    pool_names = ("SESAMI_USER_POOL_ID", "SESAMI_USER_POOL_CLIENT_IDS", "SESAMI_JWKS_URL")
    assert env == {
        "SESAMI_STAGE": STACK,
        "SESAMI_TABLE_PREFIX": f"sesami-{STACK}-",
        "SESAMI_RETENTION_DAYS": "365",
        **{name: api[name] for name in pool_names},
    }


def test_no_function_runs_with_a_local_stack_override(deployed: Deployment) -> None:
    local_only = {
        settings.ENV_SKIP_EXTERNAL_ID_CHECK,
        settings.ENV_AWS_ENDPOINT,
        settings.ENV_DYNAMODB_ENDPOINT,
        settings.ENV_MOMENTO_LOCAL,
    }
    for name in CHALICE_NAMES:
        assert not local_only & set(deployed.environment(name)), name


# --- Secrets --------------------------------------------------------------------------------------


def _without_secrets(value: Any) -> Any:
    if is_secret(value):
        return "<secret>"
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def test_secrets_are_secure_strings_and_never_plain_text_anywhere(deployed: Deployment) -> None:
    parameters = {p.state["name"]: p.state for p in deployed.mocks.of_type(PARAMETER)}
    assert set(parameters) == {
        f"/sesami/{STACK}/momento-api-key",
        f"/sesami/{STACK}/signing-key",
        f"/sesami/{STACK}/credentials-key",
        f"/sesami/{STACK}/webhook-key",
    }
    for parameter in parameters.values():
        assert parameter["type"] == "SecureString"
        assert is_secret(parameter["value"])
    assert sorted(plain(p["value"]) for p in parameters.values()) == sorted(SECRETS.values())
    visible = json.dumps([_without_secrets(r.state) for r in deployed.mocks.resources])
    visible += json.dumps(_without_secrets(deployed.outputs))
    for value in SECRETS.values():
        assert value not in visible


def _reveal(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def test_functions_name_their_secrets_parameters_never_the_values(deployed: Deployment) -> None:
    names = {p.state["name"] for p in deployed.mocks.of_type(PARAMETER)}
    for function in deployed.mocks.of_type(FUNCTION):
        # Even a Pulumi secret would be plain text in Lambda's configuration.
        environment = json.dumps(_reveal(function.state["environment"]))
        assert not [v for v in SECRETS.values() if v in environment], function.name
    reads = {
        "api": SECRET_ENV,
        "bulk_worker": SECRET_ENV - {"SESAMI_WEBHOOK_KEY"},
        "webhooks": {"SESAMI_WEBHOOK_KEY"},
    }
    for chalice_name, wanted in reads.items():
        env = deployed.environment(chalice_name)
        assert not SECRET_ENV & set(env), chalice_name
        by_parameter = {k: v for k, v in env.items() if k.endswith(settings.PARAMETER_SUFFIX)}
        assert set(by_parameter) == {f"{n}{settings.PARAMETER_SUFFIX}" for n in wanted}
        assert set(by_parameter.values()) <= names
    assert set(deployed.environment("api").values()) >= names


def test_secret_keys_must_be_32_bytes_of_hex() -> None:
    assert secret_store.hex_key("ab" * 32, "signingKey") == "ab" * 32
    for bad in ("ab" * 16, "zz" * 32, ""):
        with pytest.raises(ValueError, match="signingKey"):
            secret_store.hex_key(bad, "signingKey")


# --- Ingest's asynchronous failures -----------------------------------------------------------


def test_ingest_failures_after_lambdas_retries_go_to_an_encrypted_queue(
    deployed: Deployment,
) -> None:
    config = deployed.state(INVOKE_CONFIG)
    queue = deployed.state(QUEUE, "ingest-failures")
    assert config["functionName"] == deployed.function("ingest")["name"]
    assert config["maximumRetryAttempts"] == 2
    assert config["maximumEventAgeInSeconds"] == 6 * 3600
    assert config["destinationConfig"]["onFailure"]["destination"] == queue["arn"]
    assert queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 14 * 86_400
    assert deployed.outputs["ingest_failures_url"] == queue["url"]


def test_an_alarm_fires_on_one_failed_ingest_invocation(deployed: Deployment) -> None:
    queue = deployed.state(QUEUE, "ingest-failures")
    (alarm,) = [
        a.state
        for a in deployed.mocks.of_type(ALARM)
        if a.state["dimensions"] == {"QueueName": queue["name"]}
    ]
    assert alarm["threshold"] == 1
    assert alarm["alarmActions"] == [ALARM_TOPIC]


# --- SnapStart --------------------------------------------------------------------------------


def test_snap_start_is_off_by_default(deployed: Deployment) -> None:
    api = deployed.function("api")
    assert not api.get("snapStart")
    assert not api.get("publish")
    assert deployed.mocks.of_type(ALIAS) == []


def test_snap_start_on_a_runtime_without_it_fails_clearly(package: Path) -> None:
    with pytest.raises(Exception, match=r"SnapStart needs Python 3\.12.*python3\.11"):
        run_program(stack_config(package, snapStart="true"))


def test_snap_start_publishes_the_api_behind_an_alias_the_gateway_calls(
    snap_started: Deployment,
) -> None:
    api = snap_started.function("api")
    assert api["runtime"] == "python3.12"
    assert api["publish"] is True
    assert api["snapStart"] == {"applyOn": "PublishedVersions"}
    alias = snap_started.state(ALIAS)
    assert alias["name"] == "live"
    assert alias["functionName"] == api["name"]
    assert alias["functionVersion"] == api["version"] != "$LATEST"
    permission = snap_started.state(PERMISSION, "api-invoke")
    assert permission["qualifier"] == "live"
    for path in snap_started.api_body()["paths"].values():
        for operation in path.values():
            uri = operation["x-amazon-apigateway-integration"]["uri"]
            assert uri.endswith(f"function:{api['name']}:live/invocations"), uri
    # Only the API function: ingest and the worker run on demand without snapshots.
    for name in ("ingest", "bulk_worker"):
        assert not snap_started.function(name).get("snapStart")


def test_snap_start_support_by_runtime() -> None:
    assert functions.snap_start_supported("python3.12")
    assert functions.snap_start_supported("python3.13")
    assert not functions.snap_start_supported("python3.11")
    assert not functions.snap_start_supported("nodejs20.x")


# --- Concurrency and quotas -----------------------------------------------------------------------


def test_the_bulk_worker_has_reserved_concurrency_and_the_others_none(
    deployed: Deployment,
) -> None:
    worker = deployed.function("bulk_worker")
    assert worker["reservedConcurrentExecutions"] == functions.BULK_WORKER_CONCURRENCY == 10
    for name in ("api", "ingest"):
        assert deployed.function(name).get("reservedConcurrentExecutions") in (None, -1), name


def test_quota_defaults_reach_the_api_and_the_worker_from_the_stack_config(
    package: Path,
) -> None:
    quotas = json.dumps({"requestsPerMinute": 5000, "sendsPerMinute": 9000, "bulkBatches": 3})
    custom = run_program(stack_config(package, quotas=quotas, bulkWorkerConcurrency="25"))
    for name in ("api", "bulk_worker"):
        env = custom.environment(name)
        assert env[settings.ENV_QUOTA_REQUESTS_PER_MINUTE] == "5000"
        assert env[settings.ENV_QUOTA_SENDS_PER_MINUTE] == "9000"
        assert env[settings.ENV_QUOTA_BULK_BATCHES] == "3"
        quota_env = {k: v for k, v in env.items() if k.startswith("SESAMI_QUOTA_")}
        assert settings.Settings.from_env(quota_env).quota_bulk_batches == 3  # the app reads it
    assert not any(k.startswith("SESAMI_QUOTA_") for k in custom.environment("ingest"))
    assert custom.function("bulk_worker")["reservedConcurrentExecutions"] == 25


def test_without_quota_config_the_functions_use_the_app_s_defaults(deployed: Deployment) -> None:
    assert not any(k.startswith("SESAMI_QUOTA_") for k in deployed.environment("api"))


def test_quota_config_is_checked() -> None:
    env = functions.quota_environment({"keyRequestsPerMinute": 0, "expectedInstances": 8})
    assert env == {
        settings.ENV_QUOTA_KEY_REQUESTS_PER_MINUTE: "0",
        settings.ENV_QUOTA_EXPECTED_INSTANCES: "8",
    }
    assert set(functions.QUOTA_CONFIG.values()) == set(settings.QUOTA_ENV.values())
    for bad in ({"requestsPerMinute": 0}, {"requestsPerMinute": "many"}, {"nope": 1}):
        with pytest.raises(ValueError):
            functions.quota_environment(bad)


def test_a_bulk_worker_without_concurrency_is_refused(package: Path) -> None:
    with pytest.raises(Exception, match="bulkWorkerConcurrency"):
        run_program(stack_config(package, bulkWorkerConcurrency="0"))
