"""The operator stack's DynamoDB tables come from the one table description (table_specs), with
point-in-time recovery, encryption, TTL and deletion protection. Runs under Pulumi's mocks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")

INFRA = Path(__file__).resolve().parents[2] / "infra"
sys.path.insert(0, str(INFRA))


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "aws:dynamodb/table:Table":
            state["arn"] = f"arn:aws:dynamodb:us-east-1:444455556666:table/{state['name']}"
            self.created[state["name"]] = state
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


@pytest.fixture(scope="module")
def deployed() -> dict[str, dict[str, Any]]:
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="sesami", stack="prod", preview=False)
    from tables import SesamiTables, TablesArgs

    component = SesamiTables("sesami", TablesArgs(prefix="sesami-prod-"))
    names = list(component.tables.values())
    done: dict[str, Any] = {}

    def collect(values: list[str]) -> None:
        done["names"] = values

    pulumi.Output.all(*[t.name for t in names]).apply(collect)
    # Let the mock engine resolve every registration before the assertions run.
    import asyncio

    loop = asyncio.get_event_loop_policy().get_event_loop()
    loop.run_until_complete(asyncio.sleep(0.2))
    return mocks.created


LIFECYCLE_INDEXES = {"by_tenant", "by_pending"}


def test_every_spec_becomes_one_table(deployed: dict[str, dict[str, Any]]) -> None:
    sys.path.insert(0, str(INFRA.parent / "app"))
    from chalicelib.core.tables import table_specs

    specs = table_specs()
    assert sorted(deployed) == sorted(f"sesami-prod-{name}" for name in specs)
    for name, spec in specs.items():
        table = deployed[f"sesami-prod-{name}"]
        assert table["hashKey"] == spec["hash_key"]
        assert table.get("rangeKey") == spec["range_key"]
        gsis = {g["name"]: g for g in table.get("globalSecondaryIndexes", [])}
        assert set(gsis) == {g["name"] for g in spec["global_secondary_indexes"]}
        for g in spec["global_secondary_indexes"]:
            keys = {k["keyType"]: k["attributeName"] for k in gsis[g["name"]]["keySchemas"]}
            assert keys == {"HASH": g["hash_key"], "RANGE": g["range_key"]}
            assert gsis[g["name"]]["projectionType"] == g["projection"]
            # The views readers page through carry everything; the lifecycle indexes only keys.
            assert g["projection"] == ("KEYS_ONLY" if g["name"] in LIFECYCLE_INDEXES else "ALL")


def test_tables_are_protected_recoverable_encrypted_and_on_demand(
    deployed: dict[str, dict[str, Any]],
) -> None:
    for table in deployed.values():
        assert table["billingMode"] == "PAY_PER_REQUEST"
        assert table["pointInTimeRecovery"]["enabled"] is True
        assert table["serverSideEncryption"]["enabled"] is True
        assert table["deletionProtectionEnabled"] is True


def test_retention_tables_have_ttl_on_expires_at(deployed: dict[str, dict[str, Any]]) -> None:
    for name in ("events", "messages", "counters", "quarantine"):
        assert deployed[f"sesami-prod-{name}"]["ttl"] == {
            "attributeName": "expires_at",
            "enabled": True,
        }
    for name in ("tenants", "accounts", "suppression"):
        assert "ttl" not in deployed[f"sesami-prod-{name}"]


def test_deletion_protection_follows_args() -> None:
    from tables import TablesArgs, table_args

    spec = {
        "hash_key": "pk",
        "range_key": None,
        "attributes": {"pk": "S"},
        "global_secondary_indexes": [],
        "ttl_attribute": None,
    }
    assert (
        table_args("x", spec, TablesArgs("p-", deletion_protection=False))[
            "deletion_protection_enabled"
        ]
        is False
    )
