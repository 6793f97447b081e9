"""The Python client against a scripted SESami (httpx.MockTransport): request shapes, paging,
retries and their waits (counted, never slept), idempotency keys, error mapping, and the API key
kept out of every repr, message and log line."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sesami_client import (
    ApiError,
    AuthenticationError,
    BadRequest,
    BatchTimeout,
    Client,
    ConfigurationError,
    Conflict,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    ServerError,
    ServiceUnavailable,
    TransportError,
    Unprocessable,
)
from sesami_client._http import Secret
from sesami_client.params import parse_duration, time_params
from sesami_client.retry import parse_retry_after

from tests.clients.fake_api import KEY, NOW, URL, FakeApi, error, reply

SENT = {
    "message_id": "0100018f-aaaa",
    "status": "sent",
    "configuration_set": "sesami-events",
    "recipients": ["ada@example.org"],
    "skipped": [],
    "recorded": True,
}


def event(n: int) -> dict[str, Any]:
    return {
        "id": f"e{n}",
        "message_id": f"m{n}",
        "type": "Bounce",
        "status": "BOUNCED",
        "recipient": f"r{n}@example.org",
        "at": "2026-05-01T11:00:00.000Z",
        "subject": "Hi",
        "from": "news@example.com",
        "tags": {},
        "detail": {"bounce_type": "Permanent"},
    }


def batch(status: str, processed: int, total: int = 3) -> dict[str, Any]:
    return {
        "batch_id": "b1",
        "status": status,
        "created_at": "2026-05-01T12:00:00Z",
        "configuration_set": "sesami-events",
        "progress": {"total": total, "processed": processed},
        "counts": {"sent": processed, "queued": total - processed},
        "send_rate": None,
        "results": [],
    }


def send(client: Client, **extra: Any) -> Any:
    return client.send(
        from_="news@example.com", to="ada@example.org", subject="Hi", text="Hello", **extra
    )


# ---------------------------------------------------------------------------- sending


def test_send_posts_the_mail_with_a_fresh_uuid4_idempotency_key_and_bearer_auth() -> None:
    api = FakeApi(reply(200, SENT))
    sent = send(api.client(), tags={"campaign": "spring"}, cc=["Bo <bo@example.org>"])

    (request,) = api.requests
    assert request.method == "POST"
    assert str(request.url) == f"{URL}/mail"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    key = request.headers["Idempotency-Key"]
    assert uuid.UUID(key).version == 4
    assert api.bodies()[0] == {
        "from": "news@example.com",
        "subject": "Hi",
        "to": "ada@example.org",
        "cc": ["Bo <bo@example.org>"],
        "text": "Hello",
        "tags": {"campaign": "spring"},
    }
    assert sent["message_id"] == SENT["message_id"]
    assert sent["idempotency_key"] == key
    assert sent["replayed"] is False


def test_every_send_gets_its_own_key_unless_one_is_given() -> None:
    api = FakeApi(reply(200, SENT), reply(200, SENT), reply(200, SENT))
    client = api.client()
    send(client)
    send(client)
    send(client, idempotency_key="order-42-receipt")
    keys = [r.headers["Idempotency-Key"] for r in api.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "order-42-receipt"


def test_a_503_is_retried_after_retry_after_seconds_with_the_same_key() -> None:
    api = FakeApi(
        error(503, "service_unavailable", "SES is not answering", retry_after="2"),
        error(503, "service_unavailable", "SES is not answering", retry_after="3"),
        reply(200, SENT),
    )
    sent = send(api.client())
    assert len(api.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in api.requests}) == 1
    assert len({r.content for r in api.requests}) == 1  # the same body each time
    assert api.sleeps == [2.0, 3.0]
    assert sent["idempotency_key"] == api.requests[0].headers["Idempotency-Key"]


def test_retry_after_as_an_http_date_is_the_time_until_that_date() -> None:
    later = format_datetime(NOW + timedelta(seconds=7), usegmt=True)
    api = FakeApi(error(429, "too_many_requests", "slow down", retry_after=later), reply(200, {}))
    api.client().account()
    assert api.sleeps == [7.0]


def test_without_retry_after_the_backoff_doubles_with_jitter_and_attempts_are_bounded() -> None:
    api = FakeApi(*[error(429, "too_many_requests", "slow down") for _ in range(4)])
    client = api.client(draw=0.5, retry=RetryPolicy(max_attempts=4, base_delay=0.5))
    with pytest.raises(RateLimited) as caught:
        client.account()
    assert len(api.requests) == 4
    # equal jitter: half of each step fixed, half drawn (0.5 here)
    assert api.sleeps == [0.375, 0.75, 1.5]
    assert caught.value.retryable is True


def test_the_computed_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=20, base_delay=1.0, max_delay=4.0)
    assert [policy.backoff(n, 0.999999) for n in (1, 2, 3)] == pytest.approx([1.0, 2.0, 4.0])
    assert max(policy.backoff(n, 0.999999) for n in range(1, 20)) <= 4.0
    assert min(policy.backoff(n, 0.0) for n in range(3, 20)) == 2.0  # never at once


def test_a_retry_after_longer_than_the_policy_allows_is_raised_not_waited_for() -> None:
    api = FakeApi(error(429, "too_many_requests", "quota", retry_after="3600"))
    with pytest.raises(RateLimited) as caught:
        api.client(retry=RetryPolicy(max_retry_after=60)).account()
    assert api.sleeps == []
    assert caught.value.retry_after == 3600.0


def test_a_post_without_an_idempotency_key_is_never_retried() -> None:
    api = FakeApi(error(503, "service_unavailable", "down", retry_after="1"))
    with pytest.raises(ServiceUnavailable) as caught:
        send(api.client(idempotency_keys=False))
    assert len(api.requests) == 1
    assert "Idempotency-Key" not in api.requests[0].headers
    assert api.sleeps == []
    assert caught.value.retryable is True  # retryable, but not by the client without a key


def test_a_lost_connection_is_retried_for_a_get_and_for_a_keyed_send_only() -> None:
    api = FakeApi(httpx.ConnectError("refused"), reply(200, {"tenant_id": "t"}))
    assert api.client().account()["tenant_id"] == "t"
    assert len(api.requests) == 2

    keyless = FakeApi(httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError, match="no answer from SESami"):
        send(keyless.client(idempotency_keys=False))
    assert len(keyless.requests) == 1

    keyed = FakeApi(httpx.ReadTimeout("slow"), reply(200, SENT, idempotent_replayed="true"))
    sent = send(keyed.client())
    assert sent["replayed"] is True  # the first attempt had sent it; nothing was sent twice
    assert (
        keyed.requests[0].headers["Idempotency-Key"] == keyed.requests[1].headers["Idempotency-Key"]
    )


def test_a_key_still_in_use_by_the_first_attempt_is_retried_until_it_replays() -> None:
    api = FakeApi(
        httpx.ReadTimeout("slow"),
        error(409, "idempotency_key_in_use", "a request with this key is in progress"),
        reply(200, SENT, idempotent_replayed="true"),
    )
    sent = send(api.client())
    assert len(api.requests) == 3 and sent["replayed"] is True


def test_a_reused_key_with_another_body_is_a_conflict_and_not_retried() -> None:
    api = FakeApi(error(409, "idempotency_key_reused", "another body"))
    with pytest.raises(Conflict) as caught:
        send(api.client(), idempotency_key="k1")
    assert caught.value.code == "idempotency_key_reused" and not caught.value.retryable
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (400, BadRequest, False),
        (401, AuthenticationError, False),
        (403, PermissionDenied, False),
        (404, NotFound, False),
        (409, Conflict, False),
        (422, Unprocessable, False),
        (429, RateLimited, True),
        (500, ServerError, False),
        (502, ServerError, True),
        (503, ServiceUnavailable, True),
        (418, ApiError, False),
    ],
)
def test_errors_become_typed_exceptions_carrying_sesamis_error_body(
    status: int, kind: type[ApiError], retryable: bool
) -> None:
    details = {"field": "to"}
    api = FakeApi(*[error(status, "some_code", "what went wrong", details)] * 4)
    with pytest.raises(kind) as caught:
        api.client(retry=RetryPolicy(max_attempts=1)).account()
    exc = caught.value
    assert type(exc) is kind
    assert (exc.status, exc.code, exc.message, exc.details) == (
        status,
        "some_code",
        "what went wrong",
        details,
    )
    assert exc.retryable is retryable
    assert (exc.method, exc.path) == ("GET", "/account")
    assert str(exc) == f"{status} some_code: what went wrong"


def test_an_answer_not_in_sesamis_error_shape_still_names_the_problem() -> None:
    gateway = httpx.Response(
        403,
        headers={"Content-Type": "application/json", "x-amzn-RequestId": "req-1"},
        content=b'{"message": "Missing Authentication Token"}',
    )
    api = FakeApi(gateway, httpx.Response(502, content=b"Bad Gateway"))
    with pytest.raises(PermissionDenied) as caught:
        api.client().account()
    assert caught.value.code == "http_403"
    assert caught.value.message == "Missing Authentication Token"
    assert caught.value.request_id == "req-1"
    with pytest.raises(ServerError, match="Bad Gateway"):
        api.client(retry=RetryPolicy(max_attempts=1)).account()


def test_a_success_that_is_not_json_is_an_invalid_response() -> None:
    page = httpx.Response(200, headers={"Content-Type": "text/html"}, content=b"<html>")
    with pytest.raises(InvalidResponse, match="text/html"):
        FakeApi(page).client().account()


# ---------------------------------------------------------------------------- bulk


def test_send_bulk_posts_one_template_and_returns_the_queued_batch() -> None:
    queued = {**batch("queued", 0), "skipped": []}
    api = FakeApi(reply(202, queued))
    result = api.client().send_bulk(
        from_="news@example.com",
        subject="Hello {{name}}",
        text="Hi {{name}}",
        recipients=["a@example.org", {"to": "b@example.org", "variables": {"name": "Bo"}}],
        tags={"campaign": "spring"},
    )
    assert api.requests[0].url.path == "/api/mail/bulk"
    assert api.requests[0].headers["Idempotency-Key"] == result["idempotency_key"]
    assert api.bodies()[0] == {
        "from": "news@example.com",
        "template": {"subject": "Hello {{name}}", "text": "Hi {{name}}"},
        "recipients": [
            {"to": "a@example.org"},
            {"to": "b@example.org", "variables": {"name": "Bo"}},
        ],
        "tags": {"campaign": "spring"},
    }
    assert result["status"] == "queued"


def test_batch_progress_polls_until_the_batch_is_done() -> None:
    api = FakeApi(
        reply(200, batch("queued", 0)),
        reply(200, batch("sending", 2)),
        reply(200, batch("done", 3)),
    )
    seen = [b["progress"]["processed"] for b in api.client().batch_progress("b1", interval=2.5)]
    assert seen == [0, 2, 3]
    assert api.sleeps == [2.5, 2.5]
    assert {r.url.path for r in api.requests} == {"/api/mail/bulk/b1"}


def test_wait_for_batch_gives_up_after_its_timeout_with_the_last_state() -> None:
    api = FakeApi(*[reply(200, batch("sending", 1)) for _ in range(4)])
    with pytest.raises(BatchTimeout, match="1 of 3") as caught:
        api.client().wait_for_batch("b1", interval=1.0, timeout=3.0)
    assert len(api.requests) == 4 and api.sleeps == [1.0, 1.0, 1.0]
    assert caught.value.batch["status"] == "sending"
    done = FakeApi(reply(200, batch("sending", 1)), reply(200, batch("incomplete", 3)))
    assert done.client().wait_for_batch("b1")["status"] == "incomplete"


# ---------------------------------------------------------------------------- paging


def test_events_follow_the_next_cursor_page_after_page_with_the_same_filters() -> None:
    api = FakeApi(
        reply(200, {"events": [event(1), event(2)], "next": "c1"}),
        reply(200, {"events": [], "next": "c2"}),  # a short page: SESami's scan budget ran out
        reply(200, {"events": [event(3)], "next": None}),
    )
    found = api.client().events(
        status=["BOUNCED", "complained"],
        recipient="r@example.org",
        tag="campaign=spring",
        since="36h",
        page_size=2,
    )
    assert [e["id"] for e in found] == ["e1", "e2", "e3"]
    filters = [
        ("from", "2026-04-30T00:00:00Z"),
        ("status", "BOUNCED"),
        ("status", "COMPLAINED"),
        ("recipient", "r@example.org"),
        ("tag", "campaign:spring"),
        ("limit", "2"),
    ]
    assert api.params(0) == filters
    assert api.params(1) == [*filters, ("next", "c1")]
    assert api.params(2) == [*filters, ("next", "c2")]


def test_events_stop_fetching_once_the_limit_is_reached() -> None:
    api = FakeApi(reply(200, {"events": [event(1), event(2)], "next": "c1"}))
    found = list(api.client().events(range="30d", limit=2))
    assert len(found) == 2 and len(api.requests) == 1
    assert api.params(0) == [("range", "30d"), ("limit", "2")]


def test_events_are_fetched_only_as_the_iteration_goes() -> None:
    api = FakeApi(reply(200, {"events": [event(1)], "next": "c1"}))
    events = api.client().events()
    assert api.requests == []
    next(events)
    assert len(api.requests) == 1


def test_a_server_that_repeats_a_cursor_cannot_make_the_iteration_loop() -> None:
    api = FakeApi(
        reply(200, {"events": [event(1)], "next": "same"}),
        reply(200, {"events": [], "next": "same"}),
    )
    with pytest.raises(InvalidResponse, match="same cursor"):
        list(api.client().events())


def test_bad_filters_are_refused_before_any_request() -> None:
    client = FakeApi().client()
    with pytest.raises(ValueError, match="one of range, since or from_"):
        client.events(range="7d", since="2d")
    with pytest.raises(ValueError, match="range must be one of"):
        client.stats(range="8d")
    with pytest.raises(ValueError, match="not a duration"):
        client.events(since="yesterday")
    with pytest.raises(ValueError, match="page_size"):
        client.suppressions(page_size=500)


def test_time_ranges_map_onto_sesamis_parameters() -> None:
    assert time_params(since="7d", now=NOW) == [("range", "7d")]
    assert time_params(since=timedelta(hours=2), now=NOW) == [("from", "2026-05-01T10:00:00Z")]
    assert time_params(from_=NOW - timedelta(days=1), to="2026-05-01T00:00:00Z") == [
        ("from", "2026-04-30T12:00:00Z"),
        ("to", "2026-05-01T00:00:00Z"),
    ]
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("2w") == timedelta(days=14)


def test_events_csv_joins_sesamis_export_responses_under_one_header() -> None:
    first = httpx.Response(
        200,
        headers={"Content-Type": "text/csv; charset=utf-8", "X-SESami-Next": "c1"},
        content=b"at,status\n1,BOUNCED\n",
    )
    second = httpx.Response(
        200, headers={"Content-Type": "text/csv; charset=utf-8"}, content=b"at,status\n2,SENT\n"
    )
    api = FakeApi(first, second)
    assert "".join(api.client().events_csv(status="BOUNCED")) == "at,status\n1,BOUNCED\n2,SENT\n"
    assert ("format", "csv") in api.params(0) and ("next", "c1") in api.params(1)


# ---------------------------------------------------------------------------- reads


def test_message_recipient_links_and_stats_read_their_routes() -> None:
    api = FakeApi(reply(200, {"message_id": "m/1"}), *[reply(200, {})] * 3)
    client = api.client()
    client.message("m/1")
    client.recipient("Ada+news@example.org", range="90d", limit=10)
    client.links(since="30d", top=5)
    client.stats(range="24h", interval="hour")
    assert [r.url.raw_path.decode() for r in api.requests] == [
        "/api/messages/m%2F1",
        "/api/recipients/Ada%2Bnews@example.org?range=90d&limit=10",
        "/api/links?range=30d&top=5",
        "/api/stats?range=24h&interval=hour",
    ]


# ---------------------------------------------------------------------------- suppression


def test_the_suppression_list_pages_and_its_entries_are_added_got_and_removed() -> None:
    entry = {"address": "ada@example.org", "suppressed": True, "reason": "MANUAL"}
    api = FakeApi(
        reply(200, {"items": [entry], "next": "s1"}),
        reply(200, {"items": [entry], "next": None}),
        reply(200, {**entry, "created": True}),
        reply(200, entry),
        reply(200, {**entry, "suppressed": False}),
    )
    client = api.client()
    assert len(list(client.suppressions(q="ada", reason="manual", page_size=1))) == 2
    assert api.params(0) == [("limit", "1"), ("q", "ada"), ("reason", "MANUAL")]
    assert api.params(1)[-1] == ("next", "s1")

    assert client.add_suppression("ada@example.org", "asked by phone")["created"] is True
    assert client.suppression("ada@example.org")["suppressed"] is True
    assert client.remove_suppression("ada@example.org", "fixed")["suppressed"] is False
    put, get, delete = api.requests[2:]
    assert (put.method, put.url.path, api.bodies()[2]) == (
        "PUT",
        "/api/suppression-list/ada@example.org",
        {"reason": "asked by phone"},
    )
    assert (get.method, delete.method) == ("GET", "DELETE")
    assert delete.url.params["reason"] == "fixed"


def test_put_and_delete_are_retried_as_idempotent() -> None:
    api = FakeApi(
        error(503, "service_unavailable", "down"),
        reply(200, {"address": "a@example.org"}),
        error(503, "service_unavailable", "down"),
        reply(200, {"address": "a@example.org"}),
    )
    client = api.client()
    client.add_suppression("a@example.org", "why")
    client.remove_suppression("a@example.org")
    assert [r.method for r in api.requests] == ["PUT", "PUT", "DELETE", "DELETE"]


# ---------------------------------------------------------------------------- configuration


def test_key_and_url_come_from_the_environment_and_an_argument_beats_it() -> None:
    env = {"SESAMI_API_KEY": "sk_from_env", "SESAMI_URL": "http://127.0.0.1:8000/"}
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply(200, {})

    transport = httpx.MockTransport(answer)
    Client(environ=env, transport=transport).account()
    Client("sk_argument", "http://other:9/api", environ=env, transport=transport).account()
    assert [r.headers["Authorization"] for r in seen] == [
        "Bearer sk_from_env",
        "Bearer sk_argument",
    ]
    assert [str(r.url) for r in seen] == [
        "http://127.0.0.1:8000/account",
        "http://other:9/api/account",
    ]


def test_a_missing_or_unusable_key_or_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="SESAMI_API_KEY"):
        Client(environ={"SESAMI_URL": URL})
    with pytest.raises(ConfigurationError, match="SESAMI_URL"):
        Client(environ={"SESAMI_API_KEY": KEY})
    with pytest.raises(ConfigurationError, match="http"):
        Client(KEY, "ftp://example.com", environ={})
    with pytest.raises(ConfigurationError) as caught:
        Client(f"{KEY}\r\nX-Evil: 1", URL, environ={})
    assert KEY not in str(caught.value)


# ---------------------------------------------------------------------------- the key stays secret


def test_the_key_is_in_no_repr_message_or_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: ours, httpx's, httpcore's
    api = FakeApi(
        error(503, "service_unavailable", "down", retry_after="1"),
        httpx.ConnectError("refused"),
        error(401, "unauthorized", "the token expired"),
    )
    client = api.client()
    with pytest.raises(AuthenticationError) as caught:
        client.account()
    assert api.requests[0].headers["Authorization"] == f"Bearer {KEY}"  # it was sent
    shown = [
        repr(client),
        str(client),
        repr(vars(client)),
        repr(client._http.auth),
        repr(vars(client._http.auth)),  # what a debugger or a traceback's locals show
        repr(Secret(KEY)),
        f"{Secret(KEY)}",
        repr(caught.value),
        str(caught.value),
        repr(caught.value.__dict__),
        caplog.text,
        *(repr(r.__dict__) for r in caplog.records),
    ]
    assert "retry 1 of 3" in caplog.text  # the retries were logged...
    for text in shown:
        assert KEY not in text  # ...and nothing shows the key
    assert "<hidden>" in repr(client)


def test_the_key_cannot_be_pickled_with_the_client() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(FakeApi().client()._http.auth)


def test_retry_after_parsing() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=5), usegmt=True), NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
