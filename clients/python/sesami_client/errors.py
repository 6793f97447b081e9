"""The client's exceptions. Every failure a caller can see is one of these; no httpx exception
escapes a method.

    SesamiClientError
    ├── ConfigurationError     no API key or base URL, or one a request cannot carry
    ├── TransportError         no answer from SESami (connection refused, timeout), after retries
    ├── InvalidResponse        an answer that is not SESami's (not JSON, wrong shape)
    ├── BatchTimeout           wait_for_batch gave up before the batch finished
    └── ApiError               SESami answered with an error: status, code, message, details
        ├── BadRequest             400  the message names the field
        ├── AuthenticationError    401  missing, expired or revoked key or token
        ├── PermissionDenied       403  the key's scope or the user's role does not allow it
        ├── NotFound               404
        ├── Conflict               409  e.g. idempotency_key_reused, account_not_connected
        ├── Unprocessable          422  SES or the customer's role refused
        ├── RateLimited            429  retry_after says when to try again
        ├── ServiceUnavailable     503  a service SESami depends on is down
        └── ServerError            other 5xx

`ApiError.retryable` tells whether the same call may succeed later (429, 502, 503, 504, and a 409
`idempotency_key_in_use`: the first attempt with that key is still being served). The client has
already retried those within its policy before raising.
"""

from __future__ import annotations

from typing import Any

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# A second request with a key whose first request is still in flight: it will replay soon.
KEY_IN_USE = "idempotency_key_in_use"


class SesamiClientError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(SesamiClientError):
    """The client cannot be built as asked (missing API key or URL, or a malformed one)."""


class TransportError(SesamiClientError):
    """The request got no HTTP answer: connection refused, DNS, TLS, timeout."""


class InvalidResponse(SesamiClientError):
    """An answer that is not one SESami gives (e.g. an HTML page from a wrong URL)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BatchTimeout(SesamiClientError):
    """A bulk batch did not finish in time. `batch` is the last state seen."""

    def __init__(self, message: str, *, batch: Any) -> None:
        super().__init__(message)
        self.batch = batch


class ApiError(SesamiClientError):
    """SESami refused or failed the request. The attributes come from its error body
    `{"error": {"code", "message", "details"}}`; `request_id` is API Gateway's, when present."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after
        self.request_id = request_id
        self.method = method
        self.path = path

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES or (self.status == 409 and self.code == KEY_IN_USE)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r})"


class BadRequest(ApiError):
    pass


class AuthenticationError(ApiError):
    pass


class PermissionDenied(ApiError):
    pass


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Unprocessable(ApiError):
    pass


class RateLimited(ApiError):
    pass


class ServiceUnavailable(ApiError):
    pass


class ServerError(ApiError):
    pass


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status: int) -> type[ApiError]:
    if status in BY_STATUS:
        return BY_STATUS[status]
    return ServerError if status >= 500 else ApiError
