"""The local Momento server, exercised through the real Momento SDK (sync CacheClient)."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from momento import CacheClient, Configurations, CredentialProvider
from momento.errors import MomentoErrorCode
from momento.responses import (
    CacheDelete,
    CacheGet,
    CacheIncrement,
    CacheListFetch,
    CacheSet,
    CreateCache,
    DeleteCache,
    ListCaches,
)
from momento_wire_types import cacheclient_pb2 as cache_pb
from momento_wire_types import cacheclient_pb2_grpc as cache_grpc

from devstack.momento_local.server import CacheStore, MomentoLocalServer

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = "sesami-test"


def make_client(port: int, timeout: timedelta = timedelta(seconds=2)) -> CacheClient:
    return CacheClient.create(
        Configurations.Laptop.v1().with_client_timeout(timeout),
        CredentialProvider.for_momento_local("127.0.0.1", port),
        default_ttl=timedelta(seconds=60),
        eager_connection_timeout=timedelta(seconds=5),
    )


@pytest.fixture
def server() -> Iterator[MomentoLocalServer]:
    with MomentoLocalServer() as srv:
        yield srv


@pytest.fixture
def client(server: MomentoLocalServer) -> Iterator[CacheClient]:
    with make_client(server.port) as cache_client:
        yield cache_client


@pytest.fixture
def cache(client: CacheClient) -> str:
    assert isinstance(client.create_cache(CACHE), CreateCache.Success)
    return CACHE


def test_start_binds_a_real_port() -> None:
    srv = MomentoLocalServer()
    try:
        port = srv.start()
        assert port > 0
        assert srv.port == port
    finally:
        srv.stop(0)


def test_create_cache_twice_reports_already_exists(client: CacheClient) -> None:
    assert isinstance(client.create_cache("one"), CreateCache.Success)
    assert isinstance(client.create_cache("one"), CreateCache.CacheAlreadyExists)
    assert isinstance(client.create_cache("two"), CreateCache.Success)
    listed = client.list_caches()
    assert isinstance(listed, ListCaches.Success)
    assert [c.name for c in listed.caches] == ["one", "two"]


def test_delete_cache_then_missing_cache_is_not_found(client: CacheClient, cache: str) -> None:
    assert isinstance(client.delete_cache(cache), DeleteCache.Success)
    again = client.delete_cache(cache)
    assert isinstance(again, DeleteCache.Error)
    assert again.error_code == MomentoErrorCode.NOT_FOUND_ERROR
    listed = client.list_caches()
    assert isinstance(listed, ListCaches.Success)
    assert listed.caches == []


def test_set_then_get_hits(client: CacheClient, cache: str) -> None:
    assert isinstance(client.set(cache, "tenant#1", "hello"), CacheSet.Success)
    got = client.get(cache, "tenant#1")
    assert isinstance(got, CacheGet.Hit)
    assert got.value_string == "hello"


def test_get_unknown_key_misses(client: CacheClient, cache: str) -> None:
    client.set(cache, "present", "x")
    assert isinstance(client.get(cache, "absent"), CacheGet.Miss)


def test_ttl_expiry_turns_hit_into_miss_and_evicts(
    client: CacheClient, server: MomentoLocalServer, cache: str
) -> None:
    ttl = timedelta(milliseconds=300)
    started = time.monotonic()
    assert isinstance(client.set(cache, "short", "lived", ttl=ttl), CacheSet.Success)
    assert isinstance(client.get(cache, "short"), CacheGet.Hit)
    assert server.store.item_count(cache) == 1

    deadline = started + 2.0  # bounded: the entry must expire well within this
    while not isinstance(client.get(cache, "short"), CacheGet.Miss):
        assert time.monotonic() < deadline, "entry did not expire"
        time.sleep(0.05)
    assert time.monotonic() - started >= ttl.total_seconds()  # not before its TTL
    assert server.store.item_count(cache) == 0  # the expired entry was evicted on read


def test_delete_removes_key(client: CacheClient, cache: str) -> None:
    client.set(cache, "k", "v")
    assert isinstance(client.delete(cache, "k"), CacheDelete.Success)
    assert isinstance(client.get(cache, "k"), CacheGet.Miss)
    assert isinstance(client.delete(cache, "never-set"), CacheDelete.Success)


def test_data_plane_on_missing_cache_is_not_found(client: CacheClient) -> None:
    for response in (
        client.get("no-such-cache", "k"),
        client.set("no-such-cache", "k", "v"),
        client.delete("no-such-cache", "k"),
    ):
        assert isinstance(response, CacheGet.Error | CacheSet.Error | CacheDelete.Error)
        assert response.error_code == MomentoErrorCode.NOT_FOUND_ERROR
        assert "no-such-cache" in response.message


def test_binary_keys_and_values_round_trip(client: CacheClient, cache: str) -> None:
    value = bytes(range(256)) * 4
    key = b"\x00\xff\x80key"
    client.set(cache, key, value)
    got = client.get(cache, key)
    assert isinstance(got, CacheGet.Hit)
    assert got.value_bytes == value


def test_unimplemented_rpc_is_unimplemented(client: CacheClient, cache: str) -> None:
    response = client.list_fetch(cache, "a-list")
    assert isinstance(response, CacheListFetch.Error)
    assert response.error_code == MomentoErrorCode.BAD_REQUEST_ERROR
    details = response.inner_exception.transport_details
    assert details is not None
    assert details.grpc.code == grpc.StatusCode.UNIMPLEMENTED


def _value(client: CacheClient, cache: str, key: str) -> str:
    got = client.get(cache, key)
    assert isinstance(got, CacheGet.Hit), got
    return got.value_string


def test_increment_creates_a_missing_item_then_adds_to_it(client: CacheClient, cache: str) -> None:
    first = client.increment(cache, "n", 5)
    assert isinstance(first, CacheIncrement.Success)
    assert first.value == 5  # a missing item is created holding the amount
    assert _value(client, cache, "n") == "5"  # stored as the decimal text of the integer
    for amount, expected in ((1, 6), (-10, -4), (0, -4), (2**40, 2**40 - 4)):
        response = client.increment(cache, "n", amount)
        assert isinstance(response, CacheIncrement.Success)
        assert response.value == expected
    assert _value(client, cache, "n") == str(2**40 - 4)


def test_increment_adds_to_a_value_set_as_integer_text(client: CacheClient, cache: str) -> None:
    client.set(cache, "set-as-text", "41")
    response = client.increment(cache, "set-as-text")
    assert isinstance(response, CacheIncrement.Success) and response.value == 42
    client.set(cache, "signed", "-7")
    response = client.increment(cache, "signed", 7)
    assert isinstance(response, CacheIncrement.Success) and response.value == 0


@pytest.mark.parametrize("held", ["abc", "12a", " 12", "1.5", "", "١٢"])
def test_increment_refuses_a_value_that_is_not_an_integer(
    client: CacheClient, cache: str, held: str
) -> None:
    client.set(cache, "text", held)
    response = client.increment(cache, "text")
    assert isinstance(response, CacheIncrement.Error)
    assert response.error_code == MomentoErrorCode.FAILED_PRECONDITION_ERROR
    assert _value(client, cache, "text") == held  # left as it was


def test_increment_refuses_a_result_outside_int64(client: CacheClient, cache: str) -> None:
    top = client.increment(cache, "big", 2**63 - 1)
    assert isinstance(top, CacheIncrement.Success) and top.value == 2**63 - 1
    over = client.increment(cache, "big", 1)
    assert isinstance(over, CacheIncrement.Error)
    assert over.error_code == MomentoErrorCode.FAILED_PRECONDITION_ERROR
    assert _value(client, cache, "big") == str(2**63 - 1)
    bottom = client.increment(cache, "small", -(2**63))
    assert isinstance(bottom, CacheIncrement.Success)
    under = client.increment(cache, "small", -1)
    assert isinstance(under, CacheIncrement.Error)


def test_increment_on_a_missing_cache_is_not_found(client: CacheClient) -> None:
    response = client.increment("no-such-cache", "n")
    assert isinstance(response, CacheIncrement.Error)
    assert response.error_code == MomentoErrorCode.NOT_FOUND_ERROR


def test_increment_sets_the_ttl_it_is_given_and_an_expired_counter_starts_again(
    server: MomentoLocalServer, client: CacheClient, cache: str
) -> None:
    now = [1000.0]
    server.store = CacheStore(clock=lambda: now[0])
    server.store.create_cache(cache)
    ttl = timedelta(seconds=30)
    assert _success(client.increment(cache, "w", 3, ttl=ttl)) == 3
    now[0] += 20
    assert _success(client.increment(cache, "w", 1, ttl=ttl)) == 4  # still live: added to
    now[0] += 20  # 40 s after creation, 20 s after the last increment, which set a new TTL
    assert _success(client.increment(cache, "w", 1, ttl=ttl)) == 5
    now[0] += 31
    assert isinstance(client.get(cache, "w"), CacheGet.Miss)
    assert _success(client.increment(cache, "w", 2, ttl=ttl)) == 2  # expired: counts from 0


def _success(response: object) -> int:
    assert isinstance(response, CacheIncrement.Success), response
    return response.value


def test_concurrent_increments_are_atomic(server: MomentoLocalServer, cache: str) -> None:
    def work() -> None:
        with make_client(server.port) as own:
            for _ in range(50):
                assert isinstance(own.increment(cache, "shared"), CacheIncrement.Success)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.store.get(cache, b"shared") == b"400"


def test_accepts_calls_without_auth_header(server: MomentoLocalServer) -> None:
    server.store.create_cache(CACHE)
    server.store.set(CACHE, b"k", b"v", 60_000)
    with grpc.insecure_channel(server.endpoint) as channel:
        stub = cache_grpc.ScsStub(channel)
        reply = stub.Get(
            cache_pb._GetRequest(cache_key=b"k"), metadata=[("cache", CACHE)], timeout=5
        )
        assert reply.result == cache_pb.Hit
        assert reply.cache_body == b"v"
        with pytest.raises(grpc.RpcError) as missing_header:
            stub.Get(cache_pb._GetRequest(cache_key=b"k"), timeout=5)
        assert missing_header.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_counters_count_calls(server: MomentoLocalServer) -> None:
    with make_client(server.port) as client:
        assert sum(server.calls.values()) == 0  # creating a client (eager connect) makes no RPC
        client.create_cache(CACHE)
        client.set(CACHE, "k", "v")
        client.get(CACHE, "k")
        client.get(CACHE, "other")
        client.increment(CACHE, "n")
        client.list_fetch(CACHE, "l")  # unimplemented calls are counted too
    assert server.calls == {"CreateCache": 1, "Set": 1, "Get": 2, "Increment": 1, "ListFetch": 1}
    server.reset_calls()
    assert server.calls["Get"] == 0


def test_stopped_server_gives_error_response_quickly(server: MomentoLocalServer) -> None:
    with make_client(server.port, timeout=timedelta(seconds=1)) as client:
        client.create_cache(CACHE)
        assert isinstance(client.set(CACHE, "k", "v"), CacheSet.Success)
        server.stop(0)
        started = time.monotonic()
        response = client.get(CACHE, "k")  # must return, not raise
        elapsed = time.monotonic() - started
    assert isinstance(response, CacheGet.Error)
    assert response.error_code in {
        MomentoErrorCode.SERVER_UNAVAILABLE,
        MomentoErrorCode.TIMEOUT_ERROR,
    }
    assert elapsed < 5.0


def test_restart_keeps_port_and_data(server: MomentoLocalServer) -> None:
    with make_client(server.port) as client:
        client.create_cache(CACHE)
        client.set(CACHE, "k", "v")
        port = server.port
        server.stop(0)
        assert server.start() == port
        assert isinstance(client.get(CACHE, "k"), CacheGet.Hit)


def test_module_entry_point_prints_port_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.momento_local", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no MOMENTO_LOCAL_PORT line within 20 s"
        line = proc.stdout.readline().strip()
        name, _, port = line.partition("=")
        assert name == "MOMENTO_LOCAL_PORT"
        assert int(port) > 0
        with make_client(int(port)) as client:
            assert isinstance(client.create_cache(CACHE), CreateCache.Success)
            assert isinstance(client.set(CACHE, "k", "v"), CacheSet.Success)
            assert isinstance(client.get(CACHE, "k"), CacheGet.Hit)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr
        assert f"ready on 127.0.0.1:{port}" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
