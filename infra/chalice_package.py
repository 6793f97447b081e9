"""The Lambda deployment package, built by `chalice package`, and what the program reads from it.

    make package     # python infra/chalice_package.py build/package

`build/package/` then holds `deployment.zip` (the code of every function: app.py, chalicelib/
and the manylinux wheels of app/requirements.txt) and `sam.json`, Chalice's template. The program
deploys the zip and takes each function's handler, runtime, architecture, memory and timeout from
sam.json (they come from app/.chalice/config.json), so the runtime always matches the wheels
chalice downloaded for it. A package whose routes or functions differ from the app's is stale
and refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
DEFAULT_PACKAGE = "build/package/deployment.zip"
TEMPLATE_NAME = "sam.json"
# Only the deployment's code and config differ between Chalice stages; SESami's stages are
# Pulumi stacks, so one Chalice stage is packaged.
CHALICE_STAGE = "prod"
API_FUNCTION = "api"
API_HANDLER = "app.app"
# Lambda's quotas for a .zip deployment package uploaded directly.
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024


class PackageError(Exception):
    """The package is missing, malformed, stale or too large."""


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # the Chalice name: "api" for the REST API's handler, else the lambda_function name
    handler: str
    runtime: str
    architectures: tuple[str, ...]
    memory_size: int
    timeout: int


@dataclass(frozen=True)
class Package:
    zip_path: Path
    functions: dict[str, FunctionSpec]
    routes: frozenset[tuple[str, str]]  # (METHOD, path) of the packaged REST API

    @property
    def runtime(self) -> str:
        return self.functions[API_FUNCTION].runtime


def functions_from_template(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """Pure: every function of Chalice's template, by Chalice name (from its handler)."""
    out: dict[str, FunctionSpec] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        handler = props["Handler"]
        name = API_FUNCTION if handler == API_HANDLER else handler.removeprefix("app.")
        out[name] = FunctionSpec(
            name=name,
            handler=handler,
            runtime=props["Runtime"],
            architectures=tuple(props.get("Architectures", ("x86_64",))),
            memory_size=int(props["MemorySize"]),
            timeout=int(props["Timeout"]),
        )
    return out


def routes_from_template(template: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """Pure: the (METHOD, path) pairs of the REST API Chalice packaged."""
    routes: set[tuple[str, str]] = set()
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Api":
            for path, methods in resource["Properties"]["DefinitionBody"]["paths"].items():
                routes.update((m.upper(), path) for m in methods if m != "options")
    return frozenset(routes)


def app_routes(app: Any) -> frozenset[tuple[str, str]]:
    """The (METHOD, path) pairs a Chalice app declares."""
    return frozenset((m.upper(), path) for path, views in app.routes.items() for m in views)


def app_functions(app: Any) -> frozenset[str]:
    """The Chalice names of an app's functions: the API handler, each lambda_function and each
    authorizer (`@app.authorizer`)."""
    return frozenset(
        {
            API_FUNCTION,
            *(f.name for f in app.pure_lambda_functions),
            *(a.name for a in app.builtin_auth_handlers),
        }
    )


def load(zip_path: Path, app: Any) -> Package:
    """The package at `zip_path` (its sam.json beside it), checked against the app's routes and
    functions. Raises PackageError naming `make package` when it is missing or stale."""
    template_path = zip_path.parent / TEMPLATE_NAME
    if not zip_path.is_file() or not template_path.is_file():
        raise PackageError(
            f"no Lambda package at {zip_path} (with {TEMPLATE_NAME} beside it): "
            "run `make package` before `pulumi up`, or set `packagePath`"
        )
    template = json.loads(template_path.read_text())
    package = Package(zip_path, functions_from_template(template), routes_from_template(template))
    stale = []
    if package.routes != app_routes(app):
        stale.append(f"routes differ: {sorted(package.routes ^ app_routes(app))}")
    if set(package.functions) != app_functions(app):
        stale.append(f"functions differ: {sorted(set(package.functions) ^ app_functions(app))}")
    if len({f.runtime for f in package.functions.values()}) != 1:
        stale.append("functions have different runtimes")
    if stale:
        raise PackageError(
            f"the package at {zip_path} does not match the app ({'; '.join(stale)}): "
            "run `make package` again"
        )
    return package


def sizes(zip_path: Path) -> tuple[int, int]:
    """(zipped, unzipped) size in bytes."""
    with zipfile.ZipFile(zip_path) as archive:
        return zip_path.stat().st_size, sum(i.file_size for i in archive.infolist())


def limit_problems(zipped: int, unzipped: int) -> list[str]:
    """Pure: what in these sizes Lambda would refuse."""
    problems = []
    if zipped > MAX_ZIPPED_BYTES:
        problems.append(f"zipped {zipped / 2**20:.1f} MB > {MAX_ZIPPED_BYTES / 2**20:.0f} MB")
    if unzipped > MAX_UNZIPPED_BYTES:
        problems.append(f"unzipped {unzipped / 2**20:.1f} MB > {MAX_UNZIPPED_BYTES / 2**20:.0f} MB")
    return problems


def build(out_dir: Path, *, stage: str = CHALICE_STAGE) -> Path:
    """Run `chalice package` for the app into `out_dir` (replaced whole once the build has
    succeeded). Returns the zip's path. Chalice caches the dependency layer in
    app/.chalice/deployments/ per requirements hash, so rebuilds only re-add the app's code."""
    out_dir = out_dir.resolve()  # chalice runs from the project directory
    env = dict(os.environ)
    # Chalice wants a region to render its template; the program does not use its ARNs.
    env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".package-") as scratch:
        staging = Path(scratch) / "package"
        command = [
            sys.executable,
            "-c",
            "import sys; from chalice.cli import main; sys.exit(main())",
            "--project-dir",
            str(APP_DIR),
            "package",
            "--stage",
            stage,
            str(staging),
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise PackageError(f"chalice package failed:\n{result.stdout}{result.stderr}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    prune_chalice_cache()
    return out_dir / "deployment.zip"


def prune_chalice_cache(keep: int = 2) -> None:
    """Chalice keys its cached dependency zip (~30 MB) by the requirements *and* the app's code,
    so every change to the app leaves one behind: keep the newest few."""
    cached = sorted(
        (APP_DIR / ".chalice" / "deployments").glob("*.zip"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in cached[keep:]:
        stale.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0]) if argv else ROOT / Path(DEFAULT_PACKAGE).parent
    started = time.monotonic()
    zip_path = build(out_dir)
    zipped, unzipped = sizes(zip_path)
    print(
        f"{zip_path}: {zipped / 2**20:.1f} MB zipped, {unzipped / 2**20:.1f} MB unzipped, "
        f"built in {time.monotonic() - started:.1f} s"
    )
    problems = limit_problems(zipped, unzipped)
    for problem in problems:
        print(f"over Lambda's limit: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
