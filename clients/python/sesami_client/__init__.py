"""A Python client and command line (`sesami`) for SESami's REST API."""

from sesami_client._version import __version__
from sesami_client.client import Client
from sesami_client.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    BatchTimeout,
    ConfigurationError,
    Conflict,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    SesamiClientError,
    TransportError,
    Unprocessable,
)
from sesami_client.retry import RetryPolicy
from sesami_client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequest",
    "BatchTimeout",
    "Client",
    "ConfigurationError",
    "Conflict",
    "InvalidResponse",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "SesamiClientError",
    "TransportError",
    "Unprocessable",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
