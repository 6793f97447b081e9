"""The whole local stack, started the way `make dev` starts it, for tests that drive SESami from
outside (the browser tests, the schemathesis fuzzing). One stack per test session, on free
loopback ports and in a temporary directory, so it runs beside a developer's own `make dev`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Few enough messages to seed in seconds, enough for every status, several links and a chart.
SEED_MESSAGES = 400
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class LiveStack:
    url: str
    email: str
    password: str
    moto: str
    dev_dir: Path
    info: dict[str, Any]

    def token(self) -> str:
        """A fresh id token for the demo user (they last an hour; a session may be longer)."""
        from devstack import provision

        identity = provision.Identity(
            self.info["SESAMI_USER_POOL_ID"],
            self.info["SESAMI_USER_POOL_CLIENT_IDS"],
            self.info["SESAMI_JWKS_URL"],
        )
        return provision.id_token(self.moto, identity, self.email, self.password)

    def get(self, path: str, token: str | None = None) -> Any:
        """GET an API path as the demo user (or with `token`); the JSON of a 200."""
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.status == 200, (path, response.status)
            return json.loads(response.read())

    def post(self, path: str, body: Any, token: str | None = None) -> tuple[int, Any]:
        """POST JSON as the demo user: (status, JSON answer)."""
        request = urllib.request.Request(  # noqa: S310 - the local stack's URL
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {token or self.token()}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def seeded(self) -> dict[str, Any]:
        path = self.dev_dir / "seed.json"
        data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return data

    def wait_seeded(self, timeout: float = 300.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.seeded().get("finished"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"demo data not seeded after {timeout:.0f}s: {self.seeded()}")
            time.sleep(0.5)
        return self.seeded()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the stack, directly or through another fixture, is marked `live`: the
    browser tests, the fuzzing and the client's live tests. `-m "not live"` never starts it."""
    for item in items:
        if "live_stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.live)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    dev_dir = tmp_path_factory.mktemp("devstack")
    api, ddb, momento, moto, receiver = free_ports(5)
    env = {
        **os.environ,
        "SESAMI_DEV_DIR": str(dev_dir),
        "SESAMI_DEV_PORT": str(api),
        "SESAMI_DEV_DYNAMODB_PORT": str(ddb),
        "SESAMI_DEV_MOMENTO_PORT": str(momento),
        "SESAMI_DEV_MOTO_PORT": str(moto),
        "SESAMI_DEV_RECEIVER_PORT": str(receiver),
        "SESAMI_DEV_MESSAGES": str(SEED_MESSAGES),
        "PYTHONUNBUFFERED": "1",
        # Fuzzing and the browser tests call far faster than people, all from 127.0.0.1: the
        # quotas are tested on their own (tests/test_quotas*.py), not by tripping these.
        **{
            f"SESAMI_QUOTA_{name}": "1000000"
            for name in (
                "REQUESTS_PER_MINUTE",
                "SENDS_PER_MINUTE",
                "AUTH_PER_IP_PER_MINUTE",
                "UNSUBSCRIBE_PER_IP_PER_MINUTE",
            )
        },
        "SESAMI_QUOTA_BULK_BATCHES": "100",
    }
    log = (dev_dir / "stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.dev"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ready = dev_dir / "ready.json"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                output = (dev_dir / "stack.log").read_text()[-4000:]
                pytest.fail(f"the local stack did not start (exit {process.poll()}):\n{output}")
            time.sleep(0.3)
        info = json.loads(ready.read_text())
        with urllib.request.urlopen(f"{info['url']}/openapi.json", timeout=10) as response:  # noqa: S310
            assert response.status == 200
        yield LiveStack(
            url=info["url"],
            email=info["email"],
            password=info["password"],
            moto=info["moto"],
            dev_dir=dev_dir,
            info=info,
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does in `make dev`
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
