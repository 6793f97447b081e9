"""SESami's own exceptions. Adapters translate vendor errors into these; nothing above the
adapters catches a botocore or PynamoDB exception by name.

    SesamiError
    ├── MalformedEvent        an ingested event that can never be stored (kept in quarantine)
    ├── ConfigurationError    a setting is missing or has the wrong shape
    └── StorageError          the store refused or failed a write
        ├── TransientStorageError   throttling, timeouts, 5xx: raise so the caller retries
        └── ConcurrentUpdate        an optimistic write lost a race; re-read and try again
"""

from __future__ import annotations


class SesamiError(Exception):
    """Base class of every error SESami raises on purpose."""


class MalformedEvent(SesamiError):
    """The event can never be stored as it is. `reason` names the problem for the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConfigurationError(SesamiError):
    """A setting is missing or malformed."""


class StorageError(SesamiError):
    """The store failed a write."""


class TransientStorageError(StorageError):
    """A failure that a retry can cure (throttling, timeouts). Ingest lets it propagate so that
    Lambda/EventBridge retry the event and, past the retry budget, the DLQ keeps it."""


class ConcurrentUpdate(StorageError):
    """An optimistic (versioned) write lost a race with another writer."""
