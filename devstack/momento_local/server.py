"""A small in-memory Momento cache server for tests and the local dev stack.

The real Momento Python SDK reaches it through ``CredentialProvider.for_momento_local(host, port)``:
for any port other than 443 the SDK opens *plaintext* (insecure) gRPC channels, and it uses the same
``host:port`` for the control plane (``control_client.ScsControl``) and the data plane
(``cache_client.Scs``). Requests and responses are the protobuf messages of ``momento-wire-types``.

Implemented RPCs: CreateCache, DeleteCache, ListCaches (control plane) and Get, Set, Delete,
Increment, DictionaryGet, DictionarySet (data plane; a dictionary has one TTL for the whole,
refreshed by a set unless the request says otherwise, as the real service does). Every other RPC
is answered with gRPC's own UNIMPLEMENTED status. Data-plane requests name their cache in the
``cache`` metadata header; an unknown cache gets NOT_FOUND, like the real service, which the SDK
maps to ``MomentoErrorCode.NOT_FOUND_ERROR``. Auth headers are ignored (any token, or none).

Increment follows Momento's documented semantics: it adds ``amount`` (positive, negative or zero)
to a value that is the UTF-8 text of a base-10 integer and answers the new value; a missing (or
expired) item is created holding ``amount``; a value that is not such an integer is refused with
FAILED_PRECONDITION, and so is a result outside the signed 64-bit range. Every Increment carries
a TTL (the SDK always sends one) and, like every other write here, sets the item's TTL to it;
Momento does not document whether an existing item keeps its TTL, and SESami's counters do not
depend on it (each window has its own key, written with the time left in the window).

Every incoming call, implemented or not, is counted in ``MomentoLocalServer.calls`` by its short
method name (``"Get"``, ``"CreateCache"``...), so benchmarks can assert how many calls a code path
made.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent import futures
from types import TracebackType
from typing import Any, Final, NoReturn

import grpc
from momento_wire_types import cacheclient_pb2 as cache_pb
from momento_wire_types import controlclient_pb2 as control_pb

logger = logging.getLogger(__name__)

CACHE_SERVICE: Final = "cache_client.Scs"
CONTROL_SERVICE: Final = "control_client.ScsControl"

# (request, context) -> response message; grpc and protobuf are untyped here, hence Any.
_Behavior = Callable[[Any, Any], Any]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# What Momento accepts as an integer value: ASCII digits with an optional sign, nothing else.
_INTEGER = re.compile(rb"[+-]?[0-9]+")


class CacheNotFoundError(KeyError):
    """A request named a cache that does not exist."""

    def __init__(self, cache_name: str) -> None:
        super().__init__(cache_name)
        self.cache_name = cache_name


class NotAnIntegerError(ValueError):
    """Increment found a value that is not a base-10 integer, or the result overflows int64."""


class CacheStore:
    """Thread-safe caches: cache name -> {key: (value, expires_at on the monotonic clock)}."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._caches: dict[str, dict[bytes, tuple[bytes, float]]] = {}
        # cache name -> dictionary name -> (fields, expires_at)
        self._dicts: dict[str, dict[bytes, tuple[dict[bytes, bytes], float]]] = {}

    def create_cache(self, name: str) -> bool:
        """Create a cache; False if it already exists."""
        with self._lock:
            if name in self._caches:
                return False
            self._caches[name] = {}
            self._dicts[name] = {}
            return True

    def delete_cache(self, name: str) -> None:
        with self._lock:
            if self._caches.pop(name, None) is None:
                raise CacheNotFoundError(name)
            self._dicts.pop(name, None)

    def cache_names(self) -> list[str]:
        with self._lock:
            return sorted(self._caches)

    def get(self, cache_name: str, key: bytes) -> bytes | None:
        """The live value for key, or None; an expired entry is evicted and reads as None."""
        with self._lock:
            items = self._items(cache_name)
            entry = items.get(key)
            if entry is None:
                return None
            value, expires_at = entry
            if self._clock() >= expires_at:
                del items[key]
                return None
            return value

    def set(self, cache_name: str, key: bytes, value: bytes, ttl_milliseconds: int) -> None:
        """Store value; a TTL of 0 ms stores an entry that is already expired."""
        with self._lock:
            expires_at = self._clock() + ttl_milliseconds / 1000.0
            self._items(cache_name)[key] = (value, expires_at)

    def increment(self, cache_name: str, key: bytes, amount: int, ttl_milliseconds: int) -> int:
        """Add `amount` to the integer held at `key` (a missing or expired item counts as 0) and
        store the result as decimal text with the given TTL; raise NotAnIntegerError when the
        held value is not a base-10 integer or the result does not fit in a signed int64."""
        with self._lock:
            items = self._items(cache_name)
            now = self._clock()
            entry = items.get(key)
            current = 0
            if entry is not None and now < entry[1]:
                if not _INTEGER.fullmatch(entry[0]):
                    raise NotAnIntegerError("the value is not a base-10 integer")
                current = int(entry[0])
            value = current + amount
            if not INT64_MIN <= value <= INT64_MAX:
                raise NotAnIntegerError("the result does not fit in a signed 64-bit integer")
            items[key] = (str(value).encode(), now + ttl_milliseconds / 1000.0)
            return value

    def delete(self, cache_name: str, key: bytes) -> None:
        with self._lock:
            self._items(cache_name).pop(key, None)

    def dictionary_get(
        self, cache_name: str, name: bytes, fields: list[bytes]
    ) -> list[bytes | None] | None:
        """The values of `fields` (None for a missing one), or None if there is no dictionary."""
        with self._lock:
            self._items(cache_name)
            dictionaries = self._dicts[cache_name]
            entry = dictionaries.get(name)
            if entry is None:
                return None
            values, expires_at = entry
            if self._clock() >= expires_at:
                del dictionaries[name]
                return None
            return [values.get(f) for f in fields]

    def dictionary_set(
        self,
        cache_name: str,
        name: bytes,
        items: dict[bytes, bytes],
        ttl_milliseconds: int,
        refresh_ttl: bool,
    ) -> None:
        with self._lock:
            self._items(cache_name)
            dictionaries = self._dicts[cache_name]
            now = self._clock()
            entry = dictionaries.get(name)
            if entry is None or now >= entry[1]:
                entry = ({}, now + ttl_milliseconds / 1000.0)
            elif refresh_ttl:
                entry = (entry[0], now + ttl_milliseconds / 1000.0)
            entry[0].update(items)
            dictionaries[name] = entry

    def item_count(self, cache_name: str) -> int:
        """Entries held for a cache, including expired ones not evicted yet."""
        with self._lock:
            return len(self._items(cache_name))

    def _items(self, cache_name: str) -> dict[bytes, tuple[bytes, float]]:
        items = self._caches.get(cache_name)
        if items is None:
            raise CacheNotFoundError(cache_name)
        return items


def _abort(context: Any, code: Any, details: str) -> NoReturn:
    context.abort(code, details)  # raises
    raise RuntimeError("grpc context.abort() returned")  # pragma: no cover


def _cache_name(context: Any) -> str:
    for key, value in context.invocation_metadata():
        if key == "cache" and isinstance(value, str) and value:
            return value
    _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "missing 'cache' metadata header")


class _CountingHandler:
    """A grpc GenericRpcHandler: counts every call by method name, then routes it (or not)."""

    def __init__(self, handlers: Mapping[str, Any], on_call: Callable[[str], None]) -> None:
        self._handlers = dict(handlers)
        self._on_call = on_call

    def service(self, handler_call_details: Any) -> Any:
        method: str = handler_call_details.method  # e.g. "/cache_client.Scs/Get"
        self._on_call(method.rsplit("/", 1)[-1])
        return self._handlers.get(method)  # None -> grpc answers UNIMPLEMENTED


class MomentoLocalServer:
    """In-memory Momento cache server on a plaintext gRPC port.

    Usage::

        with MomentoLocalServer() as server:
            provider = CredentialProvider.for_momento_local("127.0.0.1", server.port)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_workers: int = 16) -> None:
        self.host = host
        self.port = port  # the bound port once start() has run
        self.store = CacheStore()
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._max_workers = max_workers
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> int:
        """Bind and start serving; return the actual port (useful with port=0)."""
        if self._server is not None:
            raise RuntimeError("MomentoLocalServer already started")
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="momento")
        )
        server.add_generic_rpc_handlers((_CountingHandler(self._method_handlers(), self._count),))
        bound = int(server.add_insecure_port(self.endpoint))
        if bound == 0:
            raise OSError(f"could not bind Momento local server to {self.endpoint}")
        server.start()
        self._server = server
        self.port = bound
        logger.info("Momento local server listening on %s", self.endpoint)
        return bound

    def stop(self, grace: float | None = None) -> None:
        """Stop serving; in-flight calls get `grace` seconds, new calls are refused at once."""
        if self._server is None:
            return
        self._server.stop(grace).wait()
        self._server = None
        logger.info("Momento local server on %s stopped", self.endpoint)

    def reset_calls(self) -> None:
        with self._calls_lock:
            self.calls.clear()

    def __enter__(self) -> MomentoLocalServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(0)

    def _count(self, method: str) -> None:
        with self._calls_lock:
            self.calls[method] += 1

    def _method_handlers(self) -> dict[str, Any]:
        routes: list[tuple[str, str, _Behavior, Any]] = [
            (CONTROL_SERVICE, "CreateCache", self._create_cache, control_pb._CreateCacheRequest),
            (CONTROL_SERVICE, "DeleteCache", self._delete_cache, control_pb._DeleteCacheRequest),
            (CONTROL_SERVICE, "ListCaches", self._list_caches, control_pb._ListCachesRequest),
            (CACHE_SERVICE, "Get", self._get, cache_pb._GetRequest),
            (CACHE_SERVICE, "Set", self._set, cache_pb._SetRequest),
            (CACHE_SERVICE, "Delete", self._delete, cache_pb._DeleteRequest),
            (CACHE_SERVICE, "Increment", self._increment, cache_pb._IncrementRequest),
            (
                CACHE_SERVICE,
                "DictionaryGet",
                self._dictionary_get,
                cache_pb._DictionaryGetRequest,
            ),
            (
                CACHE_SERVICE,
                "DictionarySet",
                self._dictionary_set,
                cache_pb._DictionarySetRequest,
            ),
        ]
        return {
            f"/{service}/{name}": grpc.unary_unary_rpc_method_handler(
                _not_found_as_status(behavior),
                request_deserializer=request_type.FromString,
                response_serializer=_serialize,
            )
            for service, name, behavior, request_type in routes
        }

    # Control plane.

    def _create_cache(self, request: Any, context: Any) -> Any:
        if not self.store.create_cache(request.cache_name):
            _abort(context, grpc.StatusCode.ALREADY_EXISTS, f"cache {request.cache_name} exists")
        return control_pb._CreateCacheResponse()

    def _delete_cache(self, request: Any, context: Any) -> Any:
        self.store.delete_cache(request.cache_name)
        return control_pb._DeleteCacheResponse()

    def _list_caches(self, request: Any, context: Any) -> Any:
        caches = [control_pb._Cache(cache_name=name) for name in self.store.cache_names()]
        return control_pb._ListCachesResponse(cache=caches, next_token="")

    # Data plane.

    def _get(self, request: Any, context: Any) -> Any:
        value = self.store.get(_cache_name(context), request.cache_key)
        if value is None:
            return cache_pb._GetResponse(result=cache_pb.Miss)
        return cache_pb._GetResponse(result=cache_pb.Hit, cache_body=value)

    def _set(self, request: Any, context: Any) -> Any:
        cache_name = _cache_name(context)
        self.store.set(cache_name, request.cache_key, request.cache_body, request.ttl_milliseconds)
        return cache_pb._SetResponse(result=cache_pb.Ok)

    def _delete(self, request: Any, context: Any) -> Any:
        self.store.delete(_cache_name(context), request.cache_key)
        return cache_pb._DeleteResponse()

    def _increment(self, request: Any, context: Any) -> Any:
        cache_name = _cache_name(context)
        try:
            value = self.store.increment(
                cache_name, request.cache_key, request.amount, request.ttl_milliseconds
            )
        except NotAnIntegerError as exc:
            _abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return cache_pb._IncrementResponse(value=value)

    def _dictionary_get(self, request: Any, context: Any) -> Any:
        values = self.store.dictionary_get(
            _cache_name(context), request.dictionary_name, list(request.fields)
        )
        if values is None:
            return cache_pb._DictionaryGetResponse(
                missing=cache_pb._DictionaryGetResponse._Missing()
            )
        parts = [
            cache_pb._DictionaryGetResponse._DictionaryGetResponsePart(result=cache_pb.Miss)
            if v is None
            else cache_pb._DictionaryGetResponse._DictionaryGetResponsePart(
                result=cache_pb.Hit, cache_body=v
            )
            for v in values
        ]
        return cache_pb._DictionaryGetResponse(
            found=cache_pb._DictionaryGetResponse._Found(items=parts)
        )

    def _dictionary_set(self, request: Any, context: Any) -> Any:
        self.store.dictionary_set(
            _cache_name(context),
            request.dictionary_name,
            {pair.field: pair.value for pair in request.items},
            request.ttl_milliseconds,
            request.refresh_ttl,
        )
        return cache_pb._DictionarySetResponse()


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def _not_found_as_status(behavior: _Behavior) -> _Behavior:
    """Turn CacheNotFoundError into the NOT_FOUND status the real service returns."""

    def run(request: Any, context: Any) -> Any:
        try:
            return behavior(request, context)
        except CacheNotFoundError as exc:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"Cache not found: {exc.cache_name}")

    return run
