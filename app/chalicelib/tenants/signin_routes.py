"""Sign-up, sign-in, sign-out, MFA and password reset for the dashboard: public routes in front
of the user pool's own public API (see chalicelib.tenants.signin). Nothing here needs a token
except sign-out and the authenticator-app setup, which act on the access token they are given.

The refresh token never reaches the page's scripts: routes that sign in set it as an HttpOnly,
SameSite=Strict cookie (`sesami_refresh`, Secure except on plain-HTTP loopback, the local
stack) and answer `refresh_token: null`; `POST /auth/refresh` reads the cookie when the body
carries none (API clients may still pass one), and sign-out clears it."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Response

from chalicelib.core import wiring
from chalicelib.core.api import JSON, Api, RequestContext
from chalicelib.core.errors import InvalidRequest

# Anonymous: counted per source address (quotas: auth_per_ip_per_minute).
api = Api(__name__, wiring.authenticate, per_ip="auth")

_STR = {"type": "string"}
_EMAIL = {"type": "string", "maxLength": 254, "example": "ada@example.com"}
_PASSWORD = {"type": "string", "minLength": 1, "maxLength": 256}
_CODE = {"type": "string", "minLength": 1, "maxLength": 16, "example": "123456"}
_AUTH_ERRORS = (400, 401, 403, 429, 503)


def _body(*required: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "additionalProperties": False,
        "properties": properties,
    }


# Every field of every body is required; a field not declared is refused (`_json`).
CREDENTIALS = _body("email", "password", email=_EMAIL, password=_PASSWORD)
CONFIRMATION = _body("email", "code", email=_EMAIL, code=_CODE)
EMAIL_ONLY = _body("email", email=_EMAIL)
NEW_PASSWORD = _body("email", "session", "password", email=_EMAIL, session=_STR, password=_PASSWORD)
REFRESH = {
    "type": "object",
    "additionalProperties": False,
    "description": "empty: the refresh token comes from the sesami_refresh cookie",
    "properties": {"refresh_token": _STR},
}
MFA_CODE = _body("email", "session", "code", email=_EMAIL, session=_STR, code=_CODE)
MFA_SETUP = _body("access_token", access_token=_STR)
MFA_VERIFY = _body("access_token", "code", access_token=_STR, code=_CODE)
REFRESH_COOKIE = "sesami_refresh"
REFRESH_COOKIE_SECONDS = 30 * 86_400  # the app client's refresh token validity
SIGN_OUT = _body("access_token", access_token=_STR)
RESET = _body("email", "code", "password", email=_EMAIL, code=_CODE, password=_PASSWORD)

TOKENS = {
    "type": "object",
    "description": "tokens, or a challenge to answer (NEW_PASSWORD_REQUIRED for invited users)",
    "properties": {
        "id_token": _STR,
        "access_token": _STR,
        "refresh_token": {"type": "string", "nullable": True},
        "expires_in": {"type": "integer"},
        "token_type": _STR,
        "challenge": _STR,
        "session": _STR,
    },
}
CODE_SENT = {
    "type": "object",
    "properties": {
        "email": _STR,
        "confirmed": {"type": "boolean"},
        "code_sent_to": {"type": "string", "nullable": True},
    },
}


def _cookie(ctx: RequestContext, value: str, max_age: int) -> str:
    host = str(ctx.request.headers.get("host") or "").split(":")[0]
    proto = str(ctx.request.headers.get("x-forwarded-proto") or "")
    loopback_http = host in ("127.0.0.1", "localhost", "[::1]") and proto != "https"
    secure = "" if loopback_http else "; Secure"
    return f"{REFRESH_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"


def _tokens(ctx: RequestContext, result: dict[str, Any]) -> Response:
    """Tokens to the page, the refresh token in its cookie only."""
    headers: dict[str, str | list[str]] = dict(JSON)
    refresh_token = result.get("refresh_token")
    if refresh_token:
        headers["Set-Cookie"] = _cookie(ctx, str(refresh_token), REFRESH_COOKIE_SECONDS)
        result = {**result, "refresh_token": None}
    return Response(body=json.dumps(result), status_code=200, headers=headers)


def _refresh_cookie(ctx: RequestContext) -> str | None:
    for part in str(ctx.request.headers.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == REFRESH_COOKIE and value:
            return value
    return None


def _json(ctx: RequestContext, schema: dict[str, Any], *, optional: bool = False) -> dict[str, Any]:
    """The body, refusing fields the route's declared schema does not take."""
    body = ctx.json_body() if ctx.request.raw_body or not optional else {}
    fields = list(schema["properties"])
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidRequest(
            f"unknown field {unknown[0]!r}: this route takes {', '.join(fields)}",
            details={"field": unknown[0]},
        )
    return body


def _text(body: dict[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} is required", details={"field": name})
    if len(value) > limit:
        raise InvalidRequest(f"{name} is longer than {limit} characters", details={"field": name})
    return value


def _email(body: dict[str, Any], *, validate: bool = False) -> str:
    email = _text(body, "email", 254).strip()
    if validate:
        from email_validator import EmailNotValidError, validate_email

        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise InvalidRequest(
                f"email is not an email address: {exc}", details={"field": "email"}
            ) from None
    return email.lower()


def _password(body: dict[str, Any], name: str = "password") -> str:
    return _text(body, name, 256)


def _code(body: dict[str, Any]) -> str:
    return _text(body, "code", 16).strip()


@api.route(
    "/auth/sign-up",
    methods=["POST"],
    summary="Create an account; a confirmation code is emailed (then POST /auth/confirm)",
    public=True,
    body=CREDENTIALS,
    response=CODE_SENT,
    errors=(400, 409, 429, 503),
)
def sign_up(ctx: RequestContext) -> dict[str, Any]:
    body = _json(ctx, CREDENTIALS)
    return wiring.signin().sign_up(_email(body, validate=True), _password(body))


@api.route(
    "/auth/confirm",
    methods=["POST"],
    summary="Confirm a new account with the emailed code",
    public=True,
    body=CONFIRMATION,
    response=CODE_SENT,
    errors=_AUTH_ERRORS,
)
def confirm(ctx: RequestContext) -> dict[str, Any]:
    body = _json(ctx, CONFIRMATION)
    return wiring.signin().confirm(_email(body), _code(body))


@api.route(
    "/auth/resend-code",
    methods=["POST"],
    summary="Email a new confirmation code",
    public=True,
    body=EMAIL_ONLY,
    response=CODE_SENT,
    errors=_AUTH_ERRORS,
)
def resend_code(ctx: RequestContext) -> dict[str, Any]:
    return wiring.signin().resend_code(_email(_json(ctx, EMAIL_ONLY)))


@api.route(
    "/auth/sign-in",
    methods=["POST"],
    summary="Sign in with email and password: tokens, or a challenge to answer "
    "(NEW_PASSWORD_REQUIRED for invitees, SOFTWARE_TOKEN_MFA with an authenticator app)",
    public=True,
    body=CREDENTIALS,
    response=TOKENS,
    errors=_AUTH_ERRORS,
)
def sign_in(ctx: RequestContext) -> Response:
    body = _json(ctx, CREDENTIALS)
    return _tokens(ctx, wiring.signin().sign_in(_email(body), _password(body)))


@api.route(
    "/auth/new-password",
    methods=["POST"],
    summary="Choose a password on first sign-in (answers NEW_PASSWORD_REQUIRED)",
    public=True,
    body=NEW_PASSWORD,
    response=TOKENS,
    errors=_AUTH_ERRORS,
)
def new_password(ctx: RequestContext) -> Response:
    body = _json(ctx, NEW_PASSWORD)
    result = wiring.signin().new_password(
        _email(body), _text(body, "session", 4096), _password(body)
    )
    return _tokens(ctx, result)


@api.route(
    "/auth/mfa-code",
    methods=["POST"],
    summary="Answer SOFTWARE_TOKEN_MFA with the authenticator app's code",
    public=True,
    body=MFA_CODE,
    response=TOKENS,
    errors=_AUTH_ERRORS,
)
def mfa_code(ctx: RequestContext) -> Response:
    body = _json(ctx, MFA_CODE)
    result = wiring.signin().mfa_code(_email(body), _text(body, "session", 4096), _code(body))
    return _tokens(ctx, result)


@api.route(
    "/auth/mfa/setup",
    methods=["POST"],
    summary="Start adding an authenticator app (TOTP): its secret and otpauth URI",
    public=True,
    body=MFA_SETUP,
    response={"type": "object", "properties": {"secret_code": _STR, "otpauth_uri": _STR}},
    errors=_AUTH_ERRORS,
)
def mfa_setup(ctx: RequestContext) -> dict[str, Any]:
    return wiring.signin().mfa_setup(_text(_json(ctx, MFA_SETUP), "access_token", 8192))


@api.route(
    "/auth/mfa/verify",
    methods=["POST"],
    summary="Finish adding the authenticator app with one of its codes; it becomes your MFA",
    public=True,
    body=MFA_VERIFY,
    response={"type": "object", "properties": {"mfa": _STR, "enabled": {"type": "boolean"}}},
    errors=_AUTH_ERRORS,
)
def mfa_verify(ctx: RequestContext) -> dict[str, Any]:
    body = _json(ctx, MFA_VERIFY)
    return wiring.signin().mfa_verify(_text(body, "access_token", 8192), _code(body))


@api.route(
    "/auth/refresh",
    methods=["POST"],
    summary="New id and access tokens from a refresh token (the body's, else the cookie's)",
    public=True,
    body=REFRESH,
    response=TOKENS,
    errors=_AUTH_ERRORS,
)
def refresh(ctx: RequestContext) -> dict[str, Any]:
    body = _json(ctx, REFRESH, optional=True)
    if "refresh_token" not in body:
        cookie = _refresh_cookie(ctx)
        if cookie is None:
            raise InvalidRequest(
                "give refresh_token, or sign in first (the sesami_refresh cookie is missing)",
                details={"field": "refresh_token"},
            )
        body = {"refresh_token": cookie}
    result = wiring.signin().refresh(_text(body, "refresh_token", 8192))
    return {**result, "refresh_token": None}


@api.route(
    "/auth/sign-out",
    methods=["POST"],
    summary="Sign out everywhere: revokes the user's refresh tokens",
    public=True,
    body=SIGN_OUT,
    response={"type": "object", "properties": {"signed_out": {"type": "boolean"}}},
    errors=_AUTH_ERRORS,
)
def sign_out(ctx: RequestContext) -> Response:
    result = wiring.signin().sign_out(_text(_json(ctx, SIGN_OUT), "access_token", 8192))
    headers: dict[str, str | list[str]] = {**JSON, "Set-Cookie": _cookie(ctx, "", 0)}
    return Response(body=json.dumps(result), status_code=200, headers=headers)


@api.route(
    "/auth/forgot-password",
    methods=["POST"],
    summary="Email a code to reset the password (then POST /auth/reset-password)",
    public=True,
    body=EMAIL_ONLY,
    response=CODE_SENT,
    errors=_AUTH_ERRORS,
)
def forgot_password(ctx: RequestContext) -> dict[str, Any]:
    return wiring.signin().forgot_password(_email(_json(ctx, EMAIL_ONLY)))


@api.route(
    "/auth/reset-password",
    methods=["POST"],
    summary="Set a new password with the emailed code",
    public=True,
    body=RESET,
    response={"type": "object", "properties": {"email": _STR, "reset": {"type": "boolean"}}},
    errors=_AUTH_ERRORS,
)
def reset_password(ctx: RequestContext) -> dict[str, Any]:
    body = _json(ctx, RESET)
    return wiring.signin().reset_password(_email(body), _code(body), _password(body))
