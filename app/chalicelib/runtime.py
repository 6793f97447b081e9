"""The objects a Lambda instance builds once and reuses across invocations.

Nothing here runs at import time, and each path imports only what it needs on first use: the
API function never loads the ingest stack and the ingest function never loads the API's (nor
grpc/momento). Importing `app.py` therefore costs little more than importing Chalice.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.ingest import IngestReport
    from chalicelib.settings import Settings
    from chalicelib.store import EventStore, TenantDirectory


@functools.cache
def settings() -> Settings:
    from chalicelib import tables
    from chalicelib.settings import Settings

    value = Settings.from_env()
    tables.configure(value)
    return value


@functools.cache
def tenant_directory() -> TenantDirectory:
    from chalicelib.store import TenantDirectory

    return TenantDirectory(ttl_seconds=settings().tenant_cache_seconds)


@functools.cache
def event_store() -> EventStore:
    from chalicelib.store import EventStore

    return EventStore(settings())


def ingest(envelopes: list[Any]) -> IngestReport:
    from chalicelib.ingest import ingest_envelopes

    return ingest_envelopes(envelopes, tenants=tenant_directory(), store=event_store())
