"""The client and the `sesami` command against the whole local stack, as `make dev` starts it:
send, replay a send by its key, follow the events page by page, a bulk batch to its end, a
suppression added and removed, and the errors a caller meets. The bearer is the demo user's
Cognito ID token (what the local stack signs in with); the tests at the end make `sk_...` API
keys through the API and run the client and the `sesami` command with them.

The demo tenant is shared with the browser tests: every address here is new (a random local
part), so nothing they read changes. SES's events come from the stack's simulator about a second
after a send; waits poll a bounded number of times and never measure time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sesami_client import AuthenticationError, BadRequest, Client, NotFound, PermissionDenied

from tests.live_stack import LiveStack

SENDER = "SESami Demo <news@example.net>"  # example.net is verified in the stack's SES
POLLS = 60
T = TypeVar("T")


def until(probe: Callable[[], T | None], what: str) -> T:
    """The first non-empty result of `probe`, polled at most POLLS times."""
    for _ in range(POLLS):
        result = probe()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not seen after {POLLS} polls")


def new_address(label: str) -> str:
    return f"client-{label}-{uuid.uuid4().hex[:10]}@example.org"


@pytest.fixture(scope="module")
def token(live_stack: LiveStack) -> str:
    return live_stack.token()


@pytest.fixture
def client(live_stack: LiveStack, token: str) -> Iterator[Client]:
    with Client(token, live_stack.url) as sesami:
        yield sesami


def test_send_replay_and_page_through_the_events(client: Client) -> None:
    to = new_address("send")
    sent = client.send(
        from_=SENDER, to=to, subject="Client test", text="Hello", tags={"suite": "client"}
    )
    assert sent["status"] == "sent" and sent["recipients"] == [to] and not sent["replayed"]

    # The same key again: SESami replays the first answer and sends nothing.
    again = client.send(
        from_=SENDER,
        to=to,
        subject="Client test",
        text="Hello",
        tags={"suite": "client"},
        idempotency_key=sent["idempotency_key"],
    )
    assert again["replayed"] is True and again["message_id"] == sent["message_id"]

    # Send, then Delivery (and by chance opens and a click): one event per page.
    def delivered() -> list[Any] | None:
        pages = list(client.event_pages(recipient=to, since="1h", page_size=1))
        statuses = {e["status"] for p in pages for e in p["events"]}
        return pages if {"SENT", "DELIVERED"} <= statuses else None

    pages = until(delivered, "the Delivery event")
    assert len(pages) >= 2
    assert all(len(p["events"]) <= 1 for p in pages)
    assert all(p["next"] for p in pages[:-1]) and pages[-1]["next"] is None
    events = list(client.events(recipient=to, since="1h", page_size=1))
    assert [e["id"] for e in events] == [e["id"] for p in pages for e in p["events"]]
    assert {e["message_id"] for e in events} == {sent["message_id"]}  # one message, not two
    assert [e["status"] for e in client.events(recipient=to, status="DELIVERED", range="24h")] == [
        "DELIVERED"
    ]
    assert any(
        e["message_id"] == sent["message_id"] for e in client.events(tag="suite:client", limit=20)
    )

    message = client.message(sent["message_id"])
    assert message["destination"] == [to]
    assert [e["status"] for e in message["events"]][:2] == ["SENT", "DELIVERED"]
    assert client.recipient(to)["messages"][0]["message_id"] == sent["message_id"]
    assert client.stats(range="24h")["totals"]["SENT"] >= 1


def test_a_bulk_batch_is_followed_to_its_end(client: Client) -> None:
    recipients = [new_address("bulk") for _ in range(3)]
    queued = client.send_bulk(
        from_=SENDER,
        subject="Hello {{name}}",
        text="Hi {{name}}",
        recipients=[{"to": r, "variables": {"name": f"n{i}"}} for i, r in enumerate(recipients)],
    )
    assert queued["status"] in ("queued", "sending", "done") and queued["idempotency_key"]
    states = list(client.batch_progress(queued["batch_id"], interval=0.5))
    assert len(states) <= POLLS
    done = states[-1]
    assert done["status"] == "done" and done["counts"]["sent"] == 3
    assert sorted(r["address"] for r in done["results"]) == sorted(recipients)
    assert client.wait_for_batch(queued["batch_id"])["status"] == "done"


def test_a_suppression_is_added_enforced_and_removed(client: Client) -> None:
    address = new_address("suppressed")
    added = client.add_suppression(address, "client test")
    assert added["created"] is True and added["reason"] == "MANUAL"
    assert client.suppression(address)["suppressed"] is True
    assert [e["address"] for e in client.suppressions(q=address)] == [address]

    with pytest.raises(BadRequest) as refused:
        client.send(from_=SENDER, to=address, subject="No", text="Suppressed")
    assert refused.value.code == "recipients_suppressed"
    assert refused.value.details["suppressed"][0]["address"] == address

    removed = client.remove_suppression(address, "client test: done")
    assert removed["suppressed"] is False
    assert list(client.suppressions(q=address)) == []
    tombstone = client.suppression(address)
    assert tombstone["suppressed"] is False
    assert tombstone["last_change"]["why"] == "client test: done"


def test_the_suppression_list_pages(client: Client) -> None:
    prefix = f"client-page-{uuid.uuid4().hex[:8]}-"
    addresses = [f"{prefix}{n}@example.org" for n in range(3)]
    for address in addresses:
        client.add_suppression(address, "paging test")
    pages = list(client.suppression_pages(q=prefix, page_size=2))
    assert [len(p["items"]) for p in pages] == [2, 1]
    assert [e["address"] for e in client.suppressions(q=prefix, page_size=1)] == addresses
    for address in addresses:
        client.remove_suppression(address)


def test_errors_from_the_live_api(client: Client, live_stack: LiveStack) -> None:
    with pytest.raises(NotFound) as missing:
        client.message("not-a-message")
    assert missing.value.code == "not_found"
    with Client("not-a-token", live_stack.url) as stranger, pytest.raises(AuthenticationError):
        stranger.account()


# ---------------------------------------------------------------------------- the command line


def sesami_command() -> Path:
    path = Path(sys.executable).parent / "sesami"
    if not path.exists():
        pytest.fail(f"{path} is missing: `make install` installs the client (-e ./clients/python)")
    return path


def test_the_command_line_sends_lists_and_edits_the_suppression_list(
    live_stack: LiveStack, token: str
) -> None:
    env = {**os.environ, "SESAMI_URL": live_stack.url, "SESAMI_API_KEY": token}
    command = sesami_command()

    def sesami(*argv: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(command), *argv], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert token not in done.stdout + done.stderr
        return done

    def ok(*argv: str) -> str:
        done = sesami(*argv)
        assert done.returncode == 0, (argv, done.stderr)
        return done.stdout

    to = new_address("cli")
    sent = json.loads(
        ok("send", "--from", SENDER, "--to", to, "--subject", "CLI", "--text", "Hi", "--json")
    )
    assert uuid.UUID(sent["idempotency_key"]).version == 4

    def listed() -> list[Any] | None:
        events = json.loads(ok("events", "--recipient", to, "--since", "1h", "--json"))
        return events if "DELIVERED" in {e["status"] for e in events} else None

    events = until(listed, "the Delivery event, through the CLI")
    assert {e["message_id"] for e in events} == {sent["message_id"]}
    table = ok("events", "--recipient", to, "--since", "1h", "--status", "SENT,DELIVERED")
    assert table.splitlines()[0].split()[:2] == ["AT", "STATUS"] and to in table
    csv = ok("events", "--recipient", to, "--since", "1h", "--csv")
    assert csv.startswith("at,status,") and sent["message_id"] in csv
    assert sent["message_id"] in ok("message", sent["message_id"])
    assert "bounce rate" in ok("stats", "--range", "7d")

    address = new_address("cli-suppressed")
    assert f"{address}: suppressed" in ok("suppression", "add", address, "--reason", "cli")
    assert address in ok("suppression", "list", "--q", address)
    assert json.loads(ok("suppression", "get", address, "--json"))["suppressed"] is True
    refused = sesami("send", "--from", SENDER, "--to", address, "--subject", "S", "--text", "T")
    assert refused.returncode == 1 and "recipients_suppressed" in refused.stderr
    assert address in refused.stderr
    assert "removed" in ok("suppression", "remove", address, "--reason", "cli done")
    assert json.loads(ok("suppression", "get", address, "--json"))["suppressed"] is False

    missing = sesami("message", "not-a-message")
    assert missing.returncode == 1 and "404 not_found" in missing.stderr
    assert sesami("events", "--since", "yesterday").returncode == 2
    unauthorized = subprocess.run(
        [str(command), "stats"],
        env={**env, "SESAMI_API_KEY": "not-a-token"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unauthorized.returncode == 1 and "401" in unauthorized.stderr


def _make_key(live_stack: LiveStack, token: str, scope: str) -> tuple[str, str]:
    """A real `sk_` key of `scope`, made through the API by the demo admin: (key, its ID)."""
    made = httpx.post(
        f"{live_stack.url}/api-keys",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": f"cli live test {scope}", "scope": scope},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    return made.json()["key"], made.json()["id"]


def test_the_command_line_with_api_keys_sends_lists_and_edits_within_each_scope(
    live_stack: LiveStack, token: str
) -> None:
    """`sesami` as a program runs it: SESAMI_API_KEY holds an `sk_` key, never a person's token.
    A send key sends, reads the events and adds a suppression; removing one needs an admin key."""
    command = sesami_command()
    send_key, send_id = _make_key(live_stack, token, "send")
    admin_key, admin_id = _make_key(live_stack, token, "admin")

    def sesami(key: str, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SESAMI_URL": live_stack.url, "SESAMI_API_KEY": key}
        done = subprocess.run(
            [str(command), *argv], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert key not in done.stdout + done.stderr and key[20:] not in done.stderr
        return done

    def ok(key: str, *argv: str) -> str:
        done = sesami(key, *argv)
        assert done.returncode == 0, (argv, done.stderr)
        return done.stdout

    try:
        to = new_address("cli-key")
        sent = json.loads(
            ok(
                send_key,
                "send",
                "--from",
                SENDER,
                "--to",
                to,
                "--subject",
                "Key",
                "--text",
                "Hi",
                "--json",
            )
        )
        assert sent["status"] == "sent" and sent["recipients"] == [to]

        def listed() -> list[Any] | None:
            out = ok(
                send_key,
                "events",
                "--status",
                "DELIVERED",
                "--since",
                "7d",
                "--recipient",
                to,
                "--json",
            )
            events: list[Any] = json.loads(out)
            return events or None

        delivered = until(listed, "the Delivery event, through the CLI with a send key")
        assert [(e["status"], e["message_id"]) for e in delivered] == [
            ("DELIVERED", sent["message_id"])
        ]
        table = ok(send_key, "events", "--status", "SENT", "--since", "7d", "--recipient", to)
        assert to in table and "DELIVERED" not in table and "SENT" in table

        address = new_address("cli-key-suppressed")
        added = json.loads(
            ok(send_key, "suppression", "add", address, "--reason", "cli key", "--json")
        )
        assert added["created"] is True
        assert added["last_change"]["by"].startswith("api key cli live test send (sk_")
        assert address in ok(send_key, "suppression", "list", "--q", address)
        refused = sesami(send_key, "suppression", "remove", address, "--reason", "not mine")
        assert refused.returncode == 1, refused.stderr
        assert "403" in refused.stderr and "permission: admin" in refused.stderr
        assert address in ok(send_key, "suppression", "list", "--q", address)  # still there
        assert "removed" in ok(admin_key, "suppression", "remove", address, "--reason", "done")
        assert address not in ok(send_key, "suppression", "list", "--q", address)
    finally:
        for key_id in (send_id, admin_id):
            gone = httpx.delete(
                f"{live_stack.url}/api-keys/{key_id}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            assert gone.status_code == 200, gone.text
    revoked = sesami(send_key, "suppression", "list", "--q", address)
    assert revoked.returncode == 1 and "401" in revoked.stderr


def test_an_api_key_made_through_the_api_sends_reads_and_suppresses_within_its_scope(
    live_stack: LiveStack, token: str
) -> None:
    admin = {"Authorization": f"Bearer {token}"}
    made = httpx.post(
        f"{live_stack.url}/api-keys",
        headers=admin,
        json={"name": "client live test", "scope": "send"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    to, suppressed = new_address("key"), new_address("key-suppressed")
    with Client(key, live_stack.url) as sesami:
        sent = sesami.send(from_=SENDER, to=to, subject="Sent with a key", text="Hello")
        assert sent["status"] == "sent"

        def delivered() -> list[Any] | None:
            statuses = {e["status"] for e in sesami.events(recipient=to, since="1h")}
            return sorted(statuses) if {"SENT", "DELIVERED"} <= statuses else None

        until(delivered, "the key's message delivered")
        added = sesami.add_suppression(suppressed, "added by a key")
        assert added["created"] is True
        assert added["last_change"]["by"].startswith("api key client live test (sk_")
        # A send key may add a suppression, not remove one: that is an admin's.
        with pytest.raises(PermissionDenied) as refused:
            sesami.remove_suppression(suppressed, "not mine to remove")
        assert refused.value.details["permission"] == "admin"

        revoked = httpx.delete(f"{live_stack.url}/api-keys/{key_id}", headers=admin, timeout=30)
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        with pytest.raises(AuthenticationError):
            sesami.suppression(suppressed)
    with Client(token, live_stack.url) as person:
        person.remove_suppression(suppressed, "client live test: done")
    # Nothing the stack wrote while the key was used contains it.
    log = (live_stack.dev_dir / "stack.log").read_text()
    assert key[20:] not in log and key not in log
