"""The operator stack's DynamoDB tables come from the one table description (table_specs), with
point-in-time recovery, encryption, TTL and deletion protection. Runs under Pulumi's mocks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi", reason="Pulumi programs are tested from .venv-infra")

from pulumi_mocks import TABLE, AwsMocks, import_from, run, use_mocks  # noqa: E402

INFRA = Path(__file__).resolve().parents[2] / "infra"
tables = import_from(INFRA, "tables")


@pytest.fixture(scope="module")
def deployed() -> dict[str, dict[str, Any]]:
    """Every table's inputs, by name."""
    mocks = use_mocks(AwsMocks("444455556666", "us-east-1"), project="sesami", stack="prod")

    def program() -> dict[str, Any]:
        component = tables.SesamiTables("sesami", tables.TablesArgs(prefix="sesami-prod-"))
        return {name: table.name for name, table in component.tables.items()}

    run(program)
    return {r.state["name"]: r.state for r in mocks.of_type(TABLE)}


# Keys only: what only an erasure or a deletion reads. The team page lists users and invitations
# (users' by_tenant), a tenant's keys (api_keys' by_tenant): those carry their items.
LIFECYCLE_INDEXES = {"by_tenant", "by_pending"}
LISTING_TABLES = {"users", "api_keys"}
INCLUDED = {("events", "by_recipient"): {"message_id", "status", "engagement"}}


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
            assert sorted(gsis[g["name"]].get("nonKeyAttributes") or []) == g["non_key_attributes"]
            # The views readers page through carry everything; the lifecycle indexes only keys;
            # the recipient view what its readers need without the row (the page's rows are
            # then read from the table).
            keys_only = g["name"] in LIFECYCLE_INDEXES and name not in LISTING_TABLES
            expected = "KEYS_ONLY" if keys_only else "ALL"
            if (name, g["name"]) in INCLUDED:
                expected = "INCLUDE"
                assert set(g["non_key_attributes"]) == INCLUDED[(name, g["name"])]
            assert g["projection"] == expected, (name, g["name"])


def test_tables_are_protected_recoverable_encrypted_and_on_demand(
    deployed: dict[str, dict[str, Any]],
) -> None:
    for table in deployed.values():
        assert table["billingMode"] == "PAY_PER_REQUEST"
        assert table["pointInTimeRecovery"]["enabled"] is True
        assert table["serverSideEncryption"]["enabled"] is True
        assert table["deletionProtectionEnabled"] is True


def test_retention_tables_have_ttl_on_expires_at(deployed: dict[str, dict[str, Any]]) -> None:
    for name in ("events", "messages", "counters", "quarantine", "api_keys"):
        assert deployed[f"sesami-prod-{name}"]["ttl"] == {
            "attributeName": "expires_at",
            "enabled": True,
        }
    for name in ("tenants", "accounts", "suppression"):
        assert "ttl" not in deployed[f"sesami-prod-{name}"]


def test_deletion_protection_follows_args() -> None:
    spec: dict[str, Any] = {
        "hash_key": "pk",
        "range_key": None,
        "attributes": {"pk": "S"},
        "global_secondary_indexes": [],
        "ttl_attribute": None,
    }
    assert (
        tables.table_args("x", spec, tables.TablesArgs("p-", deletion_protection=False))[
            "deletion_protection_enabled"
        ]
        is False
    )
