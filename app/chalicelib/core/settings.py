"""Settings, read once into a frozen object. Explicit arguments beat the environment: tests and
the local stack build `Settings(...)` directly; Lambda uses `Settings.from_env()`.

Secrets (the Momento API key, the credentials and signing keys) are never in a deployed function's
environment: there `<NAME>_PARAMETER` names an SSM SecureString parameter, and `from_env` fetches
every named one with a single GetParameters call (boto3 is imported only then). A plain `<NAME>`
wins, which is how the local stack and the tests pass them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.errors import ConfigurationError

# Environment variable names: the only place they are spelled.
ENV_STAGE = "SESAMI_STAGE"
ENV_TABLE_PREFIX = "SESAMI_TABLE_PREFIX"
ENV_RETENTION_DAYS = "SESAMI_RETENTION_DAYS"
ENV_DYNAMODB_ENDPOINT = "SESAMI_DYNAMODB_ENDPOINT"
ENV_REGION = "AWS_REGION"
ENV_DEFAULT_REGION = "AWS_DEFAULT_REGION"
ENV_TENANT_CACHE_SECONDS = "SESAMI_TENANT_CACHE_SECONDS"
ENV_ACCOUNT_ID = "SESAMI_ACCOUNT_ID"
ENV_EVENT_BUS_ARN = "SESAMI_EVENT_BUS_ARN"
# comma-separated: SESami's roles that assume customers' roles (the onboarding trust policy's)
ENV_ROLE_ARNS = "SESAMI_ROLE_ARNS"
ENV_USER_POOL_ID = "SESAMI_USER_POOL_ID"
ENV_USER_POOL_CLIENT_IDS = "SESAMI_USER_POOL_CLIENT_IDS"  # comma-separated
ENV_JWKS_URL = "SESAMI_JWKS_URL"
ENV_AWS_ENDPOINT = "SESAMI_AWS_ENDPOINT"  # local stack: moto's server for STS/SES/Cognito/events
ENV_SKIP_EXTERNAL_ID_CHECK = "SESAMI_INSECURE_SKIP_EXTERNAL_ID_CHECK"
ENV_MOMENTO_API_KEY = "SESAMI_MOMENTO_API_KEY"
ENV_MOMENTO_ENDPOINT = "SESAMI_MOMENTO_ENDPOINT"  # Momento region endpoint (v2 API keys)
ENV_MOMENTO_LOCAL = "SESAMI_MOMENTO_LOCAL"  # host:port of the local Momento server
ENV_MOMENTO_CACHE = "SESAMI_MOMENTO_CACHE"
ENV_CREDENTIALS_KEY = "SESAMI_CREDENTIALS_KEY"  # 32 bytes, hex: encrypts cached STS credentials
ENV_SIGNING_KEY = "SESAMI_SIGNING_KEY"  # 32 bytes, hex: signs cursors and unsubscribe links
ENV_PUBLIC_URL = "SESAMI_PUBLIC_URL"  # where the API is reached (unsubscribe links point here)
# The bulk_worker Lambda function POST /mail/bulk invokes; empty: a thread (the local stack).
ENV_BULK_WORKER_FUNCTION = "SESAMI_BULK_WORKER_FUNCTION"
# "true": an admin without TOTP MFA in the user pool may not act as an admin.
ENV_ADMIN_MFA_REQUIRED = "SESAMI_ADMIN_MFA_REQUIRED"
# Webhooks (chalicelib/webhooks): the key that encrypts endpoints' signing secrets (32 bytes,
# hex), the delivery queue (SQS), the address alert emails come from (verified in SESami's SES),
# and, for the local stack only, deliveries to loopback over http (off by default, logged when on).
ENV_WEBHOOK_KEY = "SESAMI_WEBHOOK_KEY"
ENV_WEBHOOK_QUEUE_URL = "SESAMI_WEBHOOK_QUEUE_URL"
ENV_ALERTS_FROM = "SESAMI_ALERTS_FROM"
ENV_WEBHOOKS_TO_LOOPBACK = "SESAMI_INSECURE_WEBHOOKS_TO_LOOPBACK"
# Quotas (chalicelib/quotas/limits.py): the defaults every tenant gets unless an operator set
# its own (`python -m ops.quotas`), and the anonymous routes' limits per source address.
ENV_QUOTA_REQUESTS_PER_MINUTE = "SESAMI_QUOTA_REQUESTS_PER_MINUTE"
ENV_QUOTA_KEY_REQUESTS_PER_MINUTE = "SESAMI_QUOTA_KEY_REQUESTS_PER_MINUTE"  # 0: the tenant's
ENV_QUOTA_SENDS_PER_MINUTE = "SESAMI_QUOTA_SENDS_PER_MINUTE"
ENV_QUOTA_BULK_BATCHES = "SESAMI_QUOTA_BULK_BATCHES"
ENV_QUOTA_AUTH_PER_IP_PER_MINUTE = "SESAMI_QUOTA_AUTH_PER_IP_PER_MINUTE"
ENV_QUOTA_UNSUBSCRIBE_PER_IP_PER_MINUTE = "SESAMI_QUOTA_UNSUBSCRIBE_PER_IP_PER_MINUTE"
# How many API instances to assume while Momento is down: each enforces limit / this alone.
ENV_QUOTA_EXPECTED_INSTANCES = "SESAMI_QUOTA_EXPECTED_INSTANCES"
QUOTA_ENV = {
    "quota_requests_per_minute": ENV_QUOTA_REQUESTS_PER_MINUTE,
    "quota_key_requests_per_minute": ENV_QUOTA_KEY_REQUESTS_PER_MINUTE,
    "quota_sends_per_minute": ENV_QUOTA_SENDS_PER_MINUTE,
    "quota_bulk_batches": ENV_QUOTA_BULK_BATCHES,
    "quota_auth_per_ip_per_minute": ENV_QUOTA_AUTH_PER_IP_PER_MINUTE,
    "quota_unsubscribe_per_ip_per_minute": ENV_QUOTA_UNSUBSCRIBE_PER_IP_PER_MINUTE,
    "quota_expected_instances": ENV_QUOTA_EXPECTED_INSTANCES,
}
# The S3 bucket that keeps the content of sent mail (content/); empty: no content is kept.
ENV_CONTENT_BUCKET = "SESAMI_CONTENT_BUCKET"
# The bucket of SESami's refreshed copy of Apple's relay ranges (chalicelib/relays/); unset: none.
ENV_RELAY_RANGES_BUCKET = "SESAMI_RELAY_RANGES_BUCKET"
# `<secret>_PARAMETER`: the SSM SecureString parameter that holds the secret (deployed functions).
PARAMETER_SUFFIX = "_PARAMETER"
SECRET_ENV = (ENV_MOMENTO_API_KEY, ENV_CREDENTIALS_KEY, ENV_SIGNING_KEY, ENV_WEBHOOK_KEY)

DEFAULT_RETENTION_DAYS = 365
# The configuration set the customer-onboarding stack creates (a tenant may name another).
DEFAULT_CONFIGURATION_SET = "sesami-events"
DEFAULT_TENANT_CACHE_SECONDS = 60.0
# How long API Gateway caches its authorizer's answer for one Authorization value (app.py's
# `@app.authorizer`). The app checks every credential itself, so revocation does not wait on it.
AUTHORIZER_TTL_SECONDS = 60
DEFAULT_QUOTA_REQUESTS_PER_MINUTE = 1_200
DEFAULT_QUOTA_SENDS_PER_MINUTE = 3_000
DEFAULT_QUOTA_BULK_BATCHES = 2
DEFAULT_QUOTA_AUTH_PER_IP_PER_MINUTE = 60
DEFAULT_QUOTA_UNSUBSCRIBE_PER_IP_PER_MINUTE = 300
DEFAULT_QUOTA_EXPECTED_INSTANCES = 4


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    table_prefix: str = "sesami-dev-"
    region: str = "us-east-1"
    retention_days: int = DEFAULT_RETENTION_DAYS
    # None in AWS; the DynamoDB Local / moto URL on a developer's machine.
    dynamodb_endpoint: str | None = None
    tenant_cache_seconds: float = DEFAULT_TENANT_CACHE_SECONDS
    account_id: str = "000000000000"
    event_bus_arn: str = "arn:aws:events:us-east-1:000000000000:event-bus/sesami"
    role_arns: tuple[str, ...] = ()
    user_pool_id: str = ""
    user_pool_client_ids: tuple[str, ...] = ()
    jwks_url: str | None = None
    aws_endpoint: str | None = None
    skip_external_id_check: bool = False
    momento_api_key: str | None = field(default=None, repr=False)
    momento_endpoint: str | None = None
    momento_local: str | None = None
    momento_cache: str = "sesami"
    credentials_key: bytes = field(default=b"", repr=False)
    signing_key: bytes = field(default=b"", repr=False)
    public_url: str = "http://127.0.0.1:8000"
    bulk_worker_function: str = ""
    admin_mfa_required: bool = False
    webhook_key: bytes = field(default=b"", repr=False)
    webhook_queue_url: str = ""
    alerts_from: str = ""
    webhooks_to_loopback: bool = False
    quota_requests_per_minute: int = DEFAULT_QUOTA_REQUESTS_PER_MINUTE
    quota_key_requests_per_minute: int = 0
    quota_sends_per_minute: int = DEFAULT_QUOTA_SENDS_PER_MINUTE
    quota_bulk_batches: int = DEFAULT_QUOTA_BULK_BATCHES
    quota_auth_per_ip_per_minute: int = DEFAULT_QUOTA_AUTH_PER_IP_PER_MINUTE
    quota_unsubscribe_per_ip_per_minute: int = DEFAULT_QUOTA_UNSUBSCRIBE_PER_IP_PER_MINUTE
    quota_expected_instances: int = DEFAULT_QUOTA_EXPECTED_INSTANCES
    content_bucket: str = ""
    relay_ranges_bucket: str = ""

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ConfigurationError(
                f"{ENV_RETENTION_DAYS} must be >= 1, got {self.retention_days}"
            )
        for name, env_name in QUOTA_ENV.items():
            floor = 0 if name == "quota_key_requests_per_minute" else 1
            if getattr(self, name) < floor:
                raise ConfigurationError(f"{env_name} must be >= {floor}")
        if not self.table_prefix or len(self.table_prefix) > 200:
            raise ConfigurationError(f"{ENV_TABLE_PREFIX} must be 1-200 characters")
        if self.webhooks_to_loopback and self.stage == "prod":
            raise ConfigurationError(f"{ENV_WEBHOOKS_TO_LOOPBACK} is for the local stack only")

    @property
    def event_bus_name(self) -> str:
        return self.event_bus_arn.rsplit("/", 1)[-1]

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 86_400

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, ssm: Any = None) -> Settings:
        """`ssm`: the client that reads `<secret>_PARAMETER` parameters (default: boto3's)."""
        env = with_parameter_secrets(os.environ if env is None else env, ssm)
        stage = env.get(ENV_STAGE, "dev")
        try:
            retention = int(env.get(ENV_RETENTION_DAYS, DEFAULT_RETENTION_DAYS))
            cache_s = float(env.get(ENV_TENANT_CACHE_SECONDS, DEFAULT_TENANT_CACHE_SECONDS))
            quotas = {name: int(env[var]) for name, var in QUOTA_ENV.items() if env.get(var)}
        except ValueError as exc:
            raise ConfigurationError(f"numeric setting malformed: {exc}") from exc
        return cls(
            stage=stage,
            table_prefix=env.get(ENV_TABLE_PREFIX, f"sesami-{stage}-"),
            region=env.get(ENV_REGION) or env.get(ENV_DEFAULT_REGION) or "us-east-1",
            retention_days=retention,
            dynamodb_endpoint=env.get(ENV_DYNAMODB_ENDPOINT) or None,
            tenant_cache_seconds=cache_s,
            account_id=env.get(ENV_ACCOUNT_ID, "000000000000"),
            event_bus_arn=env.get(ENV_EVENT_BUS_ARN, Settings.event_bus_arn),
            role_arns=tuple(r.strip() for r in env.get(ENV_ROLE_ARNS, "").split(",") if r.strip()),
            user_pool_id=env.get(ENV_USER_POOL_ID, ""),
            user_pool_client_ids=tuple(
                c.strip() for c in env.get(ENV_USER_POOL_CLIENT_IDS, "").split(",") if c.strip()
            ),
            jwks_url=env.get(ENV_JWKS_URL) or None,
            aws_endpoint=env.get(ENV_AWS_ENDPOINT) or None,
            skip_external_id_check=env.get(ENV_SKIP_EXTERNAL_ID_CHECK, "").lower() in ("1", "true"),
            momento_api_key=env.get(ENV_MOMENTO_API_KEY) or None,
            momento_endpoint=env.get(ENV_MOMENTO_ENDPOINT) or None,
            momento_local=env.get(ENV_MOMENTO_LOCAL) or None,
            momento_cache=env.get(ENV_MOMENTO_CACHE, "sesami"),
            credentials_key=_hex_key(env.get(ENV_CREDENTIALS_KEY, ""), ENV_CREDENTIALS_KEY),
            signing_key=_hex_key(env.get(ENV_SIGNING_KEY, ""), ENV_SIGNING_KEY),
            public_url=env.get(ENV_PUBLIC_URL, "http://127.0.0.1:8000").rstrip("/"),
            bulk_worker_function=env.get(ENV_BULK_WORKER_FUNCTION, "").strip(),
            admin_mfa_required=env.get(ENV_ADMIN_MFA_REQUIRED, "").lower() in ("1", "true"),
            webhook_key=_hex_key(env.get(ENV_WEBHOOK_KEY, ""), ENV_WEBHOOK_KEY),
            webhook_queue_url=env.get(ENV_WEBHOOK_QUEUE_URL, "").strip(),
            alerts_from=env.get(ENV_ALERTS_FROM, "").strip(),
            webhooks_to_loopback=env.get(ENV_WEBHOOKS_TO_LOOPBACK, "").lower() in ("1", "true"),
            **quotas,
            content_bucket=env.get(ENV_CONTENT_BUCKET, "").strip(),
            relay_ranges_bucket=env.get(ENV_RELAY_RANGES_BUCKET, "").strip(),
        )


def with_parameter_secrets(env: Mapping[str, str], ssm: Any = None) -> Mapping[str, str]:
    """`env` plus the value of every secret it names by `<NAME>_PARAMETER` and does not carry
    itself, read from SSM Parameter Store (decrypted) in one call. No parameter, no AWS call."""
    wanted = {
        name: env[name + PARAMETER_SUFFIX]
        for name in SECRET_ENV
        if not env.get(name) and env.get(name + PARAMETER_SUFFIX)
    }
    if not wanted:
        return env
    if ssm is None:
        from chalicelib.core import aws

        region = env.get(ENV_REGION) or env.get(ENV_DEFAULT_REGION) or "us-east-1"
        ssm = aws.client("ssm", region=region, endpoint=env.get(ENV_AWS_ENDPOINT) or None)
    found = ssm.get_parameters(Names=sorted(set(wanted.values())), WithDecryption=True)
    values = {p["Name"]: p["Value"] for p in found.get("Parameters", [])}
    missing = sorted(n for n in set(wanted.values()) if n not in values)
    if missing:
        raise ConfigurationError(f"SSM parameters not found: {', '.join(missing)}")
    return {**env, **{name: values[parameter] for name, parameter in wanted.items()}}


def _hex_key(raw: str, name: str) -> bytes:
    if not raw:
        return b""
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be hex") from None
    if len(key) != 32:
        raise ConfigurationError(f"{name} must be 32 bytes (64 hex characters)")
    return key
