"""SESami's DynamoDB tables, declared from `chalicelib.core.tables.table_specs()`: the same
description the PynamoDB models, the tests and the local stack use. Nothing about a table is
spelled here: a table whose spec has a `stream_view_type` gets its DynamoDB stream (the messages
table's feeds the counters, infra/counting.py)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.core.tables import table_specs


@dataclass(frozen=True)
class TablesArgs:
    prefix: str
    deletion_protection: bool = True
    point_in_time_recovery: bool = True


def table_args(name: str, spec: dict[str, Any], args: TablesArgs) -> dict[str, Any]:
    """Pure: the aws.dynamodb.Table arguments of one spec (tests call it directly)."""
    out: dict[str, Any] = {
        "name": args.prefix + name,
        "billing_mode": "PAY_PER_REQUEST",
        "hash_key": spec["hash_key"],
        "range_key": spec["range_key"],
        "attributes": [
            aws.dynamodb.TableAttributeArgs(name=n, type=t)
            for n, t in sorted(spec["attributes"].items())
        ],
        "global_secondary_indexes": [
            aws.dynamodb.TableGlobalSecondaryIndexArgs(
                name=g["name"],
                key_schemas=[
                    aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                        attribute_name=attr, key_type=kind
                    )
                    for attr, kind in ((g["hash_key"], "HASH"), (g["range_key"], "RANGE"))
                    if attr
                ],
                projection_type=g["projection"],
                non_key_attributes=g["non_key_attributes"] or None,
            )
            for g in spec["global_secondary_indexes"]
        ],
        "point_in_time_recovery": aws.dynamodb.TablePointInTimeRecoveryArgs(
            enabled=args.point_in_time_recovery
        ),
        "server_side_encryption": aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
        "deletion_protection_enabled": args.deletion_protection,
    }
    if spec.get("stream_view_type"):
        out["stream_enabled"] = True
        out["stream_view_type"] = spec["stream_view_type"]
    if spec["ttl_attribute"]:
        out["ttl"] = aws.dynamodb.TableTtlArgs(attribute_name=spec["ttl_attribute"], enabled=True)
    return out


class SesamiTables(pulumi.ComponentResource):
    tables: dict[str, aws.dynamodb.Table]
    index_arns: list[pulumi.Output[str]]  # every global secondary index, for IAM
    stream_arns: dict[str, pulumi.Output[str]]  # the tables with a stream: its latest ARN

    def __init__(
        self, name: str, args: TablesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:data:Tables", name, None, opts)
        specs = table_specs()
        self.tables = {
            logical: aws.dynamodb.Table(
                f"{name}-{logical}",
                **table_args(logical, spec, args),
                opts=pulumi.ResourceOptions(parent=self, protect=args.deletion_protection),
            )
            for logical, spec in specs.items()
        }
        self.index_arns = [
            pulumi.Output.concat(self.tables[logical].arn, "/index/", gsi["name"])
            for logical, spec in specs.items()
            for gsi in spec["global_secondary_indexes"]
        ]
        self.stream_arns = {
            logical: self.tables[logical].stream_arn
            for logical, spec in specs.items()
            if spec.get("stream_view_type")
        }
        self.register_outputs(
            {
                **{f"{k}_arn": t.arn for k, t in self.tables.items()},
                **{f"{k}_stream_arn": arn for k, arn in self.stream_arns.items()},
            }
        )
