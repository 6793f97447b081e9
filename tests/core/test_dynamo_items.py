"""core/item_codec.py: `dynamo.item_of` is `Model.serialize()`, faster: the same dict (names,
types, order) for every kind of attribute the tables use, and the same refusal of a missing
required one; `dynamo.model_of` is `Model.from_raw_data`: the same values, defaults included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from chalicelib.core import dynamo
from chalicelib.core.tables import EventModel, MessageEventModel, MessageModel
from pynamodb.exceptions import AttributeNullError

AT = datetime(2026, 12, 1, 10, 0, 0, 123000, tzinfo=UTC)


def _models() -> list[Any]:
    aggregate = MessageModel(
        "T#t#M#m",
        status="DELIVERED",
        status_rank=3,
        status_at="a",
        sent_at="b",
        body={"tags": {"b": ["2", "1"]}, "é": "—"},
        expires_at=AT,
        version=4,
    )
    return [
        EventModel(
            "T#t#S#0",
            "sk#0",
            event_key="k",
            event_type="Open",
            status="OPENED",
            occurred_at="2026-12-01T10:00:00.123Z",
            message_id="m",
            recipient="a@b.c",
            tag_pairs={"b=2", "a=1"},
            detail={"ua": "Mozilla", "n": [1, 2]},
            expires_at=AT,
        ),
        EventModel(
            "T#t#S#0",
            "sk#1",
            event_key="k",
            event_type="Send",
            status="SENT",
            occurred_at="x",
            message_id="m",
            tag_pairs=set(),
        ),  # an empty set: absent
        MessageEventModel(
            "T#t#M#m",
            "E#x",
            event_type="Click",
            recipients={"a@b.c"},
            recipients_more=0,
            to_destination=False,
            shard=0,
            detail={"link": "https://x"},
            projected=True,
            counted="[]",
        ),
        aggregate,
        MessageModel("T#t#M#m2", status="SENT", status_rank=1, status_at="a", sent_at="b", body={}),
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_item_of_is_what_pynamodb_serialises(model: Any) -> None:
    assert dynamo.item_of(model) == model.serialize()
    assert list(dynamo.item_of(model)) == list(model.serialize())


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_model_of_reads_an_item_as_pynamodb_does(model: Any) -> None:
    raw = model.serialize()
    mine, pynamodbs = dynamo.model_of(type(model), raw), type(model).from_raw_data(raw)
    assert type(mine) is type(pynamodbs)
    assert mine.attribute_values == pynamodbs.attribute_values
    assert list(mine.attribute_values) == list(pynamodbs.attribute_values)
    assert dynamo.item_of(mine) == pynamodbs.serialize()


@pytest.mark.parametrize(
    "raw",
    [
        {"pk": {"S": "T#t#M#m"}},  # the defaults: sk, events, opens, clicks
        {"pk": {"S": "p"}, "events": {"N": "0"}, "opens": {"N": "2.5"}, "clicks": {"N": "-3"}},
        {"pk": {"S": "p"}, "subject": {"NULL": True}, "version": {"N": "12"}},
        {"pk": {"S": "p"}, "expires_at": {"N": "1893455999"}, "body": {"S": '{"a":[1]}'}},
    ],
)
def test_model_of_reads_numbers_nulls_and_defaults_as_pynamodb_does(raw: dict[str, Any]) -> None:
    mine, pynamodbs = dynamo.model_of(MessageModel, raw), MessageModel.from_raw_data(raw)
    assert mine.attribute_values == pynamodbs.attribute_values
    assert {k: type(v) for k, v in mine.attribute_values.items()} == {
        k: type(v) for k, v in pynamodbs.attribute_values.items()
    }


def test_a_missing_required_attribute_is_refused_alike() -> None:
    row = EventModel("T#t#S#0", "sk", event_type="Send", status="SENT", occurred_at="x")
    with pytest.raises(AttributeNullError) as pynamodbs:
        row.serialize()
    with pytest.raises(AttributeNullError) as mine:
        dynamo.item_of(row)
    assert str(mine.value) == str(pynamodbs.value)


def test_every_item_ingest_writes_is_what_pynamodb_serialises(
    tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The realistic mix through the ingest queue, on DynamoDB Local: every row, entry and
    aggregate written is compared with PynamoDB's own serialisation, every item read with
    PynamoDB's own reading."""
    import json

    from chalicelib.ingest.pipeline import ingest_queue_records

    from devstack.traffic import traffic

    compared: list[str] = []
    real = dynamo.item_of

    def checked(model: Any) -> dict[str, Any]:
        item = real(model)
        assert item == model.serialize(), type(model).__name__
        compared.append(type(model).__name__)
        return item

    read: list[str] = []
    real_read = dynamo.model_of

    def checked_read(model: Any, raw: dict[str, Any]) -> Any:
        instance = real_read(model, raw)
        assert instance.attribute_values == model.from_raw_data(raw).attribute_values
        read.append(model.__name__)
        return instance

    monkeypatch.setattr(dynamo, "item_of", checked)
    monkeypatch.setattr(dynamo, "model_of", checked_read)
    envelopes = sorted(traffic(tenant.account_id, 40, seed=7), key=lambda e: e["time"])
    records = [{"messageId": str(n), "body": json.dumps(e)} for n, e in enumerate(envelopes)]
    report, failed = ingest_queue_records(records, tenants=tenant.directory, store=tenant.store)
    assert not failed
    assert report.counts().get("stored", 0) > 40
    assert {"EventModel", "MessageEventModel", "MessageModel"} <= set(compared)
    assert {"AccountModel", "MessageModel"} <= set(read)  # the binding, aggregates read back


@pytest.mark.parametrize(
    "changes",
    [
        {"events": 2.5},  # a float number: PynamoDB's JSON
        {"events": 10**20, "opens": -3},
        {"version": 7},
        {"expires_at": datetime(2030, 1, 1, 23, 59, 59, tzinfo=UTC)},
    ],
)
def test_numbers_and_expiries_serialise_as_pynamodb_does(changes: dict[str, Any]) -> None:
    item = MessageModel(
        "T#t#M#m", status="SENT", status_rank=1, status_at="a", sent_at="b", body={}
    )
    item.attribute_values.update(changes)
    assert dynamo.item_of(item) == item.serialize()


def test_a_naive_expiry_is_refused_alike() -> None:
    item = MessageModel(
        "T#t#M#m", status="SENT", status_rank=1, status_at="a", sent_at="b", body={}
    )
    item.attribute_values["expires_at"] = datetime(2030, 1, 1)  # past __set__'s check
    with pytest.raises(ValueError, match="timezone-aware"):
        item.serialize()
    with pytest.raises(ValueError, match="timezone-aware"):
        dynamo.item_of(item)
