"""Signed, opaque tokens: pagination cursors and unsubscribe links.

A token is `base64url(payload JSON) . base64url(HMAC-SHA256(key, purpose | payload))`. The purpose
is part of what is signed, so a cursor can never be used as an unsubscribe token or the other way
round, and a cursor binds the tenant (and the query it continues): another tenant's or a tampered
token fails verification and is a 400 (invariant 6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from chalicelib.core.errors import InvalidRequest

MAX_TOKEN = 4_096


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("signing key must be at least 32 bytes")
        self._key = key

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"|" + payload, hashlib.sha256).digest()

    def sign(self, purpose: str, data: dict[str, Any]) -> str:
        payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._mac(purpose, payload))}"

    def verify(self, purpose: str, token: str, *, field: str = "token") -> dict[str, Any]:
        """The token's data, or InvalidRequest naming `field` (never why, to give no oracle)."""
        bad = InvalidRequest(f"{field} is not a valid token", details={"field": field})
        if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise bad
        body, mac = token.split(".")
        try:
            payload, given = _unb64(body), _unb64(mac)
        except ValueError:
            raise bad from None
        if not hmac.compare_digest(given, self._mac(purpose, payload)):
            raise bad
        try:
            data = json.loads(payload)
        except ValueError:
            raise bad from None
        if not isinstance(data, dict):
            raise bad
        return data
