"""The one way SESami builds a Momento `CacheClient` (the credential cache's second level in
tenant_aws/momento.py, the quota counters in quotas/momento.py), and the one reading of a
Momento error that means "this cache does not exist".

Imported only where a Momento key or local endpoint is configured; grpc and momento load inside
the functions, so importing this module costs nothing (the ingest function never loads them).
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import TYPE_CHECKING

from chalicelib.core.errors import ConfigurationError

if TYPE_CHECKING:
    from momento import CacheClient


def cache_client(
    api_key: str | None,
    local_endpoint: str | None,
    timeout: timedelta,
    *,
    api_endpoint: str | None = None,
) -> CacheClient | None:
    """A sync `CacheClient`, or None when neither an API key nor a local endpoint is set.

    `local_endpoint` ("host:port", plaintext, the devstack server) wins over `api_key`. A v2
    API key needs `api_endpoint` (Momento's region endpoint); a legacy key carries its own.
    `timeout` is the client-side deadline of every call. No connection is opened here (the
    first call connects), so a cold start never waits on, nor fails because of, Momento.
    """
    if not api_key and not local_endpoint:
        return None
    from momento import CacheClient, Configurations, CredentialProvider

    if local_endpoint:
        host, port = split_endpoint(local_endpoint)
        provider = CredentialProvider.for_momento_local(host, port)
    elif api_endpoint:
        provider = CredentialProvider.from_api_key_v2(str(api_key), api_endpoint)
    else:
        with warnings.catch_warnings():
            # Deprecated in favour of v2 keys, still the only way to read a legacy key.
            warnings.simplefilter("ignore", DeprecationWarning)
            provider = CredentialProvider.from_string(str(api_key))
    configuration = Configurations.Lambda.latest().with_client_timeout(timeout)
    # The constructor, not CacheClient.create(): create() connects eagerly and raises when
    # Momento is unreachable (and in momento 1.29.1 fails outright with a zero timeout).
    return CacheClient(configuration, provider, default_ttl=timedelta(hours=1))


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not (port.isascii() and port.isdigit()):
        raise ConfigurationError(f"Momento local endpoint must be host:port, got {endpoint!r}")
    return host, int(port)


def is_missing_cache(response: object) -> bool:
    """Whether a Momento error response says the cache itself does not exist."""
    from momento.errors import MomentoErrorCode

    return getattr(response, "error_code", None) == MomentoErrorCode.NOT_FOUND_ERROR
