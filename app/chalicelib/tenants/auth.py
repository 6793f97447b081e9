"""Verification of Cognito JWTs by the app itself (security invariant 5).

`chalice local` lets every request through unverified, and API Gateway's Cognito authorizer is
not the only line of defence, so each request's token is checked here: the RS256 signature
against the user pool's JWKS, `iss`, `token_use`, the app client (`aud` for id tokens,
`client_id` for access tokens) and `exp`. Every failure is an `Unauthorized` whose message is a
short fixed reason; no part of the token is ever echoed.

The JWKS is fetched lazily on first use and cached for the life of the verifier (one per
process: build it once, like the other runtime objects). A token signed with a `kid` the cache
does not know causes one refetch, at most once per `JWKS_REFETCH_SECONDS`, so that a key
rotation is picked up but a stream of forged `kid`s cannot turn the API into a JWKS hammer.

Tenant binding. Id tokens carry the user's attributes, among them `custom:tenant_id` and
`custom:tenant_role`; no app client can write those (invariant 4), so a verified id token is
proof of the tenant. Access tokens carry no custom attributes: their `Claims.tenant_id` and
`tenant_role` are None, and the API must then resolve the tenant server-side from the verified
`sub` (a user -> tenant lookup, or AdminGetUser on the pool), never from anything the client
sends alongside the token.

PyJWT (and the `cryptography` it loads) is imported on first verification, not at import time:
the ingest function never pays for it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from chalicelib.core.errors import ConfigurationError, ServiceUnavailable, Unauthorized

if TYPE_CHECKING:
    from jwt import PyJWK

TENANT_ATTRIBUTE = "custom:tenant_id"
TENANT_ROLE_ATTRIBUTE = "custom:tenant_role"
# The user pool's custom attributes (schema names). Only SESami's admin calls write them; the
# infrastructure gives no app client write access to them (invariant 4).
CUSTOM_ATTRIBUTES = ("tenant_id", "tenant_role")
# What the pool may carry in custom:tenant_role (a mirror: SESami trusts its own binding).
# "member" is the name senders had before roles (core/permissions.py).
TENANT_ROLES = frozenset({"admin", "sender", "viewer", "member"})
TOKEN_USES = frozenset({"id", "access"})

ALGORITHM = "RS256"  # Cognito signs with RS256 only; nothing else is ever accepted.
REQUIRED_CLAIMS = ["exp", "iat", "iss", "token_use"]
JWKS_REFETCH_SECONDS = 60.0
JWKS_TIMEOUT_SECONDS = 3.0
MAX_TOKEN_LENGTH = 16_384  # Cognito tokens are a few KB; anything larger is refused unparsed.
MAX_JWKS_BYTES = 1_048_576
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

TokenUse = Literal["id", "access"]
TenantRole = str  # one of TENANT_ROLES
FetchJwks = Callable[[str], Mapping[str, Any]]
Clock = Callable[[], float]


def cognito_issuer(region: str, user_pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


@dataclass(frozen=True)
class AuthConfig:
    """Which tokens the API accepts. Empty `jwks_url`/`issuer` mean the pool's AWS URLs.

    With moto, point `jwks_url` at `{moto_endpoint}/{pool_id}/.well-known/jwks.json`; the issuer
    stays the AWS URL because that is what moto (like Cognito) writes in `iss`.
    """

    region: str
    user_pool_id: str
    client_ids: frozenset[str]
    jwks_url: str = ""
    issuer: str = ""
    accepted_token_use: frozenset[str] = TOKEN_USES
    leeway: float = 0.0

    def __post_init__(self) -> None:
        if not self.region or not self.user_pool_id:
            raise ConfigurationError("auth: region and user_pool_id are required")
        object.__setattr__(self, "client_ids", _string_set(self.client_ids, "client_ids"))
        object.__setattr__(
            self, "accepted_token_use", _string_set(self.accepted_token_use, "accepted_token_use")
        )
        if not self.client_ids:
            raise ConfigurationError("auth: at least one app client id is required")
        if not self.accepted_token_use or not self.accepted_token_use <= TOKEN_USES:
            raise ConfigurationError("auth: accepted_token_use must be a subset of {id, access}")
        if self.leeway < 0:
            raise ConfigurationError("auth: leeway must be >= 0")
        base = cognito_issuer(self.region, self.user_pool_id)
        if not self.issuer:
            object.__setattr__(self, "issuer", base)
        if not self.jwks_url:
            object.__setattr__(self, "jwks_url", f"{base}/.well-known/jwks.json")
        url = urlsplit(self.jwks_url)
        local = url.scheme == "http" and url.hostname in _LOOPBACK_HOSTS
        if not (url.scheme == "https" or local) or not url.hostname:
            # Keys fetched over plain HTTP could be swapped in transit; only an emulator on this
            # machine is exempt.
            raise ConfigurationError("auth: jwks_url must be https (or http on loopback)")


def _string_set(values: Iterable[str], name: str) -> frozenset[str]:
    if isinstance(values, str) or not all(isinstance(v, str) and v for v in values):
        raise ConfigurationError(f"auth: {name} must be a set of non-empty strings")
    return frozenset(values)


@dataclass(frozen=True)
class Claims:
    """What a verified token says. `expires_at` is POSIX seconds.

    `email`, `tenant_id` and `tenant_role` come from id tokens only; for an access token they are
    None and the tenant must be looked up from `sub` (see the module docstring).
    """

    sub: str
    username: str
    token_use: TokenUse
    client_id: str
    expires_at: int
    email: str | None = None
    tenant_id: str | None = None
    tenant_role: TenantRole | None = None


class TokenVerifier:
    """Verifies `Authorization` header values (or bare tokens) against one user pool."""

    def __init__(
        self,
        config: AuthConfig,
        fetch_jwks: FetchJwks | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.config = config
        self._fetch = fetch_jwks or fetch_jwks_url
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._last_fetch: float | None = None

    def verify(self, authorization: str | None) -> Claims:
        token = _extract_token(authorization)
        header = _unverified_header(token)
        key = self._signing_key(header["kid"])
        payload = self._decode(token, key)
        return self._claims(payload)

    # -- keys ---------------------------------------------------------------------------------

    def _signing_key(self, kid: str) -> PyJWK:
        with self._lock:
            key = self._keys.get(kid)
            if key is None and self._may_fetch():
                self._refresh()
                key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("unknown signing key")
        return key

    def _may_fetch(self) -> bool:
        # An empty cache (first use, or every fetch so far failed) always tries; otherwise an
        # unknown kid refetches at most once per interval.
        if not self._keys or self._last_fetch is None:
            return True
        return self._clock() - self._last_fetch >= JWKS_REFETCH_SECONDS

    def _refresh(self) -> None:
        self._last_fetch = self._clock()
        try:
            document = self._fetch(self.config.jwks_url)
            keys = _parse_jwks(document)
        except Exception as exc:
            # Any failure of the outside service (network, HTTP, JSON, no usable key) leaves the
            # old keys in place. With none cached the request fails closed.
            if not self._keys:
                # Not the caller's fault: a 503 (fails closed all the same).
                raise ServiceUnavailable("signing keys unavailable") from exc
            return
        self._keys = keys

    # -- token --------------------------------------------------------------------------------

    def _decode(self, token: str, key: PyJWK) -> dict[str, Any]:
        import jwt

        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                issuer=self.config.issuer,
                options={
                    "require": REQUIRED_CLAIMS,
                    "verify_aud": False,  # checked per token_use in _claims
                    # Time claims are checked in _claims against the injected clock.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidAlgorithmError as exc:
            raise Unauthorized("algorithm not allowed") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("bad signature") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("wrong issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"missing claim {exc.claim}") from exc
        except jwt.InvalidKeyError as exc:
            raise Unauthorized("unusable signing key") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed token") from exc
        return payload

    def _claims(self, payload: dict[str, Any]) -> Claims:
        config = self.config
        use = _token_use(payload["token_use"], config.accepted_token_use)
        is_id = use == "id"
        client = payload.get("aud" if is_id else "client_id")
        if not isinstance(client, str) or client not in config.client_ids:
            raise Unauthorized("wrong audience/client")

        now = self._clock()
        exp, iat = _int_claim(payload, "exp"), _int_claim(payload, "iat")
        if exp <= now - config.leeway:
            raise Unauthorized("token expired")
        if iat > now + config.leeway:
            raise Unauthorized("token not yet valid")
        if "nbf" in payload and _int_claim(payload, "nbf") > now + config.leeway:
            raise Unauthorized("token not yet valid")

        sub = payload.get("sub")
        username = payload.get("cognito:username" if is_id else "username")
        if not isinstance(sub, str) or not sub or not isinstance(username, str) or not username:
            raise Unauthorized("malformed token claims")
        # Only id tokens speak for the user's attributes (see the module docstring).
        return Claims(
            sub=sub,
            username=username,
            token_use=use,
            client_id=client,
            expires_at=exp,
            email=_optional_str(payload, "email") if is_id else None,
            tenant_id=_optional_str(payload, TENANT_ATTRIBUTE) if is_id else None,
            tenant_role=_tenant_role(payload) if is_id else None,
        )


def fetch_jwks_url(url: str) -> Mapping[str, Any]:
    """GET a JWKS document (3 s timeout). The URL's scheme was checked by `AuthConfig`."""
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("JWKS document is not an object")
    return document


def _parse_jwks(document: Mapping[str, Any]) -> dict[str, PyJWK]:
    """The RS256 signing keys of a JWKS, by kid. Raises if there is none."""
    from jwt import PyJWKSet

    keys = {}
    for key in PyJWKSet.from_dict(dict(document)).keys:
        usable = (
            key.key_type == "RSA"
            and key.algorithm_name == ALGORITHM
            and key.public_key_use in (None, "sig")
            and key.key_id
        )
        if usable and key.key_id:
            keys[key.key_id] = key
    if not keys:
        raise ValueError("JWKS has no RS256 signing key")
    return keys


def _extract_token(authorization: str | None) -> str:
    value = (authorization or "").strip()
    if not value:
        raise Unauthorized("missing token")
    scheme, _, rest = value.partition(" ")
    if value.lower() == "bearer":
        raise Unauthorized("missing token")
    if rest:
        if scheme.lower() != "bearer":
            raise Unauthorized("unsupported authorization scheme")
        value = rest.strip()
        if not value:
            raise Unauthorized("missing token")
    if len(value) > MAX_TOKEN_LENGTH or value.count(".") != 2:
        raise Unauthorized("malformed token")
    return value


def _unverified_header(token: str) -> dict[str, Any]:
    """The header, read only to pick the key; the signature check later covers it."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthorized("malformed token") from exc
    # Refused before any key lookup, so that `alg: none` or HS256 tokens never reach a key.
    if header.get("alg") != ALGORITHM:
        raise Unauthorized("algorithm not allowed")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise Unauthorized("malformed token")
    return header


def _token_use(value: object, accepted: frozenset[str]) -> TokenUse:
    if value not in accepted:  # accepted is a subset of {"id", "access"} (AuthConfig)
        raise Unauthorized("wrong token_use")
    return "id" if value == "id" else "access"


def _int_claim(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unauthorized(f"malformed claim {name}")
    return int(value)


def _optional_str(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise Unauthorized("malformed token claims")
    return value


def _tenant_role(payload: Mapping[str, Any]) -> TenantRole | None:
    value = payload.get(TENANT_ROLE_ATTRIBUTE)
    if value is None:
        return None
    if isinstance(value, str) and value in TENANT_ROLES:
        return value
    raise Unauthorized("unknown tenant role")
