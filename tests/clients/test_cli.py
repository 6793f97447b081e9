"""The `sesami` command against a scripted SESami: what it sends, what it prints (tables, JSON,
CSV), and its exit status (0 done, 1 SESami refused, 2 wrong usage)."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from sesami_client.cli import run

from tests.clients.fake_api import KEY, FakeApi, error, reply
from tests.clients.test_client import SENT, event


def sesami(api: FakeApi, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), client_factory=lambda args: api.client(), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_send_posts_the_mail_and_prints_the_message_id() -> None:
    api = FakeApi(reply(200, SENT))
    status, out, err = sesami(
        api,
        "send",
        "--from",
        "news@example.com",
        "--to",
        "ada@example.org",
        "--to",
        "bo@example.org",
        "--subject",
        "Hi",
        "--html",
        "<p>Hello</p>",
        "--tag",
        "campaign=spring",
        "--idempotency-key",
        "order-7",
    )
    assert (status, err) == (0, "")
    assert f"sent {SENT['message_id']} to ada@example.org" in out
    assert "idempotency key order-7" in out
    assert api.requests[0].headers["Idempotency-Key"] == "order-7"
    assert api.bodies()[0] == {
        "from": "news@example.com",
        "to": ["ada@example.org", "bo@example.org"],
        "subject": "Hi",
        "html": "<p>Hello</p>",
        "tags": {"campaign": "spring"},
    }


def test_send_with_json_prints_sesamis_answer() -> None:
    api = FakeApi(reply(200, SENT))
    status, out, _ = sesami(
        api,
        "send",
        "--from",
        "a@x.com",
        "--to",
        "b@y.com",
        "--subject",
        "S",
        "--text",
        "T",
        "--json",
    )
    printed = json.loads(out)
    assert status == 0 and printed["message_id"] == SENT["message_id"]
    assert printed["idempotency_key"] == api.requests[0].headers["Idempotency-Key"]


def test_events_as_a_table_as_json_and_as_csv() -> None:
    page = {"events": [event(1), event(2)], "next": None}
    api = FakeApi(
        reply(200, page),
        reply(200, page),
        httpx.Response(
            200, headers={"Content-Type": "text/csv"}, content=b"at,status\nx,BOUNCED\n"
        ),
    )
    status, out, _ = sesami(api, "events", "--status", "BOUNCED", "--since", "7d")
    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == ["AT", "STATUS", "RECIPIENT", "SUBJECT", "MESSAGE"]
    assert "r1@example.org" in lines[1] and "BOUNCED" in lines[1] and len(lines) == 3
    assert api.params(0) == [("range", "7d"), ("status", "BOUNCED"), ("limit", "50")]

    status, out, _ = sesami(api, "events", "--status", "BOUNCED", "--json", "--all")
    assert status == 0 and [e["id"] for e in json.loads(out)] == ["e1", "e2"]
    assert ("limit", "100") in api.params(1)

    status, out, _ = sesami(api, "events", "--status", "BOUNCED", "--csv")
    assert (status, out) == (0, "at,status\nx,BOUNCED\n")


def test_the_suppression_commands() -> None:
    entry: dict[str, Any] = {
        "address": "ada@example.org",
        "suppressed": True,
        "reason": "MANUAL",
        "reasons": ["MANUAL"],
        "note": "asked",
        "created_at": "2026-05-01T12:00:00Z",
        "created_by": "demo@example.com",
        "removed_at": None,
        "removed_by": None,
        "last_change": {"at": "t", "by": "demo", "action": "added", "why": "asked"},
        "history": [{"at": "t", "by": "demo", "action": "added", "why": "asked"}],
    }
    api = FakeApi(
        reply(200, {**entry, "created": True}),
        reply(200, {"items": [entry], "next": None}),
        reply(200, entry),
        reply(200, {**entry, "suppressed": False, "removed_at": "t2", "removed_by": "demo"}),
    )
    status, out, _ = sesami(api, "suppression", "add", "ada@example.org", "--reason", "asked")
    assert status == 0 and "ada@example.org: suppressed" in out
    status, out, _ = sesami(api, "suppression", "list", "--q", "ada")
    assert status == 0 and out.splitlines()[1].startswith("ada@example.org")
    status, out, _ = sesami(api, "suppression", "get", "ada@example.org", "--json")
    assert status == 0 and json.loads(out)["history"][0]["why"] == "asked"
    status, out, _ = sesami(api, "suppression", "remove", "ada@example.org", "--reason", "ok")
    assert status == 0 and "removed from the suppression list" in out
    assert [r.method for r in api.requests] == ["PUT", "GET", "GET", "DELETE"]


def test_an_api_error_exits_1_and_names_the_problem_on_stderr() -> None:
    api = FakeApi(error(400, "recipients_suppressed", "on the suppression list", {"field": "to"}))
    status, out, err = sesami(
        api, "send", "--from", "a@x.com", "--to", "bounce@y.com", "--subject", "S", "--text", "T"
    )
    assert (status, out) == (1, "")
    assert "400 recipients_suppressed: on the suppression list (field: to)" in err
    assert "POST /mail" in err

    missing = FakeApi(error(404, "not_found", "no message 'nope' for this tenant"))
    status, _, err = sesami(missing, "message", "nope")
    assert status == 1 and "no message 'nope'" in err


def test_no_answer_at_all_exits_1() -> None:
    api = FakeApi(*[httpx.ConnectError("refused")] * 4)
    status, _, err = sesami(api, "stats", "--range", "7d")
    assert status == 1 and "no answer from SESami" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "--from", "a@x.com", "--subject", "S", "--text", "T"],  # no recipient
        ["send", "--from", "a@x.com", "--to", "b@y.com", "--subject", "S"],  # no body
        [
            "send",
            "--from",
            "a@x.com",
            "--to",
            "b@y.com",
            "--subject",
            "S",
            "--text",
            "T",
            "--tag",
            "nonsense",
        ],
        ["events", "--since", "yesterday"],
        ["events", "--range", "7d", "--since", "2d"],
        ["events", "--csv", "--limit", "5"],
        ["events", "--limit", "0"],
        ["stats", "--range", "8d"],
        ["suppression", "add", "ada@example.org"],  # --reason is required
        ["frobnicate"],
        [],
    ],
)
def test_wrong_usage_exits_2_without_calling_sesami(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi()
    status, _, _ = sesami(api, *argv)
    assert status == 2
    assert api.requests == []


def test_no_key_in_the_environment_is_a_usage_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SESAMI_API_KEY", raising=False)
    monkeypatch.setenv("SESAMI_URL", "http://127.0.0.1:9")
    err = io.StringIO()
    assert run(["stats"], stderr=err) == 2
    assert "SESAMI_API_KEY" in err.getvalue()


def test_the_key_is_never_printed_even_on_errors() -> None:
    api = FakeApi(error(401, "unauthorized", "invalid token"))
    status, out, err = sesami(api, "stats")
    assert status == 1 and KEY not in out + err
