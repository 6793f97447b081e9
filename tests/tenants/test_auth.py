"""The app verifies every Cognito JWT itself (security invariant 5).

Real tokens come from a moto server (ThreadedMotoServer, Cognito in server mode): a pool with the
tenant attributes, an app client, a confirmed user, USER_PASSWORD_AUTH. Claim-level cases
(expiry to the second, issuer, audience, token_use) are signed with our own RSA key served
through an injected JWKS, so every claim is under the test's control.

moto, like Cognito, writes `iss = https://cognito-idp.{region}.amazonaws.com/{pool}` (the AWS URL,
not the emulator's), `aud` = client id in id tokens, `client_id` in access tokens, and signs
with one fixed key, kid "dummy", served at `{endpoint}/{pool}/.well-known/jwks.json`.
Gap: moto ignores WriteAttributes and puts every custom attribute into id tokens whatever the
client's ReadAttributes; the write rule is asserted on the Pulumi program (invariant 4).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from chalicelib.core.errors import ConfigurationError, ServiceUnavailable, Unauthorized
from chalicelib.tenants.auth import (
    TENANT_ATTRIBUTE,
    TENANT_ROLE_ATTRIBUTE,
    AuthConfig,
    Claims,
    TokenVerifier,
    cognito_issuer,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.warnings import InsecureKeyLengthWarning

from tests.conftest import ROOT
from tests.fakes import FakeEpochClock

REGION = "us-east-1"
PASSWORD = "Corr3ct-Horse-Battery!"


# -- a real pool on moto ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    endpoint: str
    pool_id: str
    client_id: str
    other_client_id: str
    username: str
    email: str
    tenant_id: str
    tokens: Mapping[str, str]

    def config(self, **overrides: Any) -> AuthConfig:
        values: dict[str, Any] = {
            "region": REGION,
            "user_pool_id": self.pool_id,
            "client_ids": frozenset({self.client_id}),
            "jwks_url": f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json",
        }
        return AuthConfig(**(values | overrides))


@pytest.fixture(scope="module")
def pool(moto_endpoint: str) -> Pool:
    import boto3

    idp = boto3.client("cognito-idp", endpoint_url=moto_endpoint, region_name=REGION)
    pool_id = idp.create_user_pool(
        PoolName=f"sesami-test-{uuid.uuid4().hex[:8]}",
        Schema=[
            {"Name": "tenant_id", "AttributeDataType": "String", "Mutable": True},
            {"Name": "tenant_role", "AttributeDataType": "String", "Mutable": True},
        ],
    )["UserPool"]["Id"]

    def app_client(name: str) -> str:
        client: str = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=name,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            ReadAttributes=["email", TENANT_ATTRIBUTE, TENANT_ROLE_ATTRIBUTE],
            WriteAttributes=["email"],  # not enforced by moto: invariant 4 is tested on Pulumi
        )["UserPoolClient"]["ClientId"]
        return client

    client_id, other_client_id = app_client("dashboard"), app_client("other")
    username, email, tenant_id = "alice", "alice@example.com", f"t-{uuid.uuid4().hex[:12]}"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": TENANT_ATTRIBUTE, "Value": tenant_id},
            {"Name": TENANT_ROLE_ATTRIBUTE, "Value": "admin"},
        ],
    )
    # A permanent password confirms the user (FORCE_CHANGE_PASSWORD -> CONFIRMED).
    idp.admin_set_user_password(
        UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username=username)["UserStatus"] == "CONFIRMED"
    result = idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    other = idp.initiate_auth(
        ClientId=other_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    return Pool(
        endpoint=moto_endpoint,
        pool_id=pool_id,
        client_id=client_id,
        other_client_id=other_client_id,
        username=username,
        email=email,
        tenant_id=tenant_id,
        tokens={
            "id": result["IdToken"],
            "access": result["AccessToken"],
            "other_client_id": other["IdToken"],
        },
    )


# -- tokens signed by a key the test owns -------------------------------------------------------

NOW = 1_800_000_000
POOL_ID = "us-east-1_TestPool1"
CLIENT_ID = "client-a"
KID = "test-key-1"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return _new_key()


@pytest.fixture(scope="module")
def rogue_key() -> rsa.RSAPrivateKey:
    return _new_key()


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return data | {"kid": kid, "alg": "RS256", "use": "sig"}


def claims(use: str = "id", /, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": cognito_issuer(REGION, POOL_ID),
        "sub": "8d2c4a1e-0000-4000-8000-000000000001",
        "token_use": use,
        "iat": NOW - 60,
        "auth_time": NOW - 60,
        "exp": NOW + 3600,
        "jti": str(uuid.uuid4()),
    }
    if use == "id":
        base |= {
            "aud": CLIENT_ID,
            "cognito:username": "bob",
            "email": "bob@example.com",
            TENANT_ATTRIBUTE: "t-bob",
            TENANT_ROLE_ATTRIBUTE: "member",
        }
    else:
        base |= {"client_id": CLIENT_ID, "username": "bob", "scope": "openid"}
    return {k: v for k, v in (base | overrides).items() if v is not None}


def sign(key: rsa.RSAPrivateKey, payload: Mapping[str, Any], kid: str = KID) -> str:
    return jwt.encode(dict(payload), key, algorithm="RS256", headers={"kid": kid})


@dataclass
class CountingJwks:
    """A fetch_jwks stand-in: serves `keys`, records each URL fetched."""

    keys: list[dict[str, Any]]
    calls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> Mapping[str, Any]:
        self.calls.append(url)
        return {"keys": list(self.keys)}


@dataclass
class Harness:
    verifier: TokenVerifier
    jwks: CountingJwks
    clock: FakeEpochClock


def make_harness(signing_key: rsa.RSAPrivateKey, **config: Any) -> Harness:
    jwks = CountingJwks([jwk(signing_key, KID)])
    clock = FakeEpochClock(NOW)
    values: dict[str, Any] = {
        "region": REGION,
        "user_pool_id": POOL_ID,
        "client_ids": frozenset({CLIENT_ID}),
    }
    verifier = TokenVerifier(AuthConfig(**(values | config)), fetch_jwks=jwks, clock=clock)
    return Harness(verifier, jwks, clock)


@pytest.fixture
def harness(signing_key: rsa.RSAPrivateKey) -> Harness:
    return make_harness(signing_key)


def rejects(verifier: TokenVerifier, value: str | None, reason: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as info:
        verifier.verify(value)
    assert info.value.message == reason
    assert info.value.status == 401
    if value:
        # The reason never echoes the token or any part of it.
        for part in value.replace("Bearer ", "").split("."):
            if len(part) >= 8:
                assert part not in str(info.value)
    return info.value


def b64(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(dict(data)).encode()).rstrip(b"=").decode()


# -- real moto tokens ---------------------------------------------------------------------------


def test_moto_id_token_verifies_with_tenant_claims(pool: Pool) -> None:
    verifier = TokenVerifier(pool.config())

    got = verifier.verify(f"Bearer {pool.tokens['id']}")

    assert got.token_use == "id"
    assert got.username == pool.username
    assert got.email == pool.email
    assert got.tenant_id == pool.tenant_id
    assert got.tenant_role == "admin"
    assert got.client_id == pool.client_id
    assert got.sub
    assert got.expires_at > time.time()


def test_moto_access_token_verifies_without_tenant(pool: Pool) -> None:
    verifier = TokenVerifier(pool.config())

    got = verifier.verify(pool.tokens["access"])  # a bare token is accepted too

    # Access tokens carry no custom attributes: the API resolves the tenant from `sub`.
    assert (got.token_use, got.username, got.client_id) == ("access", "alice", pool.client_id)
    assert (got.email, got.tenant_id, got.tenant_role) == (None, None, None)
    assert got.sub == verifier.verify(pool.tokens["id"]).sub


def test_moto_issuer_is_the_aws_url_not_the_emulator(pool: Pool) -> None:
    payload = jwt.decode(pool.tokens["id"], options={"verify_signature": False})
    assert payload["iss"] == f"https://cognito-idp.{REGION}.amazonaws.com/{pool.pool_id}"
    assert pool.config().issuer == payload["iss"]

    # An issuer pointing at the emulator is not what Cognito signs: refused.
    wrong = TokenVerifier(pool.config(issuer=f"{pool.endpoint}/{pool.pool_id}"))
    rejects(wrong, pool.tokens["id"], "wrong issuer")


def test_moto_token_for_another_app_client_is_refused(pool: Pool) -> None:
    verifier = TokenVerifier(pool.config())
    rejects(verifier, pool.tokens["other_client_id"], "wrong audience/client")


def test_moto_access_token_refused_when_only_id_tokens_are_accepted(pool: Pool) -> None:
    verifier = TokenVerifier(pool.config(accepted_token_use=frozenset({"id"})))
    assert verifier.verify(pool.tokens["id"]).token_use == "id"
    rejects(verifier, pool.tokens["access"], "wrong token_use")


def test_moto_token_with_a_flipped_claim_is_refused(pool: Pool) -> None:
    header, payload, signature = pool.tokens["id"].split(".")
    claims_ = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims_[TENANT_ATTRIBUTE] = "t-someone-else"
    forged = f"{header}.{b64(claims_)}.{signature}"

    rejects(TokenVerifier(pool.config()), forged, "bad signature")


def test_moto_token_resigned_with_another_key_under_the_same_kid_is_refused(
    pool: Pool, rogue_key: rsa.RSAPrivateKey
) -> None:
    payload = jwt.decode(pool.tokens["id"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(pool.tokens["id"])["kid"]
    forged = sign(rogue_key, payload | {TENANT_ATTRIBUTE: "t-someone-else"}, kid=kid)

    rejects(TokenVerifier(pool.config()), forged, "bad signature")


# -- the header and the token's shape -----------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   ", "Bearer", "Bearer   "])
def test_missing_token_is_refused(harness: Harness, value: str | None) -> None:
    rejects(harness.verifier, value, "missing token")
    assert harness.jwks.calls == []


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "Bearer not-a-jwt",
        "a.b.c",
        "Bearer ....",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "!!!.!!!.!!!",
        "x" * 20_000 + ".y.z",
    ],
)
def test_garbage_is_refused_as_malformed(harness: Harness, value: str) -> None:
    rejects(harness.verifier, value, "malformed token")
    assert harness.jwks.calls == []


def test_other_authorization_schemes_are_refused(harness: Harness) -> None:
    rejects(harness.verifier, "Basic dXNlcjpwYXNz", "unsupported authorization scheme")


def test_bearer_scheme_is_case_insensitive(harness: Harness, signing_key: Any) -> None:
    token = sign(signing_key, claims())
    assert harness.verifier.verify(f"bearer {token}").username == "bob"
    assert harness.verifier.verify(f"  BEARER  {token} ").username == "bob"


def test_alg_none_token_is_refused(harness: Harness) -> None:
    token = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': KID})}.{b64(claims())}."
    rejects(harness.verifier, token, "algorithm not allowed")
    assert harness.jwks.calls == []  # refused from the header alone, before any key lookup


def test_hs256_token_keyed_with_the_public_key_is_refused(
    harness: Harness, signing_key: rsa.RSAPrivateKey
) -> None:
    # The classic RS256 -> HS256 confusion: the public key (PEM) used as an HMAC secret. Built
    # by hand because PyJWT itself refuses to encode with a PEM as an HMAC secret.
    secret = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': KID})}.{b64(claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    rejects(harness.verifier, token, "algorithm not allowed")


def test_token_without_kid_is_refused(harness: Harness, signing_key: Any) -> None:
    token = jwt.encode(claims(), signing_key, algorithm="RS256")
    rejects(harness.verifier, token, "malformed token")


# -- claims, with tokens signed by the test's key -----------------------------------------------


def test_crafted_id_token_verifies(harness: Harness, signing_key: Any) -> None:
    got = harness.verifier.verify(f"Bearer {sign(signing_key, claims())}")
    assert got == Claims(
        sub="8d2c4a1e-0000-4000-8000-000000000001",
        username="bob",
        token_use="id",
        client_id=CLIENT_ID,
        expires_at=NOW + 3600,
        email="bob@example.com",
        tenant_id="t-bob",
        tenant_role="member",
    )


def test_token_expired_by_one_second_is_refused(harness: Harness, signing_key: Any) -> None:
    token = sign(signing_key, claims(exp=NOW + 10))
    harness.clock.now = NOW + 9
    assert harness.verifier.verify(token).expires_at == NOW + 10
    harness.clock.now = NOW + 11
    rejects(harness.verifier, token, "token expired")


def test_token_expiring_now_is_refused(harness: Harness, signing_key: Any) -> None:
    rejects(harness.verifier, sign(signing_key, claims(exp=NOW)), "token expired")


def test_leeway_tolerates_exactly_its_own_skew(signing_key: Any) -> None:
    h = make_harness(signing_key, leeway=5)
    token = sign(signing_key, claims(exp=NOW - 4))
    assert h.verifier.verify(token).expires_at == NOW - 4
    rejects(h.verifier, sign(signing_key, claims(exp=NOW - 5)), "token expired")


def test_token_issued_in_the_future_is_refused(harness: Harness, signing_key: Any) -> None:
    rejects(harness.verifier, sign(signing_key, claims(iat=NOW + 1)), "token not yet valid")
    rejects(harness.verifier, sign(signing_key, claims(nbf=NOW + 1)), "token not yet valid")


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "token_use"])
def test_required_claim_missing_is_refused(harness: Harness, signing_key: Any, claim: str) -> None:
    rejects(harness.verifier, sign(signing_key, claims(**{claim: None})), f"missing claim {claim}")


def test_non_numeric_exp_is_refused(harness: Harness, signing_key: Any) -> None:
    rejects(harness.verifier, sign(signing_key, claims(exp="never")), "malformed claim exp")


@pytest.mark.parametrize(
    "iss",
    [
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OtherPool",
        "https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_TestPool1",
        "https://evil.example/us-east-1_TestPool1",
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool1/",
    ],
)
def test_another_issuer_is_refused(harness: Harness, signing_key: Any, iss: str) -> None:
    rejects(harness.verifier, sign(signing_key, claims(iss=iss)), "wrong issuer")


@pytest.mark.parametrize(
    ("token_use", "overrides"),
    [
        ("id", {"aud": "client-b"}),
        ("id", {"aud": [CLIENT_ID]}),  # Cognito's aud is one string; a list is not accepted
        ("id", {"aud": None, "client_id": CLIENT_ID}),  # id tokens name the client in aud
        ("access", {"client_id": "client-b"}),
        ("access", {"client_id": None, "aud": CLIENT_ID}),  # access tokens: client_id only
    ],
)
def test_another_client_is_refused(
    harness: Harness, signing_key: Any, token_use: str, overrides: dict[str, Any]
) -> None:
    token = sign(signing_key, claims(token_use, **overrides))
    rejects(harness.verifier, token, "wrong audience/client")


def test_any_configured_client_is_accepted(signing_key: Any) -> None:
    h = make_harness(signing_key, client_ids=frozenset({CLIENT_ID, "client-b"}))
    assert h.verifier.verify(sign(signing_key, claims(aud="client-b"))).client_id == "client-b"


@pytest.mark.parametrize(
    ("accepted", "token_use"),
    [({"id"}, "access"), ({"access"}, "id")],
)
def test_token_use_outside_configuration_is_refused(
    signing_key: Any, accepted: set[str], token_use: str
) -> None:
    h = make_harness(signing_key, accepted_token_use=frozenset(accepted))
    rejects(h.verifier, sign(signing_key, claims(token_use)), "wrong token_use")


def test_unknown_token_use_is_refused(harness: Harness, signing_key: Any) -> None:
    token = sign(signing_key, claims(token_use="refresh", aud=CLIENT_ID))
    rejects(harness.verifier, token, "wrong token_use")


def test_tampered_payload_keeping_the_signature_is_refused(
    harness: Harness, signing_key: Any
) -> None:
    header, _, signature = sign(signing_key, claims()).split(".")
    tampered = f"{header}.{b64(claims(**{TENANT_ROLE_ATTRIBUTE: 'admin'}))}.{signature}"
    rejects(harness.verifier, tampered, "bad signature")


def test_token_signed_by_another_key_with_the_same_kid_is_refused(
    harness: Harness, rogue_key: Any
) -> None:
    rejects(harness.verifier, sign(rogue_key, claims()), "bad signature")


def test_unknown_tenant_role_is_refused(harness: Harness, signing_key: Any) -> None:
    token = sign(signing_key, claims(**{TENANT_ROLE_ATTRIBUTE: "owner"}))
    rejects(harness.verifier, token, "unknown tenant role")


def test_id_token_without_tenant_attribute_has_no_tenant(
    harness: Harness, signing_key: Any
) -> None:
    token = sign(signing_key, claims(**{TENANT_ATTRIBUTE: None, TENANT_ROLE_ATTRIBUTE: None}))
    got = harness.verifier.verify(token)
    assert (got.tenant_id, got.tenant_role) == (None, None)


def test_access_token_never_supplies_tenant_attributes(harness: Harness, signing_key: Any) -> None:
    # Even if a pre-token-generation trigger copied them into an access token, the tenant is
    # taken from id tokens only, or resolved server-side from `sub`.
    token = sign(
        signing_key,
        claims("access", **{TENANT_ATTRIBUTE: "t-bob", TENANT_ROLE_ATTRIBUTE: "admin"}),
    )
    got = harness.verifier.verify(token)
    assert (got.token_use, got.tenant_id, got.tenant_role, got.email) == (
        "access",
        None,
        None,
        None,
    )


# -- the JWKS cache -----------------------------------------------------------------------------


def test_jwks_is_fetched_once_for_many_verifications(harness: Harness, signing_key: Any) -> None:
    tokens = [sign(signing_key, claims(sub=f"user-{i}")) for i in range(100)]
    subs = {harness.verifier.verify(token).sub for token in tokens}
    assert len(subs) == 100
    assert harness.jwks.calls == [
        f"https://cognito-idp.{REGION}.amazonaws.com/{POOL_ID}/.well-known/jwks.json"
    ]


def test_unknown_kid_refetches_once_then_fails(harness: Harness, signing_key: Any) -> None:
    harness.verifier.verify(sign(signing_key, claims()))
    assert len(harness.jwks.calls) == 1
    harness.clock.now += 61  # past the refetch interval
    stranger = sign(signing_key, claims(), kid="rotated-out")

    rejects(harness.verifier, stranger, "unknown signing key")
    assert len(harness.jwks.calls) == 2
    for _ in range(10):
        rejects(harness.verifier, stranger, "unknown signing key")
    assert len(harness.jwks.calls) == 2  # within the interval: no further fetch


def test_unknown_kid_within_the_interval_does_not_refetch(
    harness: Harness, signing_key: Any
) -> None:
    harness.verifier.verify(sign(signing_key, claims()))
    harness.clock.now += 59
    rejects(harness.verifier, sign(signing_key, claims(), kid="other"), "unknown signing key")
    assert len(harness.jwks.calls) == 1


def test_rotated_key_is_picked_up_by_the_refetch(harness: Harness, signing_key: Any) -> None:
    harness.verifier.verify(sign(signing_key, claims()))
    new_key = _new_key()
    harness.jwks.keys = [jwk(signing_key, KID), jwk(new_key, "test-key-2")]
    harness.clock.now += 60

    assert harness.verifier.verify(sign(new_key, claims(), kid="test-key-2")).username == "bob"
    assert len(harness.jwks.calls) == 2


def test_jwks_outage_fails_closed_then_recovers(signing_key: Any) -> None:
    served = CountingJwks([jwk(signing_key, KID)])
    outage = True

    def fetch(url: str) -> Mapping[str, Any]:
        if outage:
            raise OSError("connection refused")
        return served(url)

    verifier = TokenVerifier(
        AuthConfig(REGION, POOL_ID, frozenset({CLIENT_ID})),
        fetch_jwks=fetch,
        clock=FakeEpochClock(NOW),
    )
    token = sign(signing_key, claims())
    with pytest.raises(ServiceUnavailable, match="signing keys unavailable") as outage_error:
        verifier.verify(token)
    assert outage_error.value.status == 503  # the pool's keys are down, not the caller's token

    outage = False  # with no key cached, the next request tries again at once
    assert verifier.verify(token).username == "bob"
    assert len(served.calls) == 1


def test_jwks_without_an_rs256_signing_key_is_unusable(signing_key: Any) -> None:
    encryption_only = jwk(signing_key, KID) | {"use": "enc"}
    h = make_harness(signing_key)
    h.jwks.keys = [encryption_only, {"kty": "oct", "k": "c2VjcmV0", "kid": KID}]
    with pytest.raises(ServiceUnavailable, match="signing keys unavailable"):
        h.verifier.verify(sign(signing_key, claims()))


def test_short_rsa_key_is_refused(harness: Harness) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    harness.jwks.keys = [jwk(weak, KID)]
    with pytest.warns(InsecureKeyLengthWarning):
        token = sign(weak, claims())
    rejects(harness.verifier, token, "unusable signing key")


# -- configuration ------------------------------------------------------------------------------


def test_config_defaults_to_the_pool_urls() -> None:
    config = AuthConfig("eu-west-1", "eu-west-1_AbC", frozenset({"c"}))
    assert config.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"
    assert config.jwks_url == f"{config.issuer}/.well-known/jwks.json"
    assert config.accepted_token_use == {"id", "access"}
    assert config.leeway == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_ids": frozenset()},
        {"client_ids": "abc"},
        {"accepted_token_use": frozenset({"refresh"})},
        {"accepted_token_use": frozenset()},
        {"leeway": -1},
        {"jwks_url": "http://cognito-idp.example.com/jwks.json"},
        {"jwks_url": "file:///etc/passwd"},
        {"user_pool_id": ""},
    ],
)
def test_config_refuses_unsafe_or_empty_settings(overrides: dict[str, Any]) -> None:
    values: dict[str, Any] = {
        "region": REGION,
        "user_pool_id": POOL_ID,
        "client_ids": frozenset({CLIENT_ID}),
    }
    with pytest.raises(ConfigurationError):
        AuthConfig(**(values | overrides))


def test_importing_auth_does_no_io_and_loads_no_jwt() -> None:
    import subprocess
    import sys

    code = (
        "import sys, socket, urllib.request\n"
        "def deny(*a, **k): raise AssertionError('I/O at import')\n"
        "socket.socket.connect = deny\n"
        "urllib.request.urlopen = deny\n"
        "import chalicelib.tenants.auth\n"
        "assert 'jwt' not in sys.modules and 'boto3' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT / "app")
