"""The storage connections' lean botocore clients (core/lean_client.py). The short cut in
DynamoDB requests' serialisation (`_PlainJSON`): whatever it serialises is byte for byte what
botocore's serialiser makes, and it does serialise ingest's requests itself (counted), handing
botocore what it must rewrite (binary values). The User-Agent header (`_UserAgents`): the one
botocore sends, built once per set of features (counted). The responses (`_LeanParsers`): read
as botocore reads them, plain attribute values by the short cut (counted)."""

from __future__ import annotations

import base64
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from chalicelib.core import dynamo, lean_client

ITEM = {
    "pk": {"S": "T#t#S#0"},
    "sk": {"S": "2026-12-01T10:00:00.000Z#e\u00e9\u2014#0"},
    "n": {"N": "12"},
    "tags": {"SS": ["a=b", 'quote"d', "B"]},
    "counts": {"NS": ["1", "2.5"]},
    "ok": {"BOOL": True},
    "gone": {"NULL": True},
    "detail": {"S": '{"B": 1, "BS": [2]}'},  # the rewritten names inside a string stay plain
    "list": {"L": [{"S": "x"}, {"M": {"inner": {"N": "1"}}}]},
}

PLAIN: list[tuple[str, dict[str, Any]]] = [
    (
        "PutItem",
        {"TableName": "t", "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)"},
    ),
    ("GetItem", {"TableName": "t", "Key": {"pk": {"S": "a"}}, "ConsistentRead": True}),
    (
        "BatchGetItem",
        {
            "RequestItems": {
                "t": {"Keys": [{"pk": {"S": "a"}, "sk": {"S": "b"}}], "ConsistentRead": True}
            }
        },
    ),
    ("BatchWriteItem", {"RequestItems": {"t": [{"PutRequest": {"Item": ITEM}}]}}),
    (
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": ITEM}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "a"}},
                        "UpdateExpression": "ADD #c :one",
                        "ExpressionAttributeNames": {"#c": "count"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ],
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    (
        "BatchExecuteStatement",
        {
            "Statements": [
                {"Statement": "INSERT INTO \"t\" VALUE {'pk': ?}", "Parameters": [{"S": "a"}]}
            ]
        },
    ),
    (
        "Query",
        {
            "TableName": "t",
            "KeyConditionExpression": "pk = :p",
            "Limit": 25,
            "ExpressionAttributeValues": {":p": {"S": "a"}},
            "ScanIndexForward": False,
        },
    ),
]

REWRITTEN: list[tuple[str, dict[str, Any]]] = [
    ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}, "raw": {"B": b"\x00\xff"}}}),
    ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}, "raw": {"B": "text"}}}),
    ("PutItem", {"TableName": "t", "Item": {"pk": {"S": "a"}, "raws": {"BS": [b"1", b"2"]}}}),
    # a map attribute with a member named B: botocore's walk, the same bytes
    ("PutItem", {"TableName": "t", "Item": {"m": {"M": {"B": {"S": "x"}}}}}),
    (
        "CreateTable",
        {
            "TableName": "t",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        },
    ),
]


@pytest.fixture(scope="module")
def client() -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(parameter_validation=False),  # as PynamoDB builds its clients
    )


def _both(client: Any, operation: str, params: dict[str, Any]) -> tuple[Any, Any, Any]:
    model = client.meta.service_model.operation_model(operation)
    original = client._serializer
    original = getattr(original, "original", original)
    lean = lean_client._PlainJSON(original)
    return (
        lean.serialize_to_request(params, model),
        original.serialize_to_request(params, model),
        lean,
    )


@pytest.mark.parametrize(("operation", "params"), PLAIN, ids=[op for op, _ in PLAIN])
def test_plain_requests_are_serialised_by_the_short_cut_as_botocore_would(
    client: Any, operation: str, params: dict[str, Any]
) -> None:
    mine, botocores, lean = _both(client, operation, params)
    assert mine == botocores
    assert lean.plain == 1


@pytest.mark.parametrize(
    ("operation", "params"), REWRITTEN, ids=["bytes", "str", "set", "map B", "table"]
)
def test_what_botocore_rewrites_is_left_to_botocore(
    client: Any, operation: str, params: dict[str, Any]
) -> None:
    mine, botocores, lean = _both(client, operation, params)
    assert mine == botocores
    if operation == "PutItem" and "raw" in params["Item"]:
        assert b"AP8=" in mine["body"] or base64.b64encode(b"text") in mine["body"]
    assert lean.plain == (1 if operation == "CreateTable" else 0)


def test_a_value_json_cannot_encode_goes_to_botocore(client: Any) -> None:
    params = {"TableName": "t", "Item": {"ss": {"SS": {"a", "b"}}}}  # a set: botocore lists it
    mine, botocores, lean = _both(client, "PutItem", params)
    assert sorted(mine["body"].decode()) == sorted(botocores["body"].decode())
    assert lean.plain == 0


def test_the_storage_connections_serialise_through_the_short_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chalicelib.core.tables import EventModel, MessageModel

    # PynamoDB builds a new client while the one it has holds no credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    for model in (EventModel, MessageModel):
        monkeypatch.setattr(model, "_connection", None)
        connection = dynamo._connection(model)
        serializer = connection.client._serializer
        assert isinstance(serializer, lean_client._PlainJSON)
        assert lean_client.lean(connection).client._serializer is serializer  # wrapped once
        parsers = connection.client._endpoint._response_parser_factory
        assert isinstance(parsers, lean_client._LeanParsers)
        assert lean_client.lean(connection).client._endpoint._response_parser_factory is parsers


def test_a_client_that_validates_its_parameters_keeps_its_serialiser() -> None:
    from unittest.mock import Mock

    validating = botocore.session.get_session().create_client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    original = validating._serializer
    lean_client.lean(Mock(client=validating))
    assert validating._serializer is original


def _sent_headers(client: Any, requests: int) -> list[tuple[str, bytes]]:
    """Send GetItems answered in process (botocore's before-send hook): their headers."""
    from botocore.awsrequest import AWSResponse

    sent: list[tuple[str, bytes]] = []

    class _Raw:
        def stream(self, **_: Any) -> Any:
            yield b"{}"

    def answer(request: Any, **_: Any) -> AWSResponse:
        agent = request.headers["User-Agent"]
        sent.append((agent.decode() if isinstance(agent, bytes) else agent, request.body))
        return AWSResponse(request.url, 200, {"x-amzn-RequestId": "r"}, _Raw())

    client.meta.events.register("before-send.dynamodb", answer)
    for n in range(requests):
        client.get_item(TableName="t", Key={"pk": {"S": f"k{n}"}})
    return sent


def test_the_user_agent_is_built_once_and_sent_as_botocore_builds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unittest.mock import Mock

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")

    def new_client() -> Any:
        return botocore.session.get_session().create_client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:1",
            config=Config(parameter_validation=False),
        )

    lean, plain = new_client(), new_client()
    lean_client.lean(Mock(client=lean))
    sent = _sent_headers(lean, 5)
    assert sent == _sent_headers(plain, 5)  # same agents, same bodies
    agents = lean._user_agent_creator.to_string
    assert isinstance(agents, lean_client._UserAgents)
    assert agents.builds == len({agent for agent, _ in sent}) == 1  # of 10 builds botocore asks
    assert lean._serializer.plain == 5


def test_a_model_saved_through_pynamodb_is_lean_once_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.core.tables import MessageModel

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setattr(MessageModel, "_connection", None)
    dynamo.lean_model(MessageModel)
    client = MessageModel._get_connection().connection.client
    assert isinstance(client._serializer, lean_client._PlainJSON)
    assert isinstance(client._user_agent_creator.to_string, lean_client._UserAgents)


VALUES = {
    "s": {"S": "x\u00e9"},
    "n": {"N": "12.5"},
    "yes": {"BOOL": False},
    "none": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "b": {"B": "AP8="},  # base64: botocore decodes it
    "bs": {"BS": ["AP8="]},
    "m": {"M": {"inner": {"S": "y"}, "deep": {"L": [{"N": "1"}, {"M": {}}]}}},
    "l": {"L": [{"S": "z"}, {"BOOL": True}]},
    "odd": {"S": 3},  # not a string: botocore's reading
    "two": {"S": "a", "N": "1"},
    "unknown": {"X": "?"},
}


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("GetItem", {"Item": VALUES}),
        ("BatchGetItem", {"Responses": {"t": [VALUES, {"pk": {"S": "2"}}]}, "UnprocessedKeys": {}}),
        (
            "Query",
            {
                "Items": [VALUES],
                "Count": 1,
                "ScannedCount": 1,
                "LastEvaluatedKey": {"pk": {"S": "k"}},
            },
        ),
        (
            "BatchExecuteStatement",
            {"Responses": [{"Item": VALUES}, {"Error": {"Code": "DuplicateItem"}}]},
        ),
    ],
)
def test_responses_are_read_as_botocore_reads_them(
    client: Any, operation: str, body: dict[str, Any]
) -> None:
    import json

    output = client.meta.service_model.operation_model(operation).output_shape
    factory = client._endpoint._response_parser_factory
    factory = getattr(factory, "original", factory)
    lean = lean_client._LeanParsers(factory)
    response = {"body": json.dumps(body).encode(), "headers": {}, "status_code": 200}
    mine = lean.create_parser("json").parse(dict(response), output)
    botocores = factory.create_parser("json").parse(dict(response), output)
    assert mine == botocores
    assert json.dumps(mine, default=repr) == json.dumps(botocores, default=repr)  # same order
    assert lean.plain >= 8
