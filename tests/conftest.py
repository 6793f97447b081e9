"""Test harness. One Amazon DynamoDB Local process serves the whole session; its tables are
created once from the same table description production uses. Tests stay independent because
every key SESami writes starts with the tenant, and each test makes its own tenant."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest


def _without_deadlines() -> None:
    """Hypothesis's per-example deadline (200 ms) is a wall-clock limit: on a loaded machine it
    fails tests that are right. Properties are checked by their outcome, never by their speed.
    (.venv has Hypothesis; .venv-infra, for the Pulumi tests, does not.)"""
    try:
        import hypothesis
    except ImportError:
        return
    hypothesis.settings.register_profile("sesami", deadline=None)
    hypothesis.settings.load_profile("sesami")


_without_deadlines()

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "app"), str(ROOT)]
EVENTS = Path(__file__).resolve().parent / "events"
pytest_plugins = ["tests.api_fixtures", "tests.live_stack"]

# Nothing in the suite may reach real AWS: fixed fake credentials and region.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)


def _one_botocore_data_loader() -> None:
    """Every botocore session of the test process reads service models and endpoint rules
    through one data loader, so each JSON file is parsed once per process. Without it, the
    route tests spend about 40% of their CPU time parsing the same files again: PynamoDB opens a
    botocore session per model connection, and SESami's wiring drops them whenever a test
    changes settings (a Lambda instance does this once, at its cold start). botocore treats
    loaded data as read-only (one session's clients already share it); nothing else about a
    session or its clients changes."""
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()

    def register(session: botocore.session.Session) -> None:
        session._components.lazy_register_component("data_loader", lambda: loader)

    assert hasattr(botocore.session.Session, "_register_data_loader"), "botocore changed"
    botocore.session.Session._register_data_loader = register  # type: ignore[method-assign]


_one_botocore_data_loader()


def load_event(name: str) -> dict[str, Any]:
    """A recorded EventBridge envelope from tests/events/ (name without .json)."""
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs DynamoDB Local, directly or through another fixture, is marked
    `ddb_local` (a module may also mark itself)."""
    for item in items:
        if "ddb_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.ddb_local)


@pytest.fixture(scope="session")
def ddb_endpoint() -> Iterator[str]:
    from devstack.dynamodb_local import DynamoDBLocal

    server = DynamoDBLocal()
    server.start()
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's server (STS, SES, Cognito, EventBridge, IAM) on a loopback port, one per module.
    moto keeps its backends process-wide (a new server sees an old one's resources), so each
    module starts from a reset moto."""
    import urllib.request

    from devstack.moto_server import MotoServer

    with MotoServer() as server:
        reset = urllib.request.Request(f"{server.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        # Loopback emulator URL built above, never user input.
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310
        yield server.endpoint


@pytest.fixture(scope="session")
def settings(ddb_endpoint: str) -> Any:
    from chalicelib.core import tables
    from chalicelib.core.settings import Settings

    from devstack.dynamodb_local import create_tables

    value = Settings(table_prefix="test-", dynamodb_endpoint=ddb_endpoint, retention_days=365)
    create_tables(value)
    tables.configure(value)
    _counted_before_read(value)
    return value


def _counted_before_read(settings: Any) -> None:
    """In production the counters follow ingest by a few seconds (the messages table's stream
    -> count_events). Tests read them as if that had happened: before any read of a counter,
    the local stream poller hands every record written so far to the real count_events code
    (devstack/stream_poller.py). tests/ingest/test_counting.py tests the lag itself."""
    from chalicelib.core.tables import CounterModel, LinkCounterModel

    from devstack.stream_poller import StreamPoller

    poller = StreamPoller(settings)
    STREAM_POLLERS.append(poller)
    for model in (CounterModel, LinkCounterModel):
        for name in ("query", "get", "scan"):
            real = getattr(model, name)

            def drained(*args: Any, __real: Any = real, **kwargs: Any) -> Any:
                poller.drain()
                return __real(*args, **kwargs)

            setattr(model, name, drained)


STREAM_POLLERS: list[Any] = []


@pytest.fixture
def app_settings(settings: Any) -> Iterator[Any]:
    """The app's own settings (wiring.settings()) for one test: the session's tables, signing
    and credential keys. Tests derive from it with `wiring.use(replace(value, ...))`."""
    from chalicelib.core import tables, wiring

    value = replace(
        settings, signing_key=b"s" * 32, credentials_key=b"c" * 32, webhook_key=b"w" * 32
    )
    wiring.use(value)
    yield value
    wiring.use(None, webhook_queue=None, webhook_resolver=None)
    tables.configure(settings)


@pytest.fixture
def tenant(settings: Any) -> Any:
    """A fresh tenant bound to a fresh AWS account."""
    from tests.support import make_tenant

    return make_tenant(settings)
