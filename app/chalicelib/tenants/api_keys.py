"""API keys: credentials SESami issues to programs (invariants 9 and 10).

    sk_<key id>_<secret>      e.g. sk_3f9c0a1b2c3d4e5f_Jm1x...  (63 characters)

- `key id`: 16 hex characters (64 random bits). Public: `sk_<key id>` is the key's prefix, which
  names it in lists, histories and the dashboard, and the ID is the key of its item
  (core/keys.api_key_pk), so a presented key is checked with one DynamoDB GetItem, which also
  says whose it is: no scan, no tenant needed beforehand.
- `secret`: 43 base64url characters, 256 bits from `secrets`. Shown once, in the answer that
  creates the key; never stored, logged or shown again.
- Stored: SHA-256 of the whole key, bound to its tenant (`digest`). No slow hash: bcrypt, scrypt
  or Argon2 make guessing a *low-entropy* secret (a password) expensive; nobody can enumerate
  2^256 secrets whatever each guess costs, so a slow hash would add tens of milliseconds or
  more (by design) to every request and no security. No HMAC with a server key either: a
  pepper protects only guessable secrets, and it would put a secret in the gateway
  authorizer's environment (an SSM read, a wider role).
  The tenant in the digest's input makes an item copied or moved to another tenant worthless.
- Verification (`verify`, the same for the app and the gateway's authorizer): the shape is
  checked first (exact length, then the charset: nothing longer is ever parsed), then one
  consistent GetItem by ID, a constant-time comparison of digests, then revocation and expiry.
  Every refusal is a 401 with a fixed message: `malformed token` (as for a malformed JWT) for a
  wrong shape, and one `REFUSED` for an unknown ID, a wrong secret, a revoked or expired key, a
  key of another tenant or of a tenant that no longer exists, so that probing a key ID learns
  nothing. No part of a presented key is ever echoed or logged.
- Revocation is at once: the app reads the key's item on every request (consistent read), so
  the request after `DELETE /api-keys/{id}` is a 401 (API Gateway's authorizer caches its answer
  for a minute at most, but it is not the last line: the app checks every request itself).
- `last_used_at` is written at most once a minute per key (a conditional write, so also across
  instances): never one write per request.
- A key acts with its scope's role (core/permissions.py SCOPES), whoever created it: a person's
  role caps what they may do, a key's scope what a program may do. Creating, listing and
  revoking keys needs the `admin` permission.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import Conflict, InvalidRequest, NotFound, Unauthorized
from chalicelib.core.permissions import SCOPES
from chalicelib.core.tables import ApiKeyModel
from chalicelib.tenants.key_store import KeyStore
from chalicelib.tenants.membership import Membership

log = logging.getLogger("sesami.tenants")

PREFIX = "sk_"
ID_HEX = 16
SECRET_CHARS = 43  # secrets.token_urlsafe(32)
KEY_LENGTH = len(PREFIX) + ID_HEX + 1 + SECRET_CHARS
_KEY = re.compile(rf"sk_([0-9a-f]{{{ID_HEX}}})_[A-Za-z0-9_-]{{{SECRET_CHARS}}}")
_ID = re.compile(rf"(?:sk_)?([0-9a-f]{{{ID_HEX}}})")
# An Authorization header longer than this is not looked at (a Cognito JWT is a few KB).
MAX_HEADER = 16_400

MALFORMED = "malformed token"
REFUSED = "unknown, expired or revoked key"

TOUCH_EVERY = timedelta(minutes=1)
KEEP_REVOKED = timedelta(days=30)  # revoked and expired keys stay listed this long
MAX_LIVE_KEYS = 50  # per tenant (invariant 11)
MAX_LIFETIME = timedelta(days=3 * 366)
MAX_NAME = 64


def presented_key(authorization: str | None) -> str | None:
    """The API key an Authorization header carries (`Bearer sk_...` or a bare `sk_...`), or
    None when it carries something else (a JWT, or nothing): what tells a key from a token.
    Only the first characters are looked at; the key's shape is checked by `verify`."""
    value = authorization or ""
    if len(value) > MAX_HEADER:
        return None  # the token path refuses it as malformed, unparsed
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    return value if value.startswith(PREFIX) else None


def digest(tenant_id: str, key: str) -> str:
    """What is stored of a key: SHA-256 over the tenant and the whole key (see the docstring)."""
    return hashlib.sha256(f"sesami-api-key\x00{tenant_id}\x00{key}".encode()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ApiKeyService:
    def __init__(
        self, store: KeyStore | None = None, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._store = store or KeyStore()
        self._clock = clock

    # ------------------------------------------------------------------ checking a key

    def verify(self, key: str) -> ApiKeyModel:
        """The key's item if `key` is a live key; Unauthorized otherwise (see the docstring)."""
        if len(key) != KEY_LENGTH or not key.isascii():
            raise Unauthorized(MALFORMED)
        match = _KEY.fullmatch(key)
        if match is None:
            raise Unauthorized(MALFORMED)
        item = self._store.get(match.group(1))
        if item is None or not hmac.compare_digest(item.secret_hash, digest(item.tenant_id, key)):
            raise Unauthorized(REFUSED)
        if item.revoked_at is not None or self._expired(item):
            raise Unauthorized(REFUSED)
        if item.scope not in SCOPES:  # fail closed on anything SESami did not write
            raise Unauthorized(REFUSED)
        return item

    def membership(self, key: str) -> Membership:
        """The tenant and role a program calls with: the key's tenant and its scope's role."""
        item = self.verify(key)
        tenant = self._store.tenant(item.tenant_id)
        if tenant is None:
            raise Unauthorized(REFUSED)
        self._touch(item)
        return Membership(tenant, SCOPES[item.scope], key_name=f"{item.name} ({_prefix(item)})")

    def _touch(self, item: ApiKeyModel) -> None:
        now = self._clock()
        last = item.last_used_at
        if last is not None and now - _as_utc(last) < TOUCH_EVERY:
            return
        try:
            self._store.touch(item, now, TOUCH_EVERY)
        except Exception:  # when a key was last used is a nicety: never fail a request for it
            log.warning("could not record the use of api key %s", _prefix(item))

    def _expired(self, item: ApiKeyModel) -> bool:
        return item.valid_until is not None and _as_utc(item.valid_until) <= self._clock()

    # ------------------------------------------------------------------ managing keys

    def create(
        self, membership: Membership, name: object, scope: object, expires_at: object = None
    ) -> dict[str, Any]:
        """A new key: the only answer that ever carries it."""
        chosen_name, chosen_scope = _name(name), _scope(scope)
        now = self._clock()
        valid_until = _expiry(expires_at, now)
        tenant_id = membership.tenant.tenant_id
        live = [k for k in self._store.of_tenant(tenant_id) if _status(k, now) == "active"]
        if len(live) >= MAX_LIVE_KEYS:
            raise Conflict(
                f"this team has {MAX_LIVE_KEYS} live API keys, the most it may have: revoke one",
                details={"limit": MAX_LIVE_KEYS},
            )
        for _ in range(3):
            key_id = secrets.token_hex(ID_HEX // 2)
            key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
            item = ApiKeyModel(
                keys.api_key_pk(key_id),
                key_id=key_id,
                tenant_id=tenant_id,
                name=chosen_name,
                scope=chosen_scope,
                secret_hash=digest(tenant_id, key),
                created_at=now,
                created_by=membership.actor,
                valid_until=valid_until,
                expires_at=valid_until + KEEP_REVOKED if valid_until else None,
            )
            if self._store.add(item):
                return {
                    **view(item, now),
                    "key": key,
                    "warning": "Store this key now: SESami keeps only a hash of it and cannot "
                    "show it again.",
                }
        raise Conflict("could not allocate a key ID; try again")  # pragma: no cover

    def list_keys(self, membership: Membership) -> dict[str, Any]:
        now = self._clock()
        items = sorted(
            self._store.of_tenant(membership.tenant.tenant_id),
            key=lambda k: k.created_at,
            reverse=True,
        )
        return {"keys": [view(k, now) for k in items]}

    def live_keys_by(self, membership: Membership, creator: str) -> list[dict[str, Any]]:
        """The tenant's active keys `creator` made (removing a person does not revoke them)."""
        listed = self.list_keys(membership)["keys"]
        return [k for k in listed if k["created_by"] == creator and k["status"] == "active"]

    def revoke(self, membership: Membership, key_id: str) -> dict[str, Any]:
        """Revoke at once; revoking a revoked key changes nothing. Another tenant's: 404."""
        match = _ID.fullmatch(key_id)
        item = self._store.get(match.group(1)) if match else None
        if item is None or item.tenant_id != membership.tenant.tenant_id:
            # Nothing of the path is echoed: a whole key pasted there must not come back.
            raise NotFound("no such API key in this team (give its ID or its sk_<id> prefix)")
        now = self._clock()
        if item.revoked_at is None and self._store.revoke(
            item, now, membership.actor, now + KEEP_REVOKED
        ):
            item.revoked_at, item.revoked_by = now, membership.actor
        else:
            item = self._store.get(item.key_id) or item
        return view(item, now)


def _prefix(item: ApiKeyModel) -> str:
    return f"{PREFIX}{item.key_id}"


def _status(item: ApiKeyModel, now: datetime) -> str:
    if item.revoked_at is not None:
        return "revoked"
    if item.valid_until is not None and _as_utc(item.valid_until) <= now:
        return "expired"
    return "active"


def _iso(value: datetime | None) -> str | None:
    return _as_utc(value).isoformat() if value is not None else None


def view(item: ApiKeyModel, now: datetime) -> dict[str, Any]:
    """What anyone is ever shown of a stored key: never its secret nor its hash."""
    return {
        "id": item.key_id,
        "prefix": _prefix(item),
        "name": item.name,
        "scope": item.scope,
        "status": _status(item, now),
        "created_by": item.created_by,
        "created_at": _iso(item.created_at),
        "expires_at": _iso(item.valid_until),
        "last_used_at": _iso(item.last_used_at),
        "revoked_at": _iso(item.revoked_at),
        "revoked_by": item.revoked_by,
    }


def _name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRequest("name must be a non-empty string", details={"field": "name"})
    name = raw.strip()
    if len(name) > MAX_NAME or not name.isprintable():
        raise InvalidRequest(
            f"name must be at most {MAX_NAME} printable characters", details={"field": "name"}
        )
    return name


def _scope(raw: object) -> str:
    if not isinstance(raw, str) or raw not in SCOPES:
        raise InvalidRequest(
            f"scope must be one of {', '.join(SCOPES)}", details={"field": "scope"}
        )
    return raw


def _expiry(raw: object, now: datetime) -> datetime | None:
    if raw is None:
        return None
    problem = InvalidRequest(
        "expires_at must be an ISO 8601 date or time in the future, at most 3 years ahead",
        details={"field": "expires_at"},
    )
    if not isinstance(raw, str) or len(raw) > 40:
        raise problem
    try:
        value = _as_utc(datetime.fromisoformat(raw.strip()))
    except ValueError:
        raise problem from None
    if value <= now or value > now + MAX_LIFETIME:
        raise problem
    return value
