"""SESami's own exceptions. Adapters translate vendor errors into these; nothing above the
adapters catches a botocore or PynamoDB exception by name.

    SesamiError
    ├── MalformedEvent        an ingested event that can never be stored (kept in quarantine)
    ├── ConfigurationError    a setting is missing or has the wrong shape
    ├── StorageError          the store refused or failed a write
    │   ├── TransientStorageError   throttling, timeouts, 5xx: raise so the caller retries
    │   └── ConcurrentUpdate        an optimistic write lost a race; re-read and try again
    ├── CacheUnavailable      the credential cache (Momento) failed or timed out: fall back to STS
    ├── ApiNotAvailable       the AWS endpoint does not implement an API (an emulator such as moto)
    └── RequestError          the caller's request cannot be served; each maps to an HTTP status
        ├── InvalidRequest    400: bad input (names the field)
        ├── Unauthorized      401: missing or invalid token
        ├── Forbidden         403: authenticated, not allowed
        ├── NotFound          404
        ├── Conflict          409: e.g. an AWS account already bound to another tenant
        ├── Gone              410: e.g. a tenant being deleted
        ├── RoleAccessDenied  422: SESami cannot assume (or must not use) the customer's role
        ├── TooManyRequests   429: slow down (a quota, the user pool's sign-in limits); with
        │                     `retry_after`, answered with a Retry-After header
        └── ServiceUnavailable 503: a service SESami depends on is down (e.g. the pool's JWKS)
"""

from __future__ import annotations


class SesamiError(Exception):
    """Base class of every error SESami raises on purpose."""


class MalformedEvent(SesamiError):
    """The event can never be stored as it is. `reason` names the problem for the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigurationError(SesamiError):
    """A setting is missing or malformed."""


class StorageError(SesamiError):
    """The store failed a write."""


class TransientStorageError(StorageError):
    """A failure that a retry can cure (throttling, timeouts). Ingest lets it propagate so that
    Lambda/EventBridge retry the event and, past the retry budget, the DLQ keeps it."""


class ConcurrentUpdate(StorageError):
    """An optimistic (versioned) write lost a race with another writer."""


class CacheUnavailable(SesamiError):
    """The second-level credential cache failed or timed out. Callers fall back to STS."""


class ApiNotAvailable(SesamiError):
    """The AWS endpoint does not implement the API (an emulator such as moto): reported as such,
    never as a success."""


class RequestError(SesamiError):
    """An error the API reports to its caller. `code` is stable and machine-readable."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(RequestError):
    status, code = 400, "invalid_request"


class Unauthorized(RequestError):
    status, code = 401, "unauthorized"


class Forbidden(RequestError):
    status, code = 403, "forbidden"


class NotFound(RequestError):
    status, code = 404, "not_found"


class Conflict(RequestError):
    status, code = 409, "conflict"


class Gone(RequestError):
    status, code = 410, "gone"


class RoleAccessDenied(RequestError):
    status, code = 422, "role_access_denied"


class TooManyRequests(RequestError):
    status, code = 429, "too_many_requests"

    def __init__(
        self, message: str, *, details: object = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after  # seconds; the response's Retry-After header


class ServiceUnavailable(RequestError):
    status, code = 503, "service_unavailable"
