"""The credential cache's second level on Momento (`CredentialCache` of credentials.py), through
the SDK's sync `CacheClient`. Imported only when a Momento key or local endpoint is configured:
the ingest function never loads grpc or momento."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from chalicelib.core.errors import CacheUnavailable, ConfigurationError
from chalicelib.core.momento import cache_client

if TYPE_CHECKING:
    from momento import CacheClient
    from momento.responses.mixins import ErrorResponseMixin

logger = logging.getLogger("sesami.credentials")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class MomentoCredentialCache:
    """`CredentialCache` on a Momento cache, through the SDK's sync `CacheClient`.

    The SDK answers with Hit/Miss/Error values rather than exceptions; any Error (timeout,
    unavailable, auth...) becomes `CacheUnavailable`. A cache that does not exist is created on
    demand when `create_missing_cache` is set (the local server); in AWS the operator creates
    it, and a missing cache is reported as unavailable.
    """

    def __init__(
        self, client: CacheClient, cache_name: str, *, create_missing_cache: bool = False
    ) -> None:
        if not cache_name:
            raise ConfigurationError("the Momento cache name must not be empty")
        self._client = client
        self._cache_name = cache_name
        self._create_missing_cache = create_missing_cache

    def get(self, key: str) -> bytes | None:
        from momento.responses import CacheGet

        response = self._call("get", lambda: self._client.get(self._cache_name, key))
        if isinstance(response, CacheGet.Hit):
            return response.value_bytes
        if isinstance(response, CacheGet.Miss):
            return None
        if isinstance(response, CacheGet.Error) and self._created_missing_cache(response):
            return None  # a cache created just now is empty
        raise self._unavailable("get", response)

    def set(self, key: str, value: bytes, ttl: timedelta) -> None:
        from momento.responses import CacheSet

        def put() -> object:
            return self._client.set(self._cache_name, key, value, ttl=ttl)

        response = self._call("set", put)
        if isinstance(response, CacheSet.Error) and self._created_missing_cache(response):
            response = self._call("set", put)
        if not isinstance(response, CacheSet.Success):
            raise self._unavailable("set", response)

    def close(self) -> None:
        self._client.__exit__(None, None, None)

    def _call(self, operation: str, call: Callable[[], object]) -> object:
        try:
            return call()
        except Exception as exc:  # the SDK should not raise; if it does, it is still "down"
            raise CacheUnavailable(f"Momento {operation} raised {_describe(exc)}") from exc

    def _created_missing_cache(self, error: ErrorResponseMixin) -> bool:
        """On NOT_FOUND (no such cache): create it, tolerating a concurrent creator."""
        from momento.errors import MomentoErrorCode
        from momento.responses import CreateCache

        if not self._create_missing_cache or error.error_code != MomentoErrorCode.NOT_FOUND_ERROR:
            return False
        created = self._call("create_cache", lambda: self._client.create_cache(self._cache_name))
        if isinstance(created, CreateCache.Success | CreateCache.CacheAlreadyExists):
            logger.info("created Momento cache %s", self._cache_name)
            return True
        raise self._unavailable("create_cache", created)

    def _unavailable(self, operation: str, response: object) -> CacheUnavailable:
        detail = getattr(response, "message", None) or type(response).__name__
        code = getattr(response, "error_code", None)
        return CacheUnavailable(
            f"Momento {operation} on {self._cache_name} failed: {code} {detail}"
        )


def momento_cache_from_settings(
    api_key: str | None,
    local_endpoint: str | None,
    cache_name: str,
    timeout: timedelta,
    *,
    api_endpoint: str | None = None,
) -> MomentoCredentialCache | None:
    """The Momento second level, or None when neither an API key nor a local endpoint is set.

    `local_endpoint` ("host:port", plaintext, the devstack server) wins over `api_key`. A v2
    API key needs `api_endpoint` (Momento's region endpoint); a legacy key carries its own.
    `timeout` is the client-side deadline of every call: keep it short, STS is the fallback.
    No connection is opened here (the first call connects), so a cold start never waits on,
    nor fails because of, Momento.
    """
    client = cache_client(api_key, local_endpoint, timeout, api_endpoint=api_endpoint)
    if client is None:
        return None
    return MomentoCredentialCache(client, cache_name, create_missing_cache=bool(local_endpoint))
