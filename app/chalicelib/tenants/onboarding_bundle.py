"""A tenant's ready-to-run customer-onboarding stack (`GET /account/onboarding/stack`).

The bundle is a zip of the customer-onboarding Pulumi program — the very files the repository
tests (`make install` copies customer-onboarding/ into `onboarding_program/` beside this module,
and `chalice package` ships that copy) — plus `Pulumi.sesami.yaml`, the stack configuration with
this tenant's values filled in. The customer's steps are then: unpack, `pulumi stack init
sesami`, `pulumi up`.

The external ID. Pulumi encrypts a `secure:` config value with the stack's own secrets
provider, which exists only once the customer has created the stack, so no one can pre-encrypt
it for them. The bundle therefore carries it as a plain config value (AWS does not treat the
external ID as a secret: what protects the role is that only SESami's two roles are trusted and
the condition must match), and the program marks it secret at once, so that Pulumi's state,
outputs and logs keep it encrypted. The bundle's README says how to turn it into a `secure:`
value (`pulumi config set --secret`) for those who want the file itself clean.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

PROGRAM_DIR = Path(__file__).resolve().parent / "onboarding_program"
# Every file of the program, as customer-onboarding/ has them (tests compare the two).
PROGRAM_FILES = (
    "Pulumi.yaml",
    "__main__.py",
    "onboarding.py",
    "policies.py",
    "requirements.txt",
    "README.md",
)
PROJECT = "sesami-customer-onboarding"
STACK = "sesami"
FOLDER = "sesami-onboarding"
# Zip entries get a fixed time, so the same values make the same bytes.
_EPOCH = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class BundleValues:
    region: str
    sesami_account_id: str
    sesami_event_bus_arn: str
    sesami_role_arns: tuple[str, ...]
    external_id: str
    configuration_set: str


def stack_config(values: BundleValues) -> str:
    """`Pulumi.sesami.yaml`. JSON is YAML: every value is quoted, nothing can be misread."""
    ns = PROJECT
    config = {
        "aws:region": values.region,
        f"{ns}:sesamiAccountId": values.sesami_account_id,
        f"{ns}:sesamiEventBusArn": values.sesami_event_bus_arn,
        f"{ns}:sesamiRoleArns": list(values.sesami_role_arns),
        f"{ns}:configurationSetName": values.configuration_set,
        f"{ns}:externalId": values.external_id,
    }
    header = (
        "# Made by SESami for your tenant. `pulumi stack init sesami`, then `pulumi up`.\n"
        "# externalId is read as a secret by the program (encrypted in Pulumi's state); to keep\n"
        "# it out of this file too: pulumi config set --secret "
        f"{ns}:externalId <value>\n"
    )
    return header + json.dumps({"config": config}, indent=2) + "\n"


def _steps(values: BundleValues) -> str:
    return (
        "# Connect your AWS account to SESami\n\n"
        "1. Unpack this folder and open a shell in it (with AWS credentials for your account "
        f"and region {values.region}).\n"
        f"2. `pulumi stack init {STACK}` (the values SESami issued you are in "
        f"`Pulumi.{STACK}.yaml`).\n"
        "3. `pulumi up`.\n"
        "4. In SESami, connect the account with the stack's `roleArn` output "
        "(Account page, or PUT /account).\n\n"
        "The program's own documentation follows in README.md.\n"
    )


def build(values: BundleValues, program_dir: Path = PROGRAM_DIR) -> bytes:
    """The bundle's zip bytes. Raises FileNotFoundError when the program copy is missing
    (`make install` makes it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:

        def add(name: str, data: bytes) -> None:
            info = zipfile.ZipInfo(f"{FOLDER}/{name}", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, data)

        for name in PROGRAM_FILES:
            add(name, (program_dir / name).read_bytes())
        add(f"Pulumi.{STACK}.yaml", stack_config(values).encode())
        add("START-HERE.md", _steps(values).encode())
    return buffer.getvalue()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def for_tenant(
    *,
    region: str,
    sesami_account_id: str,
    sesami_event_bus_arn: str,
    sesami_role_arns: tuple[str, ...],
    external_id: str,
    configuration_set: str,
) -> dict[str, object]:
    """What the route answers: the zip (base64, to travel as JSON), its name and digest."""
    import base64

    data = build(
        BundleValues(
            region,
            sesami_account_id,
            sesami_event_bus_arn,
            sesami_role_arns,
            external_id,
            configuration_set,
        )
    )
    return {
        "filename": f"{FOLDER}.zip",
        "content_type": "application/zip",
        "content_base64": base64.b64encode(data).decode(),
        "sha256": digest(data),
        "bytes": len(data),
        "steps": [
            "unzip sesami-onboarding.zip",
            "cd sesami-onboarding",
            f"pulumi stack init {STACK}",
            "pulumi up",
        ],
    }
