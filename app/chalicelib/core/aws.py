"""The one way SESami builds AWS clients, and the one reading of AWS errors.

    client(service, region=..., endpoint=..., credentials=...)   every boto3 client SESami makes
    failure(exc) -> Failure(kind, code, status, message)          what an AWS error means

One retry policy for every client: botocore's standard mode, `MAX_ATTEMPTS` retries (botocore's
legacy-named `max_attempts` counts retries), which retries throttling, 5xx, timeouts and dropped
connections with jittered backoff. What still fails after that is classified here, once:

    THROTTLED        the service asked us to slow down (after retries)
    TRANSIENT        5xx, timeouts, no connection (after retries)
    NOT_IMPLEMENTED  the endpoint lacks the API: an emulator (moto answers a bare 404 page)
    ACCESS_DENIED    IAM refused the call (a missing permission in a role's policy)
    NOT_FOUND        the resource the call names does not exist
    REFUSED          any other client error: the request itself was refused

Callers map a kind to SESami's own errors (errors.py); nothing above the adapters reads a
botocore error code. boto3 is imported on first use only: importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Credentials(Protocol):
    """Assumed-role credentials (chalicelib.tenant_aws.credentials.AwsCredentials)."""

    def boto3_kwargs(self) -> dict[str, str]: ...


MAX_ATTEMPTS = 4
RETRIES = {"mode": "standard", "max_attempts": MAX_ATTEMPTS}


class Kind(StrEnum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    NOT_IMPLEMENTED = "not_implemented"
    ACCESS_DENIED = "access_denied"
    NOT_FOUND = "not_found"
    REFUSED = "refused"


THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "LimitExceededException.Throttling",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServiceErrorException",
        "RequestTimeout",
        "RequestTimeoutException",
        "IDPCommunicationError",
    }
)
# How an endpoint answers an API it lacks (moto: a bare HTTP 404 page, whose code is "404").
NOT_IMPLEMENTED_CODES = frozenset({"404", "NotImplemented", "UnknownOperation", "InvalidAction"})
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
)
NOT_FOUND_CODES = frozenset({"NotFoundException", "ResourceNotFoundException", "NoSuchEntity"})


@dataclass(frozen=True)
class Failure:
    kind: Kind
    code: str  # the AWS error code, or the botocore exception's name
    status: int  # HTTP status, 0 without a response
    message: str

    @property
    def retryable(self) -> bool:
        return self.kind in (Kind.THROTTLED, Kind.TRANSIENT)


def errors() -> tuple[type[Exception], ...]:
    """The exceptions an AWS call can raise, for `except aws.errors():` clauses."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def failure(exc: BaseException) -> Failure | None:
    """What an exception from an AWS call means; None if it is not an AWS error at all."""
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = str(error.get("Message", "")) or str(exc)
        return Failure(_kind(code, status, message), code or str(status), status, message)
    if isinstance(exc, ParamValidationError):  # botocore refused the request before sending it
        return Failure(Kind.REFUSED, "ParamValidationError", 0, str(exc))
    if isinstance(exc, BotoCoreError):  # no connection, read timeout: after retries
        return Failure(Kind.TRANSIENT, type(exc).__name__, 0, str(exc))
    if isinstance(exc, NotImplementedError) or "not yet implemented" in str(exc):
        return Failure(Kind.NOT_IMPLEMENTED, "NotImplemented", 0, str(exc))
    return None


def _kind(code: str, status: int, message: str) -> Kind:
    if code in THROTTLING_CODES:
        return Kind.THROTTLED
    if code in NOT_IMPLEMENTED_CODES or "not yet implemented" in message:
        return Kind.NOT_IMPLEMENTED
    if code in TRANSIENT_CODES or status >= 500:
        return Kind.TRANSIENT
    if code in ACCESS_DENIED_CODES:
        return Kind.ACCESS_DENIED
    if code in NOT_FOUND_CODES:
        return Kind.NOT_FOUND
    return Kind.REFUSED


def client(
    service: str,
    *,
    region: str,
    endpoint: str | None = None,
    credentials: Credentials | None = None,
    config: Mapping[str, Any] | None = None,
) -> Any:
    """A boto3 client with SESami's retry policy: SESami's own account (credentials None) or a
    tenant's (assumed-role credentials). `endpoint` is moto's server on the local stack.
    `config`: botocore Config options over SESami's (short timeouts where a caller must not
    wait, fewer retries)."""
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = dict(credentials.boto3_kwargs()) if credentials else {}
    options: dict[str, Any] = {"retries": dict(RETRIES), **(config or {})}
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        config=Config(**options),
        **kwargs,
    )
