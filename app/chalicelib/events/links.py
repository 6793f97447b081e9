"""A clicked link as SESami keeps it: bounded, whatever SES reports.

SES reports the link as the HTML carried it, up to EventBridge's 256 KB (the parser refuses more
than 8 KB). A link is kept everywhere (the message aggregate, its timeline, the link counters,
the event rows) in its *display form*: the URL itself when it is at most `MAX_LINK_CHARS`
characters of printable ASCII, else its printable-ASCII spelling (non-ASCII and unsafe
characters percent-encoded) cut to fit, ending in `...#` and a digest of the whole URL. The
digest keeps two long links that share their first characters apart, so the display form is also
the link's identity (the link counters are keyed by a hash of it, `keys.link_sk`), and every
character of it costs one byte in a JSON document (no escapes), so 50 links are at most ~10 KB.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote

MAX_LINK_CHARS = 200
_DIGEST_HEX = 20
_MARK = "...#"
# Printable ASCII that JSON writes as itself: no space, quote or backslash.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
_PLAIN = re.compile(r"[!#-\[\]-~]*")  # exactly the characters of _SAFE
_CUT = re.compile(r".*" + re.escape(_MARK) + "[0-9a-f]{" + str(_DIGEST_HEX) + "}", re.DOTALL)


def display_form(url: str) -> str:
    """The bounded form of `url` (itself when short and plain), at most MAX_LINK_CHARS."""
    text = url if _PLAIN.fullmatch(url) else quote(url.encode("utf-8", "surrogatepass"), safe=_SAFE)
    if len(text) <= MAX_LINK_CHARS:
        return text
    digest = hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()
    return text[: MAX_LINK_CHARS - len(_MARK) - _DIGEST_HEX] + _MARK + digest


def is_truncated(form: str) -> bool:
    """Whether a display form was cut (so it is not a URL to follow)."""
    return len(form) == MAX_LINK_CHARS and _CUT.fullmatch(form) is not None
