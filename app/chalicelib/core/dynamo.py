"""The one translation of DynamoDB errors (PynamoDB's and botocore's) into SESami's.

    with dynamo.storage("batch read"):       # any failure -> TransientStorageError
        item = BatchModel.get(...)
    if dynamo.write_if("claim", lambda: item.save(condition=...)): ...   # False: condition lost
    if dynamo.condition_failed(exc): ...     # a conditional write or transaction lost
    item = dynamo.get(Model, hash_key, range_key)   # consistent read; None if absent

`TransientStorageError` is what every storage module raises when DynamoDB throttles, times out
or fails: ingest lets it propagate (Lambda retries the event), and the API's one error map
(core/api.py) answers it with a 503 and `retryable: true` on every route. `is_storage_failure`
lets that map recognise a PynamoDB error that no storage module translated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from chalicelib.core.errors import TransientStorageError

_M = TypeVar("_M")
CONDITION_CODES = frozenset({"ConditionalCheckFailed", "TransactionConflict"})


@contextmanager
def storage(what: str) -> Iterator[None]:
    """Run DynamoDB calls; any failure of the store leaves as TransientStorageError."""
    from pynamodb.exceptions import PynamoDBException

    try:
        yield
    except PynamoDBException as exc:
        raise TransientStorageError(f"{what} failed: {exc}") from exc


def condition_failed(exc: BaseException) -> bool:
    """True when a conditional write, or a transaction, was refused by its condition."""
    from pynamodb.exceptions import PynamoDBException, TransactWriteError

    if isinstance(exc, TransactWriteError):
        codes = {r.code if r else None for r in exc.cancellation_reasons}
        return bool(codes & CONDITION_CODES)
    return (
        isinstance(exc, PynamoDBException)
        and exc.cause_response_code == "ConditionalCheckFailedException"
    )


def write_if(what: str, write: Callable[[], object]) -> bool:
    """Run a conditional write: True when it was made, False when its condition refused it;
    any other failure leaves as TransientStorageError."""
    from pynamodb.exceptions import PynamoDBException

    try:
        write()
    except PynamoDBException as exc:
        if condition_failed(exc):
            return False
        raise TransientStorageError(f"{what} failed: {exc}") from exc
    return True


def get(model: type[_M], hash_key: str, range_key: str | None = None) -> _M | None:
    """A consistent read of one item; None when it does not exist."""
    from pynamodb.exceptions import DoesNotExist

    name = model.Meta.table_name  # type: ignore[attr-defined]
    with storage(f"{name} read"):
        try:
            item: _M = model.get(hash_key, range_key, consistent_read=True)  # type: ignore[attr-defined]
        except DoesNotExist:
            return None
    return item


def is_storage_failure(exc: BaseException) -> bool:
    """A failure of DynamoDB that reached the API untranslated (throttling on a read, say)."""
    if isinstance(exc, TransientStorageError):
        return True
    from pynamodb.exceptions import DoesNotExist, PynamoDBException

    return isinstance(exc, PynamoDBException) and not isinstance(exc, DoesNotExist)
