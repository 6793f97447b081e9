"""Where the stack deploys (account, region, partition) and the ARNs SESami can spell before
the resources exist.

Spelling an ARN from its name is how the program avoids dependency cycles: the API's OpenAPI body
names the API function (which needs the API's URL in its environment), roles name the functions
that use them, the API role names SESami's bus (whose rule targets a function)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_aws as aws


@dataclass(frozen=True)
class Target:
    account_id: str
    region: str
    partition: str = "aws"
    dns_suffix: str = "amazonaws.com"

    @classmethod
    def current(cls) -> Target:
        """The account and region of the provider `pulumi up` runs with."""
        partition = aws.get_partition()
        return cls(
            account_id=aws.get_caller_identity().account_id,
            region=aws.get_region().region,
            partition=partition.partition,
            dns_suffix=partition.dns_suffix,
        )

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        return self.arn("lambda", f"function:{name}" + (f":{qualifier}" if qualifier else ""))

    def role_arn(self, name: str) -> str:
        return self.arn("iam", f"role/{name}", regional=False)  # IAM ARNs have no region

    def log_group_arn(self, name: str) -> str:
        return self.arn("logs", f"log-group:{name}")

    def event_bus_arn(self, name: str) -> str:
        return self.arn("events", f"event-bus/{name}")

    def api_url(self, rest_api_id: str, stage: str) -> str:
        return f"https://{rest_api_id}.execute-api.{self.region}.{self.dns_suffix}/{stage}"
