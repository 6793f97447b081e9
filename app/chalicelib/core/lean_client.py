"""The storage connections' botocore client, made lean: what botocore does on every request that
SESami's DynamoDB requests do not need done again.

- `_PlainJSON`: botocore's JSON serialiser with a short cut where its walk of the input shape is
  provably the identity (no binary value, no renamed member): `json.dumps` of the parameters.
- `_UserAgents`: the User-Agent header, built once per set of SDK features instead of twice a
  request.
- `_LeanParsers`: botocore's response parser with a short cut for DynamoDB's plain attribute
  values (a string, number, boolean or string set), read without walking their shape.

Both produce exactly what botocore would (tests/core/test_lean_client.py compares them),
and both count what they short-cut. `lean(connection)` is applied by core/dynamo.py to every
connection it hands out, and by the ingest store to its transactions' connection.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynamodb.connection import Connection


def lean(connection: Connection) -> Connection:
    """`connection`, its botocore client's serialiser wrapped in `_PlainJSON` (once: PynamoDB
    keeps the client, or builds another, unwrapped, if the first lost its credentials). Only a
    client that does not validate parameters (PynamoDB's: `parameter_validation=False`)."""
    client = connection.client
    serializer = getattr(client, "_serializer", None)
    validates = hasattr(serializer, "_param_validator")  # botocore's ParamValidationDecorator
    if serializer is not None and not validates and not isinstance(serializer, _PlainJSON):
        client._serializer = _PlainJSON(serializer)
    creator = getattr(client, "_user_agent_creator", None)
    if creator is not None and not isinstance(creator.to_string, _UserAgents):
        creator.to_string = _UserAgents(creator)
    endpoint = getattr(client, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    if factory is not None and not isinstance(factory, _LeanParsers):
        endpoint._response_parser_factory = _LeanParsers(factory)  # type: ignore[union-attr]
    return connection


# AttributeValue's members whose value botocore's JSON parser returns as it is (strings,
# booleans) or as a copy (a list of strings); the others (B, BS: base64; M, L: nested values)
# go through its parser.
_PLAIN_VALUES = {"S": str, "N": str, "BOOL": bool, "NULL": bool}
_PLAIN_LISTS = frozenset({"SS", "NS"})


class _LeanParsers:
    """The response parsers of a client's endpoint (botocore builds one per response), with a
    short cut for DynamoDB's attribute values. botocore reads every value of every item
    against the AttributeValue shape, member by member (ten members, for the one a value
    has); a value of one plain member (`{"S": "..."}`, `{"N": "3"}`, `{"BOOL": true}`,
    `{"SS": [...]}`) is read as botocore would read it, a new dict of that member. Everything
    else is botocore's."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self.plain = 0  # attribute values read by the short cut (tests count them)

    def create_parser(self, protocol_name: str) -> Any:
        parser = self.original.create_parser(protocol_name)
        if protocol_name == "json":
            structure = parser._handle_structure

            def handle_structure(shape: Any, value: Any) -> Any:
                if shape.name == "AttributeValue" and type(value) is dict and len(value) == 1:
                    ((tag, raw),) = value.items()
                    kind = _PLAIN_VALUES.get(tag)
                    if kind is not None and type(raw) is kind:
                        self.plain += 1
                        return {tag: raw}
                    plain_list = type(raw) is list and all(type(v) is str for v in raw)
                    if tag in _PLAIN_LISTS and plain_list:
                        self.plain += 1
                        return {tag: list(raw)}
                return structure(shape, value)

            parser._handle_structure = handle_structure
        return parser


class _UserAgents:
    """A client's User-Agent header, built once per set of SDK features. botocore builds the
    header twice a request (when it serialises the request, then again once the request's
    features are known), from every component each time: OS, language, configuration, the
    features. Only the features (the client's and the request's) vary over a client's life,
    so the header is kept per set of features: the same header, ~100 µs less a request."""

    MAX_KEPT = 64

    def __init__(self, creator: Any) -> None:
        self._creator = creator
        self._build = creator.to_string
        self._built: dict[frozenset[str], str] = {}
        self.builds = 0  # headers built by botocore (tests count them)

    def __call__(self) -> str:
        from botocore.context import get_context

        context = get_context()
        features = frozenset(self._creator._client_features or ())
        if context is not None:
            features |= context.features
        header = self._built.get(features)
        if header is None:
            header = self._build()
            self.builds += 1
            if len(self._built) < self.MAX_KEPT:
                self._built[features] = header
        return header  # type: ignore[no-any-return]


# Shapes botocore's JSON serialiser rewrites (base64, epoch seconds, float handling).
_REWRITTEN_TYPES = frozenset({"blob", "timestamp", "float", "double"})


class _PlainJSON:
    """botocore's JSON-protocol serialiser, with a short cut for what DynamoDB's requests are.

    botocore walks every request against the operation's input shape, value by value (a third
    of ingest's time in the SDK, PynamoDB's parameter validation already off). For a JSON
    protocol that walk is the identity except where a shape is rewritten (a blob to base64, a
    timestamp, a float) or a member renamed. So, per operation, the names of the members under
    which a rewritten shape sits are collected once (DynamoDB's item operations: `B` and `BS`,
    the binary attribute values); a request whose JSON text holds none of them as a key (in
    JSON text `"B":` can only be a key: quotes inside strings are escaped) is its own
    serialisation, `json.dumps` of the parameters as botocore does. Everything else (renamed
    members, a binary value, a value JSON cannot encode) goes to botocore's serialiser, which
    also builds every request's envelope (method, path, headers) from empty parameters."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self._rewritten: dict[str, tuple[str, ...] | None] = {}
        self.plain = 0  # requests serialised by the short cut (tests count them)

    def serialize_to_request(self, parameters: Any, operation_model: Any) -> dict[str, Any]:
        name = operation_model.name
        if name not in self._rewritten:
            self._rewritten[name] = _rewritten_members(operation_model)
        rewritten = self._rewritten[name]
        if rewritten is not None:
            try:
                body = json.dumps(parameters)
            except (TypeError, ValueError):
                body = None
            if body is not None and not any(f'"{m}":' in body for m in rewritten):
                request: dict[str, Any] = self.original.serialize_to_request({}, operation_model)
                request["body"] = body.encode("utf-8")
                self.plain += 1
                return request
        return self.original.serialize_to_request(parameters, operation_model)  # type: ignore[no-any-return]


def _rewritten_members(operation_model: Any) -> tuple[str, ...] | None:
    """The member names under which the operation's input holds a shape botocore rewrites;
    None when the short cut cannot apply (not the JSON protocol, a renamed member, a host
    prefix taken from the parameters)."""
    if operation_model.metadata.get("protocol") != "json" or operation_model.endpoint:
        return None
    shape = operation_model.input_shape
    if shape is None:
        return None
    found: set[str] = set()
    seen: set[str] = set()

    def leaf(sub: Any) -> Any:
        while sub.type_name in ("list", "map"):
            sub = sub.member if sub.type_name == "list" else sub.value
        return sub

    def walk(structure: Any) -> bool:
        if structure.name in seen or getattr(structure, "is_document_type", False):
            return True
        seen.add(structure.name)
        for member, sub in structure.members.items():
            if "name" in sub.serialization:
                return False
            end = leaf(sub)
            if end.type_name in _REWRITTEN_TYPES:
                found.add(member)
            elif end.type_name == "structure" and not walk(end):
                return False
        return True

    return tuple(sorted(found)) if walk(shape) else None
