"""SESami's operator stack: reads configuration, composes components, exports outputs."""

from __future__ import annotations

import pulumi
from tables import SesamiTables, TablesArgs

config = pulumi.Config()
stage = pulumi.get_stack()

tables = SesamiTables(
    "sesami",
    TablesArgs(
        prefix=config.get("tablePrefix") or f"sesami-{stage}-",
        deletion_protection=config.get_bool("deletionProtection") is not False,
    ),
)

pulumi.export("table_names", {k: t.name for k, t in tables.tables.items()})
