"""The one boundary with httpx: the bearer credential, retries, and answers turned into
results or the exceptions of errors.py. Nothing here logs a header, and the credential's repr
is hidden, so the key cannot leak through a log line, a traceback or a debugger's view."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from sesami_client.errors import (
    ApiError,
    ConfigurationError,
    InvalidResponse,
    TransportError,
    error_class,
)
from sesami_client.retry import RetryPolicy, parse_retry_after, safe_to_repeat

log = logging.getLogger("sesami_client")

Params = list[tuple[str, str]]
SesamiClientFailure = ApiError | TransportError


class Secret:
    """A credential that never shows itself: repr and str are '<hidden>'."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ConfigurationError("the API key is empty")
        # A value a header cannot carry would make httpx raise an error that quotes it.
        if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
            raise ConfigurationError(
                "the API key contains characters an HTTP header cannot carry (spaces, line "
                "breaks or non-ASCII): check SESAMI_API_KEY"
            )
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not pickled")


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <key>` on each request (an API key `sk_...` or a Cognito ID
    token: SESami verifies either)."""

    def __init__(self, secret: Secret) -> None:
        self._secret = secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._secret.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: Any  # the decoded JSON, or the text for a non-JSON media type


def _now() -> datetime:
    return datetime.now(UTC)


class Requester:
    """Sends one call, retrying it within the policy. `sleep`, `now` and `draw` are injected so
    that tests count the waits instead of waiting."""

    def __init__(
        self,
        http: httpx.Client,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None],
        now: Callable[[], datetime] = _now,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.http = http
        self.policy = policy
        self._sleep = sleep
        self._now = now
        self._draw = draw

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        repeatable = safe_to_repeat(method, "Idempotency-Key" in (headers or {}))
        attempt = 0
        while True:
            attempt += 1
            failure: SesamiClientFailure
            try:
                response = self.http.request(
                    method,
                    path,
                    params=tuple(params or ()),  # a tuple: httpx's pair type is covariant there
                    json=json,
                    headers=dict(headers or {}),
                )
            except httpx.TransportError as exc:
                failure = TransportError(
                    f"{method} {path}: no answer from SESami ({type(exc).__name__}: {exc})"
                )
                failure.__cause__ = exc
                retry_after = None
            else:
                if response.is_success:
                    return Answer(response.status_code, response.headers, _decode(response))
                failure = self._error(method, path, response)
                if not failure.retryable:
                    raise failure
                retry_after = failure.retry_after
            wait = self.policy.delay(attempt, retry_after, self._draw()) if repeatable else None
            if wait is None:
                raise failure
            log.info(
                "%s %s: %s; retry %d of %d in %.2f s",
                method,
                path,
                _short(failure),
                attempt,
                self.policy.max_attempts - 1,
                wait,
            )
            self._sleep(wait)

    def _error(self, method: str, path: str, response: httpx.Response) -> ApiError:
        status = response.status_code
        code, message, details = f"http_{status}", response.reason_phrase or "error", None
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            code = error["code"]
            message = str(error.get("message") or message)
            details = error.get("details")
        elif isinstance(body, dict) and isinstance(body.get("message"), str):
            message = body["message"]  # API Gateway's own answers: {"message": "..."}
        elif response.text.strip():
            message = response.text.strip()[:200]
        return error_class(status)(
            status,
            code,
            message,
            details=details,
            retry_after=parse_retry_after(response.headers.get("retry-after"), self._now()),
            request_id=response.headers.get("x-amzn-requestid"),
            method=method,
            path=path,
        )


def _short(failure: SesamiClientFailure) -> str:
    if isinstance(failure, ApiError):
        return f"{failure.status} {failure.code}"
    return str(failure)


def _decode(response: httpx.Response) -> Any:
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            raise InvalidResponse(
                f"SESami answered {response.status_code} with a body that is not JSON",
                status=response.status_code,
            ) from None
    if media.startswith("text/csv"):
        return response.text
    raise InvalidResponse(
        f"expected JSON from SESami, got {media or 'no content type'} (is the URL SESami's?)",
        status=response.status_code,
    )
