"""API Gateway's authorizer for every private route: a Lambda TOKEN authorizer (declared with
Chalice in app.py, `@app.authorizer`) that lets a request reach the API function only with a
Cognito JWT or an API key, checked by the same code the app runs on every request
(tenants/auth.py TokenVerifier, tenants/api_keys.py ApiKeyService.verify).

- The answer is cached by API Gateway per Authorization value for `AUTHORIZER_TTL_SECONDS`
  (core/settings.py, at most 60 s), so it allows every route (`*`): a cached answer is reused
  for whatever route the same credential calls next.
- The gateway is the outer line, not the last: the app verifies every credential itself
  (invariant 5) and reads a key's item on every request, so a key revoked or a user removed a
  second ago is refused by the app while the gateway's cache still says yes. Revocation stays
  "at once" for SESami; what the cache can let through for up to a minute is an invocation of
  the API function that answers 401.
- A refusal raises `Exception("Unauthorized")`: the message API Gateway turns into a 401
  (its UNAUTHORIZED gateway response, in SESami's error shape). No reason is given and nothing
  of the credential is logged. A failure of a dependency (the JWKS, DynamoDB) is raised as it
  is: the gateway answers 503 (AUTHORIZER_FAILURE), and caches nothing.
- What it does not do: roles and permissions (the app's one check, core/api.py), team
  membership (a removed user's token passes here and is refused by the app), writes (its role
  may only GetItem one table).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import AuthRequest, AuthResponse

from chalicelib.core.errors import Unauthorized
from chalicelib.tenants.api_keys import presented_key


class Refused(Exception):
    """What API Gateway answers with a 401: a Lambda error whose message is `Unauthorized`."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def authorize(
    request: AuthRequest,
    *,
    verify_token: Callable[[str | None], Any],
    verify_key: Callable[[str], Any],
) -> AuthResponse:
    """Allow every route for a valid JWT or API key; raise Refused for anything else."""
    try:
        key = presented_key(request.token)
        if key is not None:
            item = verify_key(key)
            principal = f"key:{item.key_id}"
            context = {"credential": "api_key", "tenant_id": str(item.tenant_id)}
        else:
            claims = verify_token(request.token)
            principal = f"user:{claims.sub}"
            context = {"credential": "jwt"}
    except Unauthorized:
        raise Refused() from None
    return AuthResponse(routes=["*"], principal_id=principal, context=context)
