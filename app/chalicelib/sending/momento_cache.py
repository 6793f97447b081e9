"""Momento dictionaries for the suppression cache (sending/suppression_cache.py `Dictionaries`),
through the SDK's sync `CacheClient`. Imported only when Momento is configured (the API and the
bulk worker); ingest never loads it, nor grpc.

A dictionary's TTL is set when a write creates it and not refreshed by later writes
(`with_no_refresh_ttl_on_updates`): a dictionary that is written to all the time still expires,
so what it holds never outlives the TTL (erasure counts on it) and it cannot grow without bound.

The SDK answers with Hit/Miss/Error values; any Error becomes CacheUnavailable, which the check
treats as "read DynamoDB". On the local server a missing cache is created on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from chalicelib.core.errors import CacheUnavailable, ConfigurationError

log = logging.getLogger("sesami.sending")


class MomentoDictionaries:
    def __init__(self, client: Any, cache_name: str, *, create_missing_cache: bool = False) -> None:
        if not cache_name:
            raise ConfigurationError("the Momento cache name must not be empty")
        self._client, self._cache = client, cache_name
        self._create = create_missing_cache

    def get_fields(self, name: str, fields: list[str]) -> dict[str, bytes]:
        from momento.responses import CacheDictionaryGetField, CacheDictionaryGetFields

        response = self._call(lambda: self._client.dictionary_get_fields(self._cache, name, fields))
        if isinstance(response, CacheDictionaryGetFields.Miss):
            return {}
        if isinstance(response, CacheDictionaryGetFields.Error) and self._created(response):
            return {}
        if not isinstance(response, CacheDictionaryGetFields.Hit):
            raise _unavailable("DictionaryGet", response)
        return {
            field: part.value_bytes
            for field, part in zip(fields, response.responses, strict=True)
            if isinstance(part, CacheDictionaryGetField.Hit)
        }

    def set_fields(self, name: str, items: dict[str, bytes], ttl: timedelta) -> None:
        from momento.requests import CollectionTtl
        from momento.responses import CacheDictionarySetFields

        def put() -> object:
            return self._client.dictionary_set_fields(
                self._cache, name, items, ttl=CollectionTtl.of(ttl).with_no_refresh_ttl_on_updates()
            )

        response = self._call(put)
        if isinstance(response, CacheDictionarySetFields.Error) and self._created(response):
            response = self._call(put)
        if not isinstance(response, CacheDictionarySetFields.Success):
            raise _unavailable("DictionarySet", response)

    def _call(self, call: Callable[[], object]) -> object:
        try:
            return call()
        except Exception as exc:  # the SDK should not raise; if it does, it is still "down"
            raise CacheUnavailable(f"Momento raised {type(exc).__name__}: {exc}") from exc

    def _created(self, error: Any) -> bool:
        from momento.errors import MomentoErrorCode
        from momento.responses import CreateCache

        if not self._create or error.error_code != MomentoErrorCode.NOT_FOUND_ERROR:
            return False
        created = self._call(lambda: self._client.create_cache(self._cache))
        if isinstance(created, CreateCache.Success | CreateCache.CacheAlreadyExists):
            log.info("created Momento cache %s", self._cache)
            return True
        raise _unavailable("CreateCache", created)


def _unavailable(operation: str, response: object) -> CacheUnavailable:
    detail = getattr(response, "message", None) or type(response).__name__
    return CacheUnavailable(
        f"Momento {operation} failed: {getattr(response, 'error_code', '')} {detail}"
    )


def momento_dictionaries(
    api_key: str | None,
    local_endpoint: str | None,
    cache_name: str,
    timeout: timedelta,
    *,
    api_endpoint: str | None = None,
) -> MomentoDictionaries | None:
    """The suppression cache's Momento, or None when neither a key nor a local server is set.
    The client connects on its first call: a cold start never waits on Momento."""
    from chalicelib.core.momento import cache_client

    client = cache_client(api_key, local_endpoint, timeout, api_endpoint=api_endpoint)
    if client is None:
        return None
    return MomentoDictionaries(client, cache_name, create_missing_cache=bool(local_endpoint))
