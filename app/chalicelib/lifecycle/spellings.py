"""Every way one address can be written down in SESami's tables, and scrubbing it out.

SES reports an address as the sender gave it (any case, a Unicode or a punycode domain), headers
carry it in display form (`Ann <ann@example.com>`), links carry it percent-encoded
(`?u=ann%40example.com`), and JSON text may escape its non-ASCII characters. An erasure looks
for all of them, case-insensitively.

    forms = spellings("Ann@Bücher.de")        # lower-cased forms to look for
    mentions(text, forms)                     # True if any form occurs
    scrubbed, changed = scrub(doc, forms)     # strings redacted, keys naming it dropped
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

REDACTED = "[erased]"


def address_forms(address: str) -> set[str]:
    """The address with its domain as Unicode and as punycode, lower-cased."""
    text = address.strip().lower()
    local, _, domain = text.rpartition("@")
    if not local:
        return {text}
    forms = {text}
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = domain
    try:
        unicode_domain = ascii_domain.encode("ascii").decode("idna")
    except UnicodeError:
        unicode_domain = domain
    forms |= {f"{local}@{ascii_domain}", f"{local}@{unicode_domain}"}
    return forms


def spellings(address: str) -> frozenset[str]:
    """Every form to look for (lower-case): plain, percent-encoded, JSON-escaped."""
    out: set[str] = set()
    for form in address_forms(address):
        out.add(form)
        out.add(quote(form, safe="").lower())
        out.add(quote(form, safe="@").lower())
        out.add(quote(form, safe="@+").lower())
        out.add(json.dumps(form)[1:-1].lower())
    return frozenset(out)


def mentions(text: str | None, forms: Iterable[str]) -> bool:
    if not text:
        return False
    low = text.lower()
    return any(f in low for f in forms)


def _pattern(forms: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted(forms, key=len, reverse=True)
    return re.compile("|".join(re.escape(f) for f in alternatives), re.IGNORECASE)


def scrub(value: Any, forms: frozenset[str]) -> tuple[Any, bool]:
    """`value` (JSON-like) with every mention of the address redacted in strings and every
    entry whose key mentions it dropped; and whether anything changed."""
    pattern = _pattern(forms)

    def walk(v: Any) -> tuple[Any, bool]:
        if isinstance(v, str):
            new = pattern.sub(REDACTED, v)
            return new, new != v
        if isinstance(v, dict):
            out, changed = {}, False
            for key, item in v.items():
                if isinstance(key, str) and pattern.search(key):
                    changed = True
                    continue
                new, c = walk(item)
                out[key] = new
                changed |= c
            return out, changed
        if isinstance(v, list | tuple | set | frozenset):
            items = [walk(x) for x in v]
            changed = any(c for _, c in items)
            rebuilt = [x for x, _ in items]
            if isinstance(v, list):
                return rebuilt, changed
            return type(v)(rebuilt), changed
        return v, False

    return walk(value)
