"""The one translation of DynamoDB errors (PynamoDB's and botocore's) into SESami's.

    with dynamo.storage("batch read"):       # any failure -> TransientStorageError
        item = BatchModel.get(...)
    if dynamo.write_if("claim", lambda: item.save(condition=...)): ...   # False: condition lost
    if dynamo.condition_failed(exc): ...     # a conditional write or transaction lost
    item = dynamo.get(Model, hash_key, range_key)   # consistent read; None if absent
    a, b = dynamo.read_many("what", [(ModelA, h, r), (ModelB, h, None)])   # ONE BatchGetItem
    dynamo.write_many("what", [item_a, item_b, ...])   # BatchWriteItems of 25, any tables
    codes = dynamo.transact("what", lambda txn: txn.save(...))   # None: committed

The connections these helpers use are lean (core/lean_client.py: a short cut in botocore's
serialisation, the User-Agent header built once).

`TransientStorageError` is what every storage module raises when DynamoDB throttles, times out
or fails: ingest lets it propagate (Lambda retries the event), and the API's one error map
(core/api.py) answers it with a 503 and `retryable: true` on every route. `is_storage_failure`
lets that map recognise a PynamoDB error that no storage module translated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.core.errors import TransientStorageError
from chalicelib.core.item_codec import item_of as item_of
from chalicelib.core.item_codec import model_of as model_of
from chalicelib.core.lean_client import lean

if TYPE_CHECKING:
    from pynamodb.connection import Connection
    from pynamodb.transactions import TransactWrite

_M = TypeVar("_M")
CONDITION_CODES = frozenset({"ConditionalCheckFailed", "TransactionConflict"})
BATCH_GET_ATTEMPTS = 5
BATCH_WRITE_ATTEMPTS = 5
WRITES_PER_BATCH = 25  # DynamoDB: put requests per BatchWriteItem


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


def _connection(model: Any) -> Connection:
    """The low-level connection of `model`'s table (its region and endpoint), lean."""
    return lean(model._get_connection().connection)


def lean_model(model: Any) -> None:
    """Make the connection `model.save()` and its other methods use lean (core/lean_client.py):
    for a model written through PynamoDB's own methods on a hot path."""
    _connection(model)


def read_many(what: str, wanted: Sequence[tuple[Any, str, str | None]]) -> list[Any]:
    """Consistent reads of several items, of any tables, in ONE BatchGetItem (up to 100 keys):
    the items in the order asked, None for those that do not exist. Unprocessed keys are asked
    again; any failure leaves as TransientStorageError."""
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    if not wanted:
        return []
    request: dict[str, dict[str, Any]] = {}
    for model, hash_key, range_key in wanted:
        key = {model._hash_keyname: {"S": hash_key}}
        if range_key is not None:
            key[model._range_keyname] = {"S": range_key}
        table = request.setdefault(model.Meta.table_name, {"Keys": [], "ConsistentRead": True})
        table["Keys"].append(key)
    found: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    connection = _connection(wanted[0][0])
    for attempt in range(BATCH_GET_ATTEMPTS):
        try:
            data = connection.dispatch("BatchGetItem", {"RequestItems": request})
        except (PynamoDBException, ClientError, BotoCoreError) as exc:
            raise TransientStorageError(f"{what} failed: {exc}") from exc
        for table, items in (data.get("Responses") or {}).items():
            for item in items:
                found[_identity(table, item, wanted)] = item
        request = data.get("UnprocessedKeys") or {}
        if not request:
            break
        time.sleep(0.02 * 2**attempt)
    else:
        raise TransientStorageError(f"{what}: DynamoDB left keys unprocessed")
    out = []
    for model, hash_key, range_key in wanted:
        raw = found.get((model.Meta.table_name, hash_key, range_key))
        out.append(None if raw is None else model_of(model, raw))
    return out


def write_many(what: str, items: Sequence[Any]) -> None:
    """Unconditional puts of model instances, of any tables, in BatchWriteItems of up to 25 (one
    request for a round's rows and timeline entries together). Unprocessed items are sent
    again; any failure leaves as TransientStorageError."""
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    if not items:
        return
    connection = _connection(type(items[0]))
    for at in range(0, len(items), WRITES_PER_BATCH):
        request: dict[str, list[dict[str, Any]]] = {}
        for item in items[at : at + WRITES_PER_BATCH]:
            puts = request.setdefault(type(item).Meta.table_name, [])
            puts.append({"PutRequest": {"Item": item_of(item)}})
        for attempt in range(BATCH_WRITE_ATTEMPTS):
            try:
                data = connection.dispatch("BatchWriteItem", {"RequestItems": request})
            except (PynamoDBException, ClientError, BotoCoreError) as exc:
                raise TransientStorageError(f"{what} failed: {exc}") from exc
            request = data.get("UnprocessedItems") or {}
            if not request:
                break
            time.sleep(0.02 * 2**attempt)
        else:
            raise TransientStorageError(f"{what}: DynamoDB left items unprocessed")


STATEMENTS_PER_BATCH = 25  # DynamoDB: statements per BatchExecuteStatement


def execute_many(what: str, statements: Sequence[dict[str, Any]], model: Any) -> list[str | None]:
    """PartiQL statements (`{"Statement": ..., "Parameters": [...]}`) in BatchExecuteStatements
    of 25: each one its own write, with its own condition, billed as a single write (not as a
    transaction). Returns each statement's error code (None when it was made): a refused
    condition is "ConditionalCheckFailed" or "DuplicateItem". A failed request leaves as
    TransientStorageError. `model` names the tables' connection."""
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    connection = _connection(model)
    codes: list[str | None] = []
    for at in range(0, len(statements), STATEMENTS_PER_BATCH):
        chunk = list(statements[at : at + STATEMENTS_PER_BATCH])
        try:
            data = connection.dispatch("BatchExecuteStatement", {"Statements": chunk})
        except (PynamoDBException, ClientError, BotoCoreError) as exc:
            raise TransientStorageError(f"{what} failed: {exc}") from exc
        answers = data.get("Responses") or []
        for n in range(len(chunk)):
            error = (answers[n] if n < len(answers) else {}).get("Error") or {}
            codes.append(error.get("Code"))
    return codes


def _identity(
    table: str, item: dict[str, Any], wanted: Sequence[tuple[Any, str, str | None]]
) -> tuple[str, str, str | None]:
    model = next(m for m, _, _ in wanted if m.Meta.table_name == table)
    hash_key = item[model._hash_keyname]["S"]
    range_name = model._range_keyname
    return table, hash_key, item[range_name]["S"] if range_name else None


def transact(
    what: str, build: Callable[[TransactWrite], object], *, model: Any = None
) -> list[str | None] | None:
    """Run ONE DynamoDB transaction that `build` fills (txn.save / update / delete /
    condition_check): None when it committed; when a condition refused it, the cancellation
    code of each item in the order they were added (None for the items that did not fail).
    Any other failure leaves as TransientStorageError. `model` names the tables' region and
    endpoint (any SESami model: they share them)."""
    from pynamodb.exceptions import PynamoDBException, TransactWriteError
    from pynamodb.transactions import TransactWrite

    if model is None:
        from chalicelib.core.tables import TenantModel

        model = TenantModel
    txn = TransactWrite(connection=_connection(model))
    try:
        with txn:
            build(txn)
    except TransactWriteError as exc:
        if condition_failed(exc):
            return [r.code if r else None for r in exc.cancellation_reasons]
        raise TransientStorageError(f"{what} failed: {exc}") from exc
    except PynamoDBException as exc:
        raise TransientStorageError(f"{what} failed: {exc}") from exc
    return None
