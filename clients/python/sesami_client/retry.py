"""When to try a request again, and after how long. Pure functions of their inputs (the clock
and the random draw are arguments), so the schedule is tested without sleeping.

- Only a call that is safe to repeat is retried: GET, PUT and DELETE, or a POST that carries an
  `Idempotency-Key` (SESami replays the first answer to a repeated key instead of sending again).
- What is retried: no answer at all (connection refused, timeout), 429, 502, 503, 504, and a 409
  `idempotency_key_in_use` (the first attempt with this key is still being served).
- How long to wait: the answer's `Retry-After` when it has one (seconds, or an HTTP date), as
  asked; otherwise exponential backoff, capped, with "equal jitter" (half the step fixed, half
  random) so that clients that failed together do not come back together, yet never at once.
- A `Retry-After` longer than `max_retry_after` is not waited for: the error is raised with its
  `retry_after`, for the caller to schedule (a CLI should not hang for minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # the first try and three retries
    base_delay: float = 0.5  # seconds before the first retry, before jitter
    max_delay: float = 20.0  # cap of one computed backoff
    max_retry_after: float = 60.0  # longest Retry-After the client waits for

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, retry: int, draw: float) -> float:
        """The wait before retry number `retry` (1 = the first retry); `draw` is in [0, 1)."""
        step = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return step / 2 + step / 2 * draw

    def delay(self, retry: int, retry_after: float | None, draw: float) -> float | None:
        """How long to wait before retry number `retry`, or None: do not retry."""
        if retry >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(retry, draw)


def safe_to_repeat(method: str, has_idempotency_key: bool) -> bool:
    return method.upper() in SAFE_METHODS or has_idempotency_key


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (RFC 9110: delay-seconds or an HTTP date),
    or None when absent or unreadable. A date in the past means now (0)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
