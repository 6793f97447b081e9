"""The Lambda deployment package, built by `chalice package` once per session: within Lambda's
size limits, carrying the app and its runtime dependencies, and importable the way Lambda runs
it (a clean interpreter: only the unzipped package, the standard library, and behind them the
boto3 that the Lambda runtime provides, which the package's own boto3 shadows).

Needs the network (chalice downloads manylinux wheels from PyPI): skip it offline with
`-m "not package"`. `make test` and CI run it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chalice", reason="the package is built from .venv-infra")

from operator_program import (
    ROOT,
    app_and_public_routes,
    import_infra,
)

pytestmark = pytest.mark.package
chalice_package = import_infra("chalice_package")
RUNTIME_DEPENDENCIES = (
    "pynamodb",
    "momento",
    "jwt",
    "email_validator",
    "cryptography",
    "grpc",
    "boto3",
    "botocore",
)
RELAY_RANGES = "chalicelib/events/data/apple_relay_egress.csv"
# What the handlers load on their first call, each from the package (native wheels included).
FIRST_CALL_MODULES = (
    "pynamodb.models",
    "momento",
    "jwt",
    "email_validator",
    "cryptography.hazmat.primitives.ciphers.aead",
    "grpc",
    "chalicelib.ingest.pipeline",
    "chalicelib.tenant_aws.credentials",
    "chalicelib.sending.service",
    "chalicelib.tenants.auth",
    "chalicelib.tenants.authorizer",
    "chalicelib.tenants.api_keys",
)

_PROBE = """
import importlib, json, os, sys
sys.path[:0] = [{package!r}, {runtime!r}]
# What the authorizer's environment names (infra/functions.py); a malformed key never reaches AWS.
os.environ.update(AWS_REGION="eu-west-1", SESAMI_USER_POOL_ID="eu-west-1_Ab12Cd34E",
                  SESAMI_USER_POOL_CLIENT_IDS="4q2hv1e6ks0jg3c9o7n5r8t1ab")
import app
names = ("app", "ingest", "bulk_worker", "authorizer", "count_events")
handlers = {{n: callable(getattr(app, n, None)) for n in names}}
files = {{m: importlib.import_module(m).__file__ for m in {modules!r}}}
event = {{
    "resource": "/openapi.json", "path": "/openapi.json", "httpMethod": "GET",
    "headers": {{"Host": "api.example"}}, "multiValueHeaders": {{"Host": ["api.example"]}},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {{"resourcePath": "/openapi.json", "httpMethod": "GET", "stage": "api"}},
}}
response = app.app(event, None)
try:
    app.authorizer({{"type": "TOKEN", "authorizationToken": "Bearer sk_not-a-key",
                    "methodArn": "arn:aws:execute-api:eu-west-1:1:a/api/GET/events"}}, None)
    authorizer = "allowed"
except Exception as exc:
    authorizer = str(exc)
import boto3
boto3.client("ssm", region_name="eu-west-1")  # the packaged boto3 with the packaged botocore
print(json.dumps({{"handlers": handlers, "files": files, "openapi": response["statusCode"],
                  "authorizer": authorizer,
                  "boto3": boto3.__file__, "path": sys.path}}))
"""


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    started = time.monotonic()
    zip_path: Path = chalice_package.build(tmp_path_factory.mktemp("build") / "package")
    zipped, unzipped = chalice_package.sizes(zip_path)
    print(
        f"\nchalice package: {time.monotonic() - started:.1f} s, "
        f"{zipped / 2**20:.1f} MB zipped, {unzipped / 2**20:.1f} MB unzipped"
    )
    return zip_path


@pytest.fixture(scope="session")
def unzipped(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("task")  # Lambda's /var/task
    with zipfile.ZipFile(built) as archive:
        archive.extractall(target)
    return target


@pytest.fixture(scope="session")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 as the Lambda runtime provides it: the version the app's tests pin."""
    pin = re.search(
        r"^boto3==\S+$", (ROOT / "requirements-dev.txt").read_text(), flags=re.MULTILINE
    )
    assert pin, "requirements-dev.txt pins boto3"
    target = tmp_path_factory.mktemp("lambda-runtime")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--target",
            str(target),
            pin.group(0),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_package_is_within_lambdas_size_limits(built: Path) -> None:
    zipped, unzipped = chalice_package.sizes(built)
    assert chalice_package.limit_problems(zipped, unzipped) == []
    assert zipped <= 50 * 2**20
    assert unzipped <= 250 * 2**20


def test_size_check_names_what_is_over() -> None:
    problems = chalice_package.limit_problems(51 * 2**20, 251 * 2**20)
    assert len(problems) == 2
    assert chalice_package.limit_problems(1, 1) == []


def test_package_carries_the_app_and_its_runtime_dependencies(built: Path) -> None:
    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
    top = {n.split("/", 1)[0] for n in names}
    assert "app.py" in names
    for module in sorted((ROOT / "app" / "chalicelib").rglob("*.py")):
        relative = module.relative_to(ROOT / "app").as_posix()
        if "__pycache__" not in relative:
            assert relative in names, relative
    # Data the code reads at run time, beside the code: Apple's relay ranges (events/), which
    # ingest loads on its first open or click (a package without them classifies on the user
    # agent alone, silently).
    assert RELAY_RANGES in names
    assert (ROOT / "app" / RELAY_RANGES).is_file()
    for dependency in RUNTIME_DEPENDENCIES:
        assert dependency in top, dependency
    assert "chalice" in top  # Chalice's runtime half (chalice/app.py)


def test_template_matches_the_app_and_its_chalice_config(built: Path) -> None:
    app, _ = app_and_public_routes()
    package = chalice_package.load(built, app)
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
    config = json.loads((ROOT / "app" / ".chalice" / "config.json").read_text())
    sizing = config["lambda_functions"]
    assert set(package.functions) == {
        "api",
        "ingest",
        "bulk_worker",
        "webhooks",
        "authorizer",
        "relay_ranges",
        "count_events",
    }
    for name, function in package.functions.items():
        assert function.runtime == runtime  # chalice targets the Python that packaged it
        assert function.handler == ("app.app" if name == "api" else f"app.{name}")
        chalice_name = "api_handler" if name == "api" else name
        assert function.memory_size == sizing[chalice_name]["lambda_memory_size"]
        assert function.timeout == sizing[chalice_name]["lambda_timeout"]
    # API Gateway gives up after 29 s: the API function must not outlive the request.
    assert package.functions["api"].timeout <= 30


def test_handlers_import_and_serve_from_the_package_alone(
    unzipped: Path, lambda_runtime: Path
) -> None:
    probe = _PROBE.format(
        package=str(unzipped), runtime=str(lambda_runtime), modules=FIRST_CALL_MODULES
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"},
        cwd=unzipped,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["handlers"] == {
        "app": True,
        "ingest": True,
        "bulk_worker": True,
        "authorizer": True,
        "count_events": True,
    }
    for module, file in report["files"].items():
        assert Path(file).is_relative_to(unzipped), (module, file)
    # Nothing from this machine's environments: the package, the runtime stand-in, stdlib.
    site = [p for p in report["path"] if "site-packages" in p]
    assert site == [], site
    assert report["openapi"] == 200
    assert report["authorizer"] == "Unauthorized"  # what API Gateway answers with a 401
    # The package bundles boto3 with the botocore pynamodb brings, and on Lambda's path (/var/task
    # before /var/runtime) it wins over the runtime's own, so the two always match.
    assert Path(report["boto3"]).is_relative_to(unzipped)
