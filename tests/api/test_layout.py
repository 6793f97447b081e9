"""The layout's rules (README, "Layout"), checked on the source so that breaking one fails
`make check` (ruff enforces the other half: boto3, botocore and PynamoDB only in the storage
modules, core's AWS factory and tenant_aws/).

- `core` imports only `core`; `events` only `core` and `events`.
- A feature imports `core`, `events`, its own package, and another package only through that
  package's public modules (PUBLIC below).
- `core/wiring.py` is the composition root: it builds every service, so it may import anything.
- No module is over MAX_LINES lines unless its docstring gives the reason ("Long by design:").
Imports under `if TYPE_CHECKING:` are types only and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIB = ROOT / "app" / "chalicelib"
SHARED = {"core", "events"}
# Another package may import these modules of a package, and only these.
PUBLIC: dict[str, set[str]] = {
    "suppression": {"from_events"},  # what ingest writes for a bounce or complaint
    "templates": {"mustache"},  # parsing and rendering Mustache templates (sending uses it)
    "content": {"display"},  # showing mail HTML in a sandboxed frame (template previews use it)
    "tenant_aws": {"gateway", "ses"},  # the way into a tenant's account, and its SES types
    "webhooks": {"pause"},  # sending refuses while a reputation alert paused the tenant
}
COMPOSITION_ROOT = {"core/wiring.py"}
MAX_LINES = 400
REASON = "Long by design:"


def _modules() -> list[Path]:
    # The dashboard's files and the copy of the customer-onboarding program are not app code.
    skip = {"dashboard", "onboarding_program"}
    return sorted(p for p in LIB.rglob("*.py") if not skip & set(p.parts))


def _runtime_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every `chalicelib.…` import outside `if TYPE_CHECKING:` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "chalicelib":
                found += [(node.lineno, f"chalicelib.{a.name}") for a in node.names]
            elif node.module.startswith("chalicelib."):
                # `from chalicelib.pkg import mod` names a module of pkg: check it as such.
                parts = node.module.split(".")
                if len(parts) == 2:
                    found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
                else:
                    found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("chalicelib")]
    return found


def _violations(path: Path, lib: Path = LIB) -> list[str]:
    relative = path.relative_to(lib).as_posix()
    if relative in COMPOSITION_ROOT or "/" not in relative:
        return []
    package = relative.split("/")[0]
    tree = ast.parse(path.read_text())
    out = []
    for line, module in _runtime_imports(tree):
        parts = module.split(".")
        other = parts[1]
        target = parts[2] if len(parts) > 2 else ""
        if other == package:
            continue
        if package == "core":
            allowed = False
        elif package == "events":
            allowed = other == "core"
        else:
            allowed = other in SHARED or target in PUBLIC.get(other, set())
        if not allowed:
            out.append(f"{relative}:{line} imports {module}")
    return out


def test_packages_import_each_other_only_through_public_modules() -> None:
    problems = [v for path in _modules() for v in _violations(path)]
    assert problems == [], "\n".join(problems)


def test_long_modules_say_why() -> None:
    long = []
    for path in _modules():
        lines = path.read_text().count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and REASON not in docstring:
            long.append(f"{path.relative_to(LIB)}: {lines} lines")
    assert long == [], "\n".join(long)


@pytest.mark.parametrize(
    ("package", "source", "broken"),
    [
        ("history", "from chalicelib.sending.store import SendingStore\n", True),
        ("history", "from chalicelib.suppression import from_events\n", False),
        ("core", "from chalicelib.events.status import Status\n", True),
        ("events", "from chalicelib.ingest.store import EventStore\n", True),
        (
            "history",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from chalicelib.sending.store import SendingStore\n",
            False,
        ),
    ],
)
def test_the_rule_catches_a_forbidden_import(
    tmp_path: Path, package: str, source: str, broken: bool
) -> None:
    """The check itself: a module written with a forbidden import is reported."""
    (tmp_path / package).mkdir()
    module = tmp_path / package / "probe.py"
    module.write_text(source)
    assert bool(_violations(module, tmp_path)) is broken
