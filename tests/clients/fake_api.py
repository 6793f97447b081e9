"""A scripted SESami for the client's unit tests, behind httpx.MockTransport: each request is
recorded, and answered by the next scripted answer (or a route function)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sesami_client import Client, RetryPolicy

KEY = "sk_test_5fN2kQ9wXr7LmT3vB8yZ"  # what must never show
URL = "https://sesami.example.com/api"
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def reply(status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        headers={
            "Content-Type": "application/json",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        },
        content=json.dumps({} if body is None else body).encode(),
    )


def error(
    status: int, code: str, message: str, details: Any = None, **headers: str
) -> httpx.Response:
    return reply(
        status, {"error": {"code": code, "message": message, "details": details}}, **headers
    )


class FakeApi:
    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.clock = 0.0  # what `monotonic` reads; each sleep advances it

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds

    def client(self, *, draw: float = 0.5, **options: Any) -> Client:
        options.setdefault("retry", RetryPolicy())
        return Client(
            KEY,
            URL,
            transport=httpx.MockTransport(self.handler),
            sleep=self.sleep,
            now=lambda: NOW,
            monotonic=lambda: self.clock,
            draw=lambda: draw,
            **options,
        )

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]

    def params(self, n: int) -> list[tuple[str, str]]:
        return list(self.requests[n].url.params.multi_items())
