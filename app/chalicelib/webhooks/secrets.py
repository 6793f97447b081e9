"""Endpoint signing secrets (invariant 10) and the Standard Webhooks signature.

A secret is `whsec_` + base64 of 32 random bytes (the Standard Webhooks form). SESami must sign
with it on every delivery, so it cannot be kept as a hash: it is stored sealed with AES-256-GCM
under `SESAMI_WEBHOOK_KEY` (settings; an SSM SecureString in production), with the tenant, the
endpoint and the secret's own ID as associated data, so a sealed secret copied to another
endpoint or tenant does not open. It is shown once, when created or rotated, and never logged
(`Secret.__repr__` hides it).

Signing uses the `standardwebhooks` package (the reference implementation the receivers verify
with): `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`. During a rotation's
overlap both the new and the old secret sign: `webhook-signature` carries both, space-separated,
and a receiver holding either one verifies the message.
"""

from __future__ import annotations

import base64
import os
import secrets as random
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from standardwebhooks.webhooks import Webhook

from chalicelib.core.errors import ConfigurationError

PREFIX = "whsec_"
SECRET_BYTES = 32
_NONCE = 12


@dataclass(frozen=True)
class Secret:
    value: str

    def __repr__(self) -> str:
        return "Secret(<hidden>)"


def new_secret() -> Secret:
    return Secret(PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode())


def new_secret_id() -> str:
    return random.token_hex(6)


class SecretBox:
    """Seals and opens secrets with the webhook key (AES-256-GCM, random 96-bit nonces)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigurationError("SESAMI_WEBHOOK_KEY is required (32 bytes, hex) for webhooks")
        self._aead = AESGCM(key)

    def seal(self, secret: Secret, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._aead.encrypt(nonce, secret.value.encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: str) -> Secret:
        raw = base64.b64decode(sealed)
        return Secret(self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode())


def context(tenant_id: str, endpoint_id: str, secret_id: str) -> str:
    """Associated data: the secret belongs to this tenant, endpoint and secret ID only."""
    return f"sesami-webhook-secret\x1f{tenant_id}\x1f{endpoint_id}\x1f{secret_id}"


def sign(signing: list[Secret], webhook_id: str, at: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers; one `v1,` signature per secret in use."""
    if not signing:
        raise ValueError("an endpoint always has a current secret")
    signature = " ".join(Webhook(s.value).sign(webhook_id, at, body) for s in signing)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
