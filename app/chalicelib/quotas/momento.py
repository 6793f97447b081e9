"""The quota counters on Momento (`CounterStore` of limiter.py): one `Increment` per count, with
the window's remaining time as the item's TTL. Imported only when a Momento key or local
endpoint is configured: the ingest function never loads grpc or momento.

The SDK answers with Success/Error values rather than exceptions; every Error (timeout,
unavailable, a value that is not an integer...) becomes `CacheUnavailable`, which the limiter
answers by counting in memory for a while. A missing cache is created on demand when
`create_missing_cache` is set (the local server); in AWS the operator creates it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from chalicelib.core.errors import CacheUnavailable, ConfigurationError
from chalicelib.core.momento import cache_client, is_missing_cache

if TYPE_CHECKING:
    from momento import CacheClient

log = logging.getLogger("sesami.quotas")

# The deadline of one increment: it is on every request's path, and memory is the fallback.
DEFAULT_TIMEOUT = timedelta(milliseconds=250)


class MomentoCounters:
    def __init__(
        self, client: CacheClient, cache_name: str, *, create_missing_cache: bool = False
    ) -> None:
        if not cache_name:
            raise ConfigurationError("the Momento cache name must not be empty")
        self._client, self._cache = client, cache_name
        self._create_missing_cache = create_missing_cache

    def increment(self, key: str, amount: int, ttl: timedelta) -> int:
        from momento.responses import CacheIncrement, CreateCache

        response = self._call(key, amount, ttl)
        missing = isinstance(response, CacheIncrement.Error) and is_missing_cache(response)
        if missing and self._create_missing_cache:
            created = self._client.create_cache(self._cache)
            if isinstance(created, CreateCache.Success | CreateCache.CacheAlreadyExists):
                log.info("created Momento cache %s", self._cache)
                response = self._call(key, amount, ttl)
        if isinstance(response, CacheIncrement.Success):
            return int(response.value)
        detail = getattr(response, "message", None) or type(response).__name__
        code = getattr(response, "error_code", None)
        raise CacheUnavailable(f"Momento increment on {self._cache} failed: {code} {detail}")

    def close(self) -> None:
        self._client.__exit__(None, None, None)

    def _call(self, key: str, amount: int, ttl: timedelta) -> object:
        try:
            return self._client.increment(self._cache, key, amount, ttl=ttl)
        except Exception as exc:  # the SDK should not raise; if it does, it is still "down"
            raise CacheUnavailable(f"Momento increment raised {type(exc).__name__}: {exc}") from exc


def momento_counters_from_settings(
    api_key: str | None,
    local_endpoint: str | None,
    cache_name: str,
    *,
    api_endpoint: str | None = None,
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> MomentoCounters | None:
    """The counters on Momento, or None when neither an API key nor a local endpoint is set."""
    client = cache_client(api_key, local_endpoint, timeout, api_endpoint=api_endpoint)
    if client is None:
        return None
    return MomentoCounters(client, cache_name, create_missing_cache=bool(local_endpoint))
