"""Header safety (invariant 8): no CR or LF reaches an outgoing header.

Every value that ends up in a header (the
sender, each address's display name, reply-to, the subject, tag names and values, a bulk
message's rendered subject) goes through `check_header`, which refuses line breaks and other
control characters both raw and hidden in RFC 2047 encoded-words (`=?utf-8?q?a=0D=0A?=`), since
a mail client decodes those and a careless relay may too. The SES adapter checks again before it
calls SES, so a future caller that skips this module still cannot inject a header.
"""

from __future__ import annotations

import binascii
import re
import unicodedata

from chalicelib.core.errors import InvalidRequest

MAX_HEADER_VALUE = 10_000  # anything longer is refused before it is inspected
# Lenient on purpose: whatever a lenient decoder would take for an encoded-word, we inspect.
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([bBqQ])\?(.*?)\?=", re.DOTALL)
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_LINE_SEPARATORS = frozenset("\u2028\u2029")


def bad(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, details={"field": field})


def _unsafe_char(text: str) -> str | None:
    """The first line break or control character (tab aside) in `text`, if any."""
    for ch in text:
        if ch != "\t" and (unicodedata.category(ch) == "Cc" or ch in _LINE_SEPARATORS):
            return ch
    return None


def _b64_candidates(raw: bytes) -> list[bytes]:
    """What lenient base64 decoders make of `raw`: all of it, or each '='-separated run."""
    out = []
    for chunk in (raw, *raw.split(b"=")):
        chars = re.sub(rb"[^A-Za-z0-9+/]", b"", chunk)
        chars = chars[: len(chars) - (len(chars) % 4 == 1)]
        out.append(binascii.a2b_base64(chars + b"=" * (-len(chars) % 4)))
    return out


def _decode_word(charset: str, encoding: str, payload: str) -> list[tuple[bytes, str]]:
    """Every reading of one encoded-word's payload: (bytes, text in its charset)."""
    raw = payload.encode("latin-1", "replace")
    if encoding in "qQ":
        readings = [_Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), raw.replace(b"_", b" "))]
    else:
        readings = _b64_candidates(raw)
    out = []
    for data in readings:
        try:
            text = data.decode(charset.split("*", 1)[0] or "utf-8", "replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            text = data.decode("latin-1")
        out.append((data, text))
    return out


def check_header(value: str, field: str) -> str:
    """`value` unchanged if it is safe in a header; else InvalidRequest naming `field`."""
    if len(value) > MAX_HEADER_VALUE:
        raise bad(field, f"{field} is over {MAX_HEADER_VALUE} characters")
    if _unsafe_char(value) is not None:
        raise bad(field, f"{field} must not contain line breaks or control characters")
    text = value
    for _level in range(4):  # an encoded-word may decode to another one
        words = _ENCODED_WORD.findall(text)
        if not words:
            break
        decoded = []
        for charset, encoding, payload in words:
            readings = _decode_word(charset, encoding, payload)
            for data, word in readings:
                # Bytes too: a CR inside UTF-16 or a charset Python lacks is still a CR.
                if b"\r" in data or b"\n" in data or _unsafe_char(word) is not None:
                    raise bad(
                        field,
                        f"{field} must not contain line breaks or control characters "
                        "(found inside an RFC 2047 encoded-word)",
                    )
            decoded.append(readings[0][1])
        text = "".join(decoded)
    return value
