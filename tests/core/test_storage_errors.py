"""DynamoDB throttling is a 503 the caller may retry, on every route alike: read routes (whose
reads nobody wraps) and write routes (whose stores translate through core/dynamo.py) answer it
through the API's one error map, never with a 500."""

from __future__ import annotations

from typing import Any

import pytest
from chalice.test import Client
from pynamodb.exceptions import GetError, PynamoDBException, QueryError

from tests.api_fixtures import call, sign_in

THROTTLED = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}


def _throttled(kind: type[PynamoDBException]) -> PynamoDBException:
    from botocore.exceptions import ClientError

    return kind("throttled", cause=ClientError(THROTTLED, "Query"))


@pytest.mark.parametrize(
    ("method", "path", "model", "operation", "kind"),
    [
        ("GET", "/messages/0000-a", "MessageModel", "get", GetError),
        ("GET", "/events?range=24h", "EventModel", "query", QueryError),
        ("GET", "/suppression-list", "SuppressionModel", "query", QueryError),
        ("GET", "/stats?range=24h", "CounterModel", "query", QueryError),
        ("PUT", "/suppression-list/a%40example.org", "SuppressionModel", "get", GetError),
    ],
)
def test_a_throttled_read_is_a_retryable_503(
    api: Client,
    moto: str,
    pool: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    model: str,
    operation: str,
    kind: type[PynamoDBException],
) -> None:
    from chalicelib.core import tables

    token = sign_in(moto, pool)
    assert call(api, "GET", "/account", token).status_code == 200  # the tenant exists first

    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise _throttled(kind)

    monkeypatch.setattr(getattr(tables, model), operation, throttled)
    body = {"reason": "asked"} if method == "PUT" else None
    response = call(api, method, path, token, body)
    assert response.status_code == 503, response.json_body
    error = response.json_body["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"retryable": True}
