"""Settings, read once into a frozen object. Explicit arguments beat the environment: tests and
the local stack build `Settings(...)` directly; Lambda uses `Settings.from_env()`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import ConfigurationError

# Environment variable names: the only place they are spelled.
ENV_STAGE = "SESAMI_STAGE"
ENV_TABLE_PREFIX = "SESAMI_TABLE_PREFIX"
ENV_RETENTION_DAYS = "SESAMI_RETENTION_DAYS"
ENV_DYNAMODB_ENDPOINT = "SESAMI_DYNAMODB_ENDPOINT"
ENV_REGION = "AWS_REGION"
ENV_DEFAULT_REGION = "AWS_DEFAULT_REGION"
ENV_TENANT_CACHE_SECONDS = "SESAMI_TENANT_CACHE_SECONDS"

DEFAULT_RETENTION_DAYS = 365
DEFAULT_TENANT_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    table_prefix: str = "sesami-dev-"
    region: str = "us-east-1"
    retention_days: int = DEFAULT_RETENTION_DAYS
    # None in AWS; the DynamoDB Local / moto URL on a developer's machine.
    dynamodb_endpoint: str | None = None
    tenant_cache_seconds: float = DEFAULT_TENANT_CACHE_SECONDS

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ConfigurationError(
                f"{ENV_RETENTION_DAYS} must be >= 1, got {self.retention_days}"
            )
        if not self.table_prefix or len(self.table_prefix) > 200:
            raise ConfigurationError(f"{ENV_TABLE_PREFIX} must be 1-200 characters")

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86_400

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stage = env.get(ENV_STAGE, "dev")
        try:
            retention = int(env.get(ENV_RETENTION_DAYS, DEFAULT_RETENTION_DAYS))
            cache_s = float(env.get(ENV_TENANT_CACHE_SECONDS, DEFAULT_TENANT_CACHE_SECONDS))
        except ValueError as exc:
            raise ConfigurationError(f"numeric setting malformed: {exc}") from exc
        return cls(
            stage=stage,
            table_prefix=env.get(ENV_TABLE_PREFIX, f"sesami-{stage}-"),
            region=env.get(ENV_REGION) or env.get(ENV_DEFAULT_REGION) or "us-east-1",
            retention_days=retention,
            dynamodb_endpoint=env.get(ENV_DYNAMODB_ENDPOINT) or None,
            tenant_cache_seconds=cache_s,
        )
