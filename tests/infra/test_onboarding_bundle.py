"""A tenant's generated onboarding bundle (GET /account/onboarding/stack) is the program the
repository tests, with that tenant's values: unpacked, the onboarding program's whole mock suite
passes against it, and its own stack config runs the program (test_customer_onboarding.py's
`test_a_generated_bundle_runs_with_its_own_stack_config`)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("pulumi", reason="the Pulumi programs are tested from .venv-infra")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "app"))
bundle = pytest.importorskip("chalicelib.tenants.onboarding_bundle")

VALUES = bundle.BundleValues(
    region="eu-west-1",
    sesami_account_id="444455556666",
    sesami_event_bus_arn="arn:aws:events:eu-west-1:444455556666:event-bus/sesami-ingest",
    sesami_role_arns=(
        "arn:aws:iam::444455556666:role/sesami-prod-api-role",
        "arn:aws:iam::444455556666:role/sesami-prod-bulk-worker-role",
    ),
    external_id="sesami-" + "ab12" * 12,
    configuration_set="tenant-events",
)


def test_the_bundle_is_the_tested_program_plus_the_tenants_config(tmp_path: Path) -> None:
    data = bundle.build(VALUES, program_dir=ROOT / "customer-onboarding")
    assert bundle.build(VALUES, program_dir=ROOT / "customer-onboarding") == data  # stable
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path)
    program = tmp_path / bundle.FOLDER
    for name in bundle.PROGRAM_FILES:
        assert (program / name).read_bytes() == (ROOT / "customer-onboarding" / name).read_bytes()
    config = (program / "Pulumi.sesami.yaml").read_text()
    assert VALUES.external_id in config and '"tenant-events"' in config

    env = {**os.environ, "SESAMI_ONBOARDING_DIR": str(program)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            str(ROOT / "tests/infra/test_customer_onboarding.py"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "failed" not in summary and "skipped" not in summary, summary
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None and int(passed.group(1)) > 40, summary
