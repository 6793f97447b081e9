"""SESami's operator stack: reads configuration, composes components, exports outputs.

Config (`pulumi config set <key> <value>`):
- tablePrefix            DynamoDB table name prefix (default `sesami-<stack>-`)
- deletionProtection     false to allow `pulumi destroy` of tables and the user pool (default true)
- selfSignUp             false to allow only admin-created users (default true)
- eventBusName           SESami's custom bus (default `sesami-<stack>`)
- alarmTopicArn          optional SNS topic notified by the ingest alarms
- ingestFunctionArn,     the ingest Lambda's ARN and name. Temporary: required until the
  ingestFunctionName     `chalice package` component builds the function in this program; then
                         these keys go away and its outputs are passed to SesamiEvents instead.
"""

from __future__ import annotations

import pulumi
from events import EventsArgs, SesamiEvents
from identity import IdentityArgs, SesamiIdentity
from tables import SesamiTables, TablesArgs

config = pulumi.Config()
stage = pulumi.get_stack()
deletion_protection = config.get_bool("deletionProtection") is not False

tables = SesamiTables(
    "sesami",
    TablesArgs(
        prefix=config.get("tablePrefix") or f"sesami-{stage}-",
        deletion_protection=deletion_protection,
    ),
)

identity = SesamiIdentity(
    "sesami",
    IdentityArgs(
        pool_name=f"sesami-{stage}",
        deletion_protection=deletion_protection,
        self_sign_up=config.get_bool("selfSignUp") is not False,
    ),
)

alarm_topic = config.get("alarmTopicArn")
events = SesamiEvents(
    "sesami",
    EventsArgs(
        bus_name=config.get("eventBusName") or f"sesami-{stage}",
        ingest_function_arn=config.require("ingestFunctionArn"),
        ingest_function_name=config.require("ingestFunctionName"),
        alarm_actions=[alarm_topic] if alarm_topic else [],
    ),
)

pulumi.export("table_names", {k: t.name for k, t in tables.tables.items()})
pulumi.export("user_pool_id", identity.user_pool.id)
pulumi.export("user_pool_client_id", identity.dashboard_client.id)
pulumi.export("event_bus_arn", events.bus.arn)
pulumi.export("ingest_dlq_url", events.dead_letters.url)
