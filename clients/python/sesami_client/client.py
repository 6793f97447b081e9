"""`Client`: SESami's REST API as typed Python methods.

    from sesami_client import Client

    with Client() as sesami:                      # SESAMI_API_KEY, SESAMI_URL
        sent = sesami.send(from_="news@example.com", to="ada@example.org",
                           subject="Hello", text="Hi Ada")
        for event in sesami.events(status="BOUNCED", since="7d"):
            print(event["recipient"], event["detail"].get("bounce_type"))

Lists page themselves: `events()` and `suppressions()` follow SESami's opaque `next` cursor
lazily, one request per page, for as long as the caller iterates. Every send carries an
`Idempotency-Key` (a fresh uuid4 unless one is given), so a retry after a lost answer can never
send twice; see retry.py for what is retried. Failures raise the exceptions of errors.py.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

import httpx

from sesami_client._http import BearerAuth, Params, Requester, Secret
from sesami_client._version import __version__
from sesami_client.errors import BatchTimeout, ConfigurationError, InvalidResponse
from sesami_client.params import When, status_params, tag_param, time_params
from sesami_client.retry import RetryPolicy
from sesami_client.types import (
    FINISHED,
    Account,
    Address,
    Batch,
    BulkRecipient,
    Event,
    EventPage,
    Links,
    MailSent,
    Message,
    MessageEvent,
    Recipient,
    Stats,
    Suppression,
    SuppressionPage,
)

ENV_API_KEY = "SESAMI_API_KEY"
ENV_URL = "SESAMI_URL"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MAX_PAGE = 100  # SESami's largest page
MAX_TIMELINE_PAGE = 500  # GET /messages/{id}'s largest page of events
MAX_IDEMPOTENCY_KEY = 255
CSV_NEXT = "x-sesami-next"


def _now() -> datetime:
    return datetime.now(UTC)


def _segment(value: str) -> str:
    """One path segment: everything but '@' percent-encoded (SESami decodes it)."""
    if not value:
        raise ValueError("an empty path segment")
    return quote(value, safe="@")


def _page_size(value: int) -> str:
    if not 1 <= value <= MAX_PAGE:
        raise ValueError(f"page_size must be 1-{MAX_PAGE}")
    return str(value)


def _timeline_page(value: int) -> str:
    if not 1 <= value <= MAX_TIMELINE_PAGE:
        raise ValueError(f"page_size must be 1-{MAX_TIMELINE_PAGE}")
    return str(value)


def _checked_key(key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise ValueError(
            f"an idempotency key is 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return key


def _addresses(value: Address | Sequence[Address]) -> Address | list[Address]:
    return value if isinstance(value, str | dict) else list(value)


class Client:
    """A SESami API client. `api_key` and `base_url` default to the environment variables
    SESAMI_API_KEY and SESAMI_URL; an argument beats the environment. The key may be an API key
    (`sk_...`) or a Cognito ID token. `sleep`, `now`, `monotonic` and `transport` are for tests
    (e.g. `httpx.MockTransport`)."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        idempotency_keys: bool = True,
        transport: httpx.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _now,
        monotonic: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        env = os.environ if environ is None else environ
        key = api_key if api_key is not None else env.get(ENV_API_KEY)
        url = base_url if base_url is not None else env.get(ENV_URL)
        if not key:
            raise ConfigurationError(f"no API key: pass api_key or set {ENV_API_KEY}")
        if not url:
            raise ConfigurationError(
                f"no SESami URL: pass base_url or set {ENV_URL} (e.g. https://api.example.com/api)"
            )
        parsed = httpx.URL(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigurationError(f"{ENV_URL} must be an http(s) URL, not {url[:80]!r}")
        self.base_url = str(parsed).rstrip("/")
        self._idempotency_keys = idempotency_keys
        self._now = now
        self._monotonic = monotonic
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=BearerAuth(Secret(key)),
            timeout=timeout,
            transport=transport,
            headers={
                "User-Agent": f"sesami-client/{__version__} httpx/{httpx.__version__}",
                "Accept": "application/json",
            },
        )
        self._requests = Requester(
            self._http, retry or RetryPolicy(), sleep=sleep, now=now, draw=draw
        )

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r}, api_key=<hidden>)"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ plumbing

    def _json(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        answer = self._requests.call(method, path, params=params, json=body, headers=headers)
        if not isinstance(answer.body, dict):
            raise InvalidResponse(f"{method} {path}: expected a JSON object", status=answer.status)
        return answer.body

    def _key_headers(self, idempotency_key: str | None) -> dict[str, str]:
        if idempotency_key is None and self._idempotency_keys:
            idempotency_key = str(uuid.uuid4())
        return {} if idempotency_key is None else {"Idempotency-Key": _checked_key(idempotency_key)}

    def _post_send(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> Any:
        headers = self._key_headers(idempotency_key)
        answer = self._requests.call("POST", path, json=body, headers=headers)
        if not isinstance(answer.body, dict):
            raise InvalidResponse(f"POST {path}: expected a JSON object", status=answer.status)
        result = dict(answer.body)
        if "Idempotency-Key" in headers:
            result["idempotency_key"] = headers["Idempotency-Key"]
        result["replayed"] = answer.headers.get("idempotent-replayed", "").lower() == "true"
        return result

    def _time(
        self,
        range: str | None,
        since: timedelta | str | None,
        from_: When | None,
        to: When | None,
    ) -> Params:
        return time_params(range=range, since=since, from_=from_, to=to, now=self._now())

    # ------------------------------------------------------------------------ account

    def account(self) -> Account:
        """The tenant and its AWS account (also a cheap check that the key works)."""
        return cast(Account, self._json("GET", "/account"))

    # ------------------------------------------------------------------------ sending

    def send(
        self,
        *,
        from_: Address,
        to: Address | Sequence[Address] | None = None,
        subject: str,
        text: str | None = None,
        html: str | None = None,
        cc: Address | Sequence[Address] | None = None,
        bcc: Address | Sequence[Address] | None = None,
        reply_to: Address | Sequence[Address] | None = None,
        tags: Mapping[str, str] | None = None,
        configuration_set: str | None = None,
        skip_suppressed: bool = False,
        idempotency_key: str | None = None,
    ) -> MailSent:
        """POST /mail: one message through SES in the tenant's account. Give text, html or both.
        A suppressed recipient makes it a 400 (BadRequest) unless `skip_suppressed`."""
        if text is None and html is None:
            raise ValueError("give text, html or both")
        body: dict[str, Any] = {"from": from_, "subject": subject}
        for name, value in (("to", to), ("cc", cc), ("bcc", bcc), ("reply_to", reply_to)):
            if value is not None:
                body[name] = _addresses(value)
        for name, text_value in (("text", text), ("html", html)):
            if text_value is not None:
                body[name] = text_value
        if tags:
            body["tags"] = dict(tags)
        if configuration_set is not None:
            body["configuration_set"] = configuration_set
        if skip_suppressed:
            body["skip_suppressed"] = True
        return cast(MailSent, self._post_send("/mail", body, idempotency_key))

    def send_bulk(
        self,
        *,
        from_: Address,
        subject: str,
        recipients: Sequence[BulkRecipient | Address],
        text: str | None = None,
        html: str | None = None,
        reply_to: Address | Sequence[Address] | None = None,
        tags: Mapping[str, str] | None = None,
        configuration_set: str | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """POST /mail/bulk: one template (`{{name}}` placeholders) for up to 1,000 recipients,
        each a plain address or {"to": ..., "variables": {...}}. Returns the queued batch; follow
        it with `batch_progress` or `wait_for_batch`."""
        if text is None and html is None:
            raise ValueError("give text, html or both")
        template: dict[str, str] = {"subject": subject}
        if text is not None:
            template["text"] = text
        if html is not None:
            template["html"] = html
        body: dict[str, Any] = {
            "from": from_,
            "template": template,
            "recipients": [
                r if isinstance(r, dict) and "to" in r else {"to": r} for r in recipients
            ],
        }
        if reply_to is not None:
            body["reply_to"] = _addresses(reply_to)
        if tags:
            body["tags"] = dict(tags)
        if configuration_set is not None:
            body["configuration_set"] = configuration_set
        return cast(Batch, self._post_send("/mail/bulk", body, idempotency_key))

    def batch(self, batch_id: str) -> Batch:
        """GET /mail/bulk/{batch_id}: progress, counts and one result per recipient."""
        return cast(Batch, self._json("GET", f"/mail/bulk/{_segment(batch_id)}"))

    def batch_progress(self, batch_id: str, *, interval: float = 1.0) -> Iterator[Batch]:
        """Each state of the batch, polled every `interval` seconds, until it is done or
        incomplete (the last one yielded is final)."""
        if interval < 0:
            raise ValueError("interval must not be negative")

        def poll() -> Iterator[Batch]:
            while True:
                state = self.batch(batch_id)
                yield state
                if state["status"] in FINISHED:
                    return
                self._sleep(interval)

        return poll()

    def wait_for_batch(
        self, batch_id: str, *, interval: float = 1.0, timeout: float | None = 600.0
    ) -> Batch:
        """The batch once done or incomplete; BatchTimeout after `timeout` seconds."""
        deadline = None if timeout is None else self._monotonic() + timeout
        last: Batch | None = None
        for last in self.batch_progress(batch_id, interval=interval):
            if last["status"] in FINISHED:
                return last
            if deadline is not None and self._monotonic() >= deadline:
                progress = last["progress"]
                raise BatchTimeout(
                    f"batch {batch_id} still {last['status']} after {timeout:g} s "
                    f"({progress['processed']} of {progress['total']} processed)",
                    batch=last,
                )
        raise InvalidResponse(f"batch {batch_id}: polling ended unfinished", status=200)

    # ------------------------------------------------------------------------ history

    def event_pages(
        self,
        *,
        status: str | Iterable[str] | None = None,
        recipient: str | None = None,
        tag: tuple[str, str] | str | None = None,
        range: str | None = None,
        since: timedelta | str | None = None,
        from_: When | None = None,
        to: When | None = None,
        page_size: int = MAX_PAGE,
        cursor: str | None = None,
    ) -> Iterator[EventPage]:
        """GET /events, page after page (newest first), following the `next` cursor. `status`
        is one status, several ("BOUNCED,COMPLAINED" or a list); `tag` is (name, value) or
        "name:value". Pass `cursor` to resume where an earlier page left off."""
        params = [
            *self._time(range, since, from_, to),
            *status_params(status),
            *([("recipient", recipient)] if recipient else []),
            *tag_param(tag),
            ("limit", _page_size(page_size)),
        ]
        pages: Iterator[EventPage] = self._pages("/events", params, cursor)
        return pages

    def events(
        self,
        *,
        status: str | Iterable[str] | None = None,
        recipient: str | None = None,
        tag: tuple[str, str] | str | None = None,
        range: str | None = None,
        since: timedelta | str | None = None,
        from_: When | None = None,
        to: When | None = None,
        page_size: int = MAX_PAGE,
        limit: int | None = None,
    ) -> Iterator[Event]:
        """Every event the filters select, newest first, fetched a page at a time as the
        iteration goes; at most `limit` of them."""
        pages = self.event_pages(
            status=status,
            recipient=recipient,
            tag=tag,
            range=range,
            since=since,
            from_=from_,
            to=to,
            page_size=page_size if limit is None else min(page_size, max(limit, 1)),
        )
        return _items(pages, "events", limit)

    def events_csv(
        self,
        *,
        status: str | Iterable[str] | None = None,
        recipient: str | None = None,
        tag: tuple[str, str] | str | None = None,
        range: str | None = None,
        since: timedelta | str | None = None,
        from_: When | None = None,
        to: When | None = None,
    ) -> Iterator[str]:
        """SESami's CSV export of the events (the dashboard's): chunks of text, one header line
        first; a long export is several answers, joined here (header X-SESami-Next)."""
        base = [
            *self._time(range, since, from_, to),
            *status_params(status),
            *([("recipient", recipient)] if recipient else []),
            *tag_param(tag),
            ("format", "csv"),
        ]

        def chunks() -> Iterator[str]:
            cursor: str | None = None
            first = True
            while True:
                params = base + ([("next", cursor)] if cursor else [])
                answer = self._requests.call("GET", "/events", params=params)
                text = answer.body if isinstance(answer.body, str) else ""
                if not first:
                    text = text.split("\n", 1)[1] if "\n" in text else ""
                yield text
                first = False
                following = answer.headers.get(CSV_NEXT)
                if not following or following == cursor:
                    return
                cursor = following

        return chunks()

    def message(
        self, message_id: str, *, page_size: int | None = None, cursor: str | None = None
    ) -> Message:
        """GET /messages/{id}: summary, recipients, opens, clicks, and the first page of the
        timeline (oldest first; `next` continues it, see `message_events`)."""
        params: list[tuple[str, str]] = []
        if page_size is not None:
            params.append(("limit", _timeline_page(page_size)))
        if cursor is not None:
            params.append(("next", cursor))
        return cast(Message, self._json("GET", f"/messages/{_segment(message_id)}", params))

    def message_events(self, message_id: str, *, page_size: int = 100) -> Iterator[MessageEvent]:
        """Every event of the message's timeline, oldest first, a page at a time."""
        path = f"/messages/{_segment(message_id)}"
        pages = self._pages(path, [("limit", _timeline_page(page_size))], None)
        return cast(Iterator[MessageEvent], _items(pages, "events", None))

    def recipient(
        self,
        email: str,
        *,
        range: str | None = None,
        since: timedelta | str | None = None,
        from_: When | None = None,
        to: When | None = None,
        limit: int | None = None,
    ) -> Recipient:
        """GET /recipients/{email}: every message to the address (default: the last year), what
        they did with it, and whether it is suppressed."""
        params = self._time(range, since, from_, to)
        if limit is not None:
            params.append(("limit", _page_size(limit)))
        return cast(Recipient, self._json("GET", f"/recipients/{_segment(email)}", params))

    def links(
        self,
        *,
        range: str | None = None,
        since: timedelta | str | None = None,
        from_: When | None = None,
        to: When | None = None,
        top: int | None = None,
    ) -> Links:
        """GET /links: clicks per link over the range (counted per UTC day), the top N."""
        params = self._time(range, since, from_, to)
        if top is not None:
            params.append(("top", _page_size(top)))
        return cast(Links, self._json("GET", "/links", params))

    def stats(
        self,
        *,
        range: str | None = None,
        since: timedelta | str | None = None,
        from_: When | None = None,
        to: When | None = None,
        interval: str | None = None,
    ) -> Stats:
        """GET /stats: counts per status per hour or day, totals, bounce and complaint rates
        against SES's review and pause lines."""
        params = self._time(range, since, from_, to)
        if interval is not None:
            if interval not in ("hour", "day"):
                raise ValueError("interval must be hour or day")
            params.append(("interval", interval))
        return cast(Stats, self._json("GET", "/stats", params))

    # ------------------------------------------------------------------------ suppression

    def suppression_pages(
        self,
        *,
        q: str | None = None,
        reason: str | None = None,
        removed: bool = False,
        page_size: int = MAX_PAGE,
        cursor: str | None = None,
    ) -> Iterator[SuppressionPage]:
        """GET /suppression-list page after page, in address order. `q` is the start of the
        address; `reason` BOUNCE, COMPLAINT, MANUAL or UNSUBSCRIBED; `removed` lists the
        tombstones of removed addresses instead."""
        params: Params = [("limit", _page_size(page_size))]
        if q:
            params.append(("q", q))
        if reason:
            params.append(("reason", reason.upper()))
        if removed:
            params.append(("removed", "true"))
        pages: Iterator[SuppressionPage] = self._pages("/suppression-list", params, cursor)
        return pages

    def suppressions(
        self,
        *,
        q: str | None = None,
        reason: str | None = None,
        removed: bool = False,
        page_size: int = MAX_PAGE,
        limit: int | None = None,
    ) -> Iterator[Suppression]:
        """Every entry the filters select, fetched a page at a time; at most `limit`."""
        pages = self.suppression_pages(
            q=q,
            reason=reason,
            removed=removed,
            page_size=page_size if limit is None else min(page_size, max(limit, 1)),
        )
        return _items(pages, "items", limit)

    def suppression(self, email: str) -> Suppression:
        """GET /suppression-list/{email}: the entry and its history, or the tombstone (who
        removed it and when); NotFound if it was never suppressed."""
        return cast(Suppression, self._json("GET", f"/suppression-list/{_segment(email)}"))

    def add_suppression(self, email: str, reason: str) -> Suppression:
        """PUT /suppression-list/{email}: suppress by hand (reason MANUAL). `reason` says why,
        for the history; an existing entry keeps its reason and gets this note (`created` is
        false)."""
        body = {"reason": reason}
        return cast(
            Suppression, self._json("PUT", f"/suppression-list/{_segment(email)}", body=body)
        )

    def remove_suppression(self, email: str, reason: str | None = None) -> Suppression:
        """DELETE /suppression-list/{email}: the address can be mailed again; the tombstone
        keeps who, when and `reason`. NotFound if it is not suppressed."""
        params: Params = [("reason", reason)] if reason else []
        return cast(
            Suppression, self._json("DELETE", f"/suppression-list/{_segment(email)}", params)
        )

    # ------------------------------------------------------------------------ paging

    def _pages(self, path: str, params: Params, cursor: str | None) -> Any:
        def pages() -> Iterator[Any]:
            seen: str | None = cursor
            while True:
                page = self._json("GET", path, params + ([("next", seen)] if seen else []))
                yield page
                following = page.get("next")
                if not following:
                    return
                if following == seen:  # a server that does not advance would loop forever
                    raise InvalidResponse(f"GET {path}: the same cursor twice", status=200)
                seen = following

        return pages()


def _items(pages: Iterator[Any], field: str, limit: int | None) -> Iterator[Any]:
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")

    def items() -> Iterator[Any]:
        count = 0
        for page in pages:
            for item in page.get(field, []):
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return

    return items()
