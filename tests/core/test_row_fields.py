"""What a row reads from its keys: the status -> type map is the inverse of the events' own."""

from __future__ import annotations

from chalicelib.core.tables import TYPE_OF_STATUS, EventModel
from chalicelib.events.status import STATUS_OF


def test_each_status_names_the_one_type_it_comes_from() -> None:
    assert {s.value: t.value for t, s in STATUS_OF.items()} == TYPE_OF_STATUS


def test_a_row_written_with_the_old_fields_reads_them_first() -> None:
    new = EventModel(
        "T#t#S#0",
        "2026-01-02T03:04:05.678Z#k1#00",
        status="BOUNCED",
        recipient_pk="T#t#R#a#b@example.com",
    )
    assert (new.key(), new.at(), new.kind(), new.address()) == (
        "k1",
        "2026-01-02T03:04:05.678Z",
        "Bounce",
        "a#b@example.com",
    )
    old = EventModel(
        "T#t#S#0",
        "2026-01-02T03:04:05.678Z#k1#00",
        status="BOUNCED",
        event_key="k0",
        occurred_at="then",
        event_type="Bounce",
        recipient="A#b@Example.com",
        recipient_pk="T#t#R#a#b@example.com",
    )
    assert (old.key(), old.at(), old.kind(), old.address()) == (
        "k0",
        "then",
        "Bounce",
        "A#b@Example.com",
    )
    assert EventModel("T#t#G#x=y#S#0", "t#k#00", status="OPENED").address() is None


def test_an_entry_reads_its_destination_flag_and_shard_in_either_form() -> None:
    from chalicelib.core.tables import MessageEventModel

    legacy = MessageEventModel.from_raw_data(
        {
            "pk": {"S": "T#t#M#m"},
            "sk": {"S": "E#x#k"},
            "event_type": {"S": "Send"},
            "to_destination": {"BOOL": True},
            "shard": {"N": "2"},
        }
    )
    assert legacy.for_destination() and legacy.row_shard() == 2
    new = MessageEventModel("T#t#M#m", "E#x#k", event_type="Send", to_destination=True)
    assert set(new.serialize()) == {"pk", "sk", "event_type", "d"}  # short name, no shard 0
    assert new.for_destination() and new.row_shard() == 0
    unnamed = MessageEventModel("T#t#M#m", "E#x#k", event_type="Open")  # SES could not say who
    assert not unnamed.for_destination()
