"""Credential-check figures on a warm instance (every object built, caches filled), averaged over
many calls:

- auth_ms_per_request_key: `ApiKeyService.verify` of an API key: the shape check, one
  consistent GetItem of the key's item (against Amazon DynamoDB Local on this machine), the
  SHA-256 digest and its constant-time comparison. What the gateway's authorizer runs too.
- auth_ms_per_request_jwt: `TokenVerifier.verify` of a Cognito-shaped RS256 ID token (2048-bit
  key, the JWKS already fetched): signature, issuer, audience, token_use, times. No I/O.
Each figure is the median of 5 rounds (the machines are shared and noisy).
- auth_cpu_us_per_request_key / _jwt: the same calls' process CPU (DynamoDB Local runs in its
  own process: this is SESami's side only).
- auth_ms_per_request_key_with_membership / _jwt_with_membership: the whole of what the app runs
  before a route's body (core/wiring.authenticate): the check above plus the team lookups (the
  tenant; for a person, their binding), with last-use and activity writes at their real rate.
- auth_dynamodb_requests_per_request_key / _jwt: DynamoDB requests per whole authentication.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import tables
from chalicelib.core.permissions import Role
from chalicelib.core.settings import Settings
from chalicelib.core.tables import TenantModel, UserModel
from chalicelib.tenants.api_keys import ApiKeyService
from chalicelib.tenants.auth import AuthConfig, TokenVerifier
from chalicelib.tenants.membership import Caller, Membership, TenantService
from pynamodb.connection import base as pynamodb_base

from devstack.dynamodb_local import DynamoDBLocal, create_tables

CALLS_KEY = 1_000
CALLS_JWT = 2_000
WARMUP = 500
ROUNDS = 5
REGION, POOL, CLIENT = "us-east-1", "us-east-1_BenchPool1", "benchclient0000000000000001"


class _NoDirectory:
    """The user pool is never called for a user already bound to a tenant."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the bench must not reach the user pool ({name})")


def _token_and_verifier() -> tuple[str, TokenVerifier]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwks = {"keys": [{**public, "kid": "bench", "alg": "RS256", "use": "sig"}]}
    now = int(time.time())
    claims = {
        "iss": f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}",
        "sub": str(uuid.uuid4()),
        "aud": CLIENT,
        "token_use": "id",
        "iat": now,
        "exp": now + 3600,
        "cognito:username": "bench@example.com",
        "email": "bench@example.com",
    }
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "bench"})
    verifier = TokenVerifier(
        AuthConfig(region=REGION, user_pool_id=POOL, client_ids=frozenset({CLIENT})),
        fetch_jwks=lambda url: jwks,
    )
    return token, verifier


def _per_call(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """(wall ms, process CPU µs) per call: the median of ROUNDS rounds, after a warm-up (DynamoDB
    Local's JVM needs a few hundred requests before its answers settle)."""
    for _ in range(WARMUP):
        fn()
    walls, cpus = [], []
    per_round = max(1, calls // ROUNDS)
    for _ in range(ROUNDS):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(per_round):
            fn()
        walls.append((time.perf_counter() - wall) * 1000 / per_round)
        cpus.append((time.process_time() - cpu) * 1e6 / per_round)
    return statistics.median(walls), statistics.median(cpus)


class _Requests:
    """DynamoDB requests PynamoDB makes, by operation."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self._orig = pynamodb_base.Connection._make_api_call

    def __enter__(self) -> _Requests:
        orig, seen = self._orig, self.seen

        def call(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
            seen[operation] += 1
            return orig(conn, operation, kwargs)

        pynamodb_base.Connection._make_api_call = call  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        pynamodb_base.Connection._make_api_call = self._orig  # type: ignore[method-assign]


def _measure() -> dict[str, Any]:
    now = datetime.now(UTC)
    tenant = TenantModel(uuid.uuid4().hex, external_id="bench", created_at=now, admin_count=1)
    tenant.save()
    token, verifier = _token_and_verifier()
    claims = verifier.verify(f"Bearer {token}")
    caller = Caller(sub=claims.sub, email=claims.email, username=claims.username)
    UserModel(claims.sub, tenant_id=tenant.tenant_id, role="admin", created_at=now).save()
    keys = ApiKeyService()
    key = keys.create(Membership(tenant, Role.ADMIN, caller), "bench", "send")["key"]
    team = TenantService(_NoDirectory())  # type: ignore[arg-type]

    key_ms, key_cpu = _per_call(lambda: keys.verify(key), CALLS_KEY)
    jwt_ms, jwt_cpu = _per_call(lambda: verifier.verify(f"Bearer {token}"), CALLS_JWT)
    key_full_ms, _ = _per_call(lambda: keys.membership(key), CALLS_KEY)
    jwt_full_ms, _ = _per_call(lambda: team.membership(_caller(verifier, token)), CALLS_KEY)
    with _Requests() as key_requests:
        for _ in range(100):
            keys.membership(key)
    with _Requests() as jwt_requests:
        for _ in range(100):
            team.membership(_caller(verifier, token))
    return {
        "auth_ms_per_request_key": round(key_ms, 3),
        "auth_ms_per_request_jwt": round(jwt_ms, 3),
        "auth_cpu_us_per_request_key": round(key_cpu, 1),
        "auth_cpu_us_per_request_jwt": round(jwt_cpu, 1),
        "auth_ms_per_request_key_with_membership": round(key_full_ms, 3),
        "auth_ms_per_request_jwt_with_membership": round(jwt_full_ms, 3),
        "auth_dynamodb_requests_per_request_key": sum(key_requests.seen.values()) / 100,
        "auth_dynamodb_requests_per_request_jwt": sum(jwt_requests.seen.values()) / 100,
    }


def _caller(verifier: TokenVerifier, token: str) -> Caller:
    claims = verifier.verify(f"Bearer {token}")
    return Caller(sub=claims.sub, email=claims.email, username=claims.username)


def run() -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    with DynamoDBLocal() as ddb:
        settings = Settings(table_prefix="bench-auth-", dynamodb_endpoint=ddb.endpoint)
        create_tables(settings)
        tables.configure(settings)
        return _measure()
