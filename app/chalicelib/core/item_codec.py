"""PynamoDB models <-> DynamoDB's wire form, on the hot path: `item_of(model)` is
`model.serialize()` and `model_of(Model, raw)` is `Model.from_raw_data(raw)`, the same dicts and
instances, with PynamoDB's per-attribute work (descriptor reads and writes, kind checks, JSON
round trips of numbers and TTLs) done once per model class. tests/core/test_dynamo_items.py
compares both with PynamoDB's own, and every item ingest writes on DynamoDB Local.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Per model class: (python name, stored name, DynamoDB type, serialize, nullable, container).
_Plan = tuple[tuple[str, str, str, Callable[..., Any], bool, bool], ...]
_SERIALIZE_PLANS: dict[type, _Plan] = {}


def item_of(model: Any) -> dict[str, dict[str, Any]]:
    """`model.serialize()`, the same dict, with the per-attribute work done once per class:
    PynamoDB reads every attribute through its descriptor and checks its kind on each call,
    which is most of what serialising ingest's rows, entries and aggregates costs. Lists and
    maps (and a value that is a MapAttribute) still go through PynamoDB's own path."""
    from pynamodb.attributes import MapAttribute
    from pynamodb.exceptions import AttributeNullError

    cls = type(model)
    plan = _SERIALIZE_PLANS.get(cls)
    if plan is None:
        plan = _SERIALIZE_PLANS[cls] = _serialize_plan(cls)
    values = model.attribute_values
    out: dict[str, dict[str, Any]] = {}
    for name, stored, kind, serialize, nullable, container in plan:
        value = values.get(name)
        if value is None:
            if not nullable:
                raise AttributeNullError(name)
            continue
        if container or isinstance(value, MapAttribute):
            return model.serialize()  # type: ignore[no-any-return]
        serialized = serialize(value)
        if serialized is None:
            if not nullable:
                raise AttributeNullError(name)
            continue
        out[stored] = {kind: serialized}
    return out


def _serialize_plan(cls: Any) -> _Plan:
    from pynamodb.attributes import ListAttribute, MapAttribute

    return tuple(
        (
            name,
            attr.attr_name,
            attr.attr_type,
            _serializer(attr),
            bool(attr.null),
            isinstance(attr, ListAttribute | MapAttribute),
        )
        for name, attr in cls.get_attributes().items()
    )


def _serializer(attr: Any) -> Callable[[Any], Any]:
    """`attr.serialize`, or the same result without its JSON round trip where the value is the
    common case: an int number (`json.dumps(n)` is `str(n)`), an aware datetime for a TTL
    (PynamoDB keeps it in whole seconds: its epoch seconds as text)."""
    import calendar
    from datetime import datetime

    from pynamodb.attributes import NumberAttribute, TTLAttribute

    serialize: Callable[[Any], Any] = attr.serialize
    if type(attr).serialize is NumberAttribute.serialize:

        def number(value: Any) -> Any:
            return str(value) if type(value) is int else serialize(value)

        return number
    if type(attr).serialize is TTLAttribute.serialize:

        def ttl(value: Any) -> Any:
            if type(value) is datetime and value.tzinfo is not None:
                return str(calendar.timegm(value.utctimetuple()))
            return serialize(value)

        return ttl
    return serialize


# Per model class: its defaults, and per attribute (python name, stored name, deserialize, set).
_READ_PLANS: dict[type, Any] = {}


def model_of(model: Any, raw: dict[str, Any]) -> Any:
    """`model.from_raw_data(raw)`, the same instance, with the per-attribute work done once per
    class: PynamoDB builds the instance, sets its defaults twice and every value through its
    descriptor (an aggregate read back: ~65 µs). A model with a discriminator or a list or map
    attribute goes through PynamoDB's own path."""
    plan = _READ_PLANS.get(model)
    if plan is None:
        plan = _READ_PLANS[model] = _read_plan(model)
    if plan is False:
        return model.from_raw_data(raw)
    defaults, attributes = plan
    instance = model.__new__(model)
    values: dict[str, Any] = {}
    instance.attribute_values = values
    for attr, default in defaults:
        attr.__set__(instance, default() if callable(default) else default)
    for name, stored, kind, deserialize, setter in attributes:
        value = raw.get(stored)
        if not value or "NULL" in value:
            continue
        serialized = value.get(kind)
        if setter is None:
            values[name] = deserialize(serialized)
        else:
            setter(instance, deserialize(serialized))
    return instance


def _read_plan(model: Any) -> Any:
    from pynamodb.attributes import Attribute, ListAttribute, MapAttribute, NumberAttribute
    from pynamodb.models import Model

    attributes = model.get_attributes()
    if (
        model._discriminator
        or model.__init__ is not Model.__init__
        or any(isinstance(a, ListAttribute | MapAttribute) for a in attributes.values())
    ):
        return False
    defaults = []
    for attr in attributes.values():
        default = attr.default
        if default is not None:
            defaults.append((attr, default))
    plan = []
    for name, attr in attributes.items():
        deserialize = attr.deserialize
        if type(attr).deserialize is NumberAttribute.deserialize:
            deserialize = _number(deserialize)
        python_name = model._dynamo_to_python_attrs.get(attr.attr_name, attr.attr_name)
        plain = type(attr).__set__ is Attribute.__set__ and python_name == name
        plan.append(
            (name, attr.attr_name, attr.attr_type, deserialize, None if plain else attr.__set__)
        )
    return tuple(defaults), tuple(plan)


def _number(deserialize: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A number's JSON reading, `int(text)` for what is plainly an integer."""

    def number(text: Any) -> Any:
        if type(text) is str and text.isascii() and text.isdigit() and text[:1] != "0":
            return int(text)
        return deserialize(text)

    return number
