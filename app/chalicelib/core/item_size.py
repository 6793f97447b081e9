"""What an item costs in DynamoDB: its size as DynamoDB counts it, and the compact JSON that
keeps SESami's documents small.

DynamoDB sizes an item as the sum, over its attributes, of the attribute name's UTF-8 length and
its value's size: a string its UTF-8 length, a number about one byte per two digits plus one, a
binary its length, a boolean or null one byte, a set the sum of its members, a map or list 3
bytes plus each element's size plus 1 byte per element (and, in a map, each key's length). The
400 KB item limit and the 1 KB write unit are both measured this way (AWS DynamoDB developer
guide, "Item sizes and formats"). `item_bytes` takes what botocore sends: `Model.serialize()`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def compact_json(value: Any) -> str:
    """JSON as DynamoDB should store it: no blanks, non-ASCII as itself (UTF-8: at most 4 bytes a
    character, where `\\uXXXX` escapes cost 6 or 12). A lone surrogate, which UTF-8 cannot
    carry, becomes U+FFFD."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def _number_bytes(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_bytes(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in DynamoDB's wire form ({"S": ...}, {"N": ...}, ...)."""
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return _number_bytes(str(raw))
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in raw)
    if kind == "NS":
        return sum(_number_bytes(str(v)) for v in raw)
    if kind == "BS":
        return sum(len(v) for v in raw)
    if kind == "L":
        return 3 + sum(value_bytes(v) + 1 for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_bytes(v) + 1 for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_bytes(serialized: Mapping[str, Mapping[str, Any]]) -> int:
    """The size of an item (`Model.serialize()`, or a low-level item) as DynamoDB counts it."""
    return sum(len(name.encode()) + value_bytes(value) for name, value in serialized.items())
