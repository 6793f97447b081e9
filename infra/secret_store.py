"""SESami's secrets, from Pulumi secrets into SSM Parameter Store SecureStrings.

The values stay Pulumi secrets (encrypted in the stack's state); the functions' environment only
names the parameters (`<NAME>_PARAMETER`, see `chalicelib.core.settings`), and the functions read
them once per cold start. The parameters are encrypted with the AWS managed key `aws/ssm`, whose key
policy lets principals of this account that IAM allows `ssm:GetParameters` decrypt them: IAM on
the parameters' ARNs is what limits who reads them (the API and bulk worker roles, see roles.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "app"))

from chalicelib.core.settings import (
    ENV_CREDENTIALS_KEY,
    ENV_MOMENTO_API_KEY,
    ENV_SIGNING_KEY,
    ENV_WEBHOOK_KEY,
    PARAMETER_SUFFIX,
)

_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class SecretsArgs:
    path: str  # parameter name prefix, e.g. "/sesami/prod/"
    momento_api_key: pulumi.Input[str]
    signing_key: pulumi.Input[str]
    credentials_key: pulumi.Input[str]
    webhook_key: pulumi.Input[str]


def hex_key(value: str, config_key: str) -> str:
    """Pure: the value, if it is the 32-byte hex key the app requires (fail at `pulumi up`,
    not at the first request)."""
    if not _HEX_KEY.fullmatch(value.strip()):
        raise ValueError(
            f"config `{config_key}` must be 32 random bytes in hex (64 characters), "
            "e.g. `openssl rand -hex 32`"
        )
    return value.strip()


class SesamiSecrets(pulumi.ComponentResource):
    parameters: dict[str, aws.ssm.Parameter]  # by the app's environment variable name
    environment: dict[str, str]  # `<NAME>_PARAMETER` -> parameter name, for the functions

    def __init__(
        self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sesami:secrets:Secrets", name, None, opts)
        values: dict[str, tuple[str, pulumi.Input[str]]] = {
            ENV_MOMENTO_API_KEY: ("momento-api-key", args.momento_api_key),
            ENV_SIGNING_KEY: (
                "signing-key",
                pulumi.Output.from_input(args.signing_key).apply(
                    lambda v: hex_key(v, "signingKey")
                ),
            ),
            ENV_CREDENTIALS_KEY: (
                "credentials-key",
                pulumi.Output.from_input(args.credentials_key).apply(
                    lambda v: hex_key(v, "credentialsKey")
                ),
            ),
            ENV_WEBHOOK_KEY: (
                "webhook-key",
                pulumi.Output.from_input(args.webhook_key).apply(
                    lambda v: hex_key(v, "webhookKey")
                ),
            ),
        }
        self.parameters = {
            env: aws.ssm.Parameter(
                f"{name}-{suffix}",
                name=f"{args.path}{suffix}",
                type="SecureString",
                value=pulumi.Output.secret(value),
                description=f"SESami {env} (read by the functions at cold start)",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for env, (suffix, value) in values.items()
        }
        self.environment = {
            env + PARAMETER_SUFFIX: f"{args.path}{suffix}" for env, (suffix, _) in values.items()
        }
        self.register_outputs({"parameter_names": self.environment})

    def arns(self, names: Sequence[str] | None = None) -> list[pulumi.Output[str]]:
        """The parameters' ARNs (of `names`, the app's environment variable names, or all)."""
        return [p.arn for env, p in self.parameters.items() if names is None or env in names]

    def environment_of(self, names: Sequence[str]) -> dict[str, str]:
        return {
            k: v for k, v in self.environment.items() if k.removesuffix(PARAMETER_SUFFIX) in names
        }
