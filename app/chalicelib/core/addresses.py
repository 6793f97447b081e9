"""The one canonical key of an email address (invariant 12), and the one validator of addresses.

Every path that stores or looks up an address keys it by `key(address)`: ingest (the recipients
of SES events, their by_recipient rows and message aggregates), the suppression list (entries,
tombstones, prefix search, unsubscribe tokens, the SES sync both ways), sending's suppression
check (single and bulk), and the history reads (GET /recipients/{email}, GET /events?recipient=).
So `Henry <Henry@BÜCHER.de>`, `henry@bücher.de` and `HENRY@xn--bcher-kva.de` are one recipient,
`henry@xn--bcher-kva.de`, and a suppression of any spelling blocks them all.

The key is the address as SES is given it, lower-cased:
- the domain in its ASCII (IDNA / punycode) form, as SES requires it and reports it: UTS #46
  mapping, non-transitional (so `straße.de` stays `xn--strae-oqa.de`, not `strasse.de`), the way
  email-validator encodes it;
- the local part lower-cased. RFC 5321 lets a mailbox be case-sensitive, but SES and the mailbox
  providers SESami's customers mail treat `Henry@` and `henry@` as one person, and a suppression
  that a change of case could bypass is the failure this key exists to prevent;
- a display name (`Name <addr>`) is dropped; an address never carries one in a key.
Internationalised local parts (`ü@example.de`, RFC 6531 SMTPUTF8) are refused by `parse`: SES
does not send to them, so SESami can neither send to nor suppress one, and says so with a 400.

`parse(raw)` validates an address a tenant or the internet gives (email-validator: syntax only,
no DNS; SES is the judge of deliverability) and returns its key with its SES form. `key(address)`
is the key of any address, for the addresses SES reports and for look-ups: for a plain ASCII
address-spec (every address SES reports) it is the address lower-cased, which equals what
email-validator makes of it, without the validator's cost on the ingest path (about 27 µs per
address, against ingest's ~60 µs per event; email-validator also costs ~35 ms to import). Any other
spelling goes through `parse`. A string `parse` refuses still gets a stable key (NFC, lower-cased):
SES reported it, so its events must be stored, and since nobody can type it into the API it never
needs to match another spelling. The tests check with Hypothesis that the fast path agrees with
the validator and that `key(key(x)) == key(x)`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# An address-spec with no display name, quotes, comments, brackets or spaces, all ASCII: for
# these, IDNA of the domain is its lower case (A-labels stay as they are), so the key is the
# address lower-cased. Anything else (Unicode, `Name <a@b>`, `"quoted"@x`) goes to the validator.
_PLAIN = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[A-Za-z0-9.-]+")


class InvalidAddress(ValueError):
    """Not an address SESami can send to or key; the message says why (email-validator's words)."""


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    ascii: str  # as SES is given it: the local part as written, the domain in IDNA ASCII
    key: str  # the canonical key: `ascii` lower-cased
    display_name: str | None


def parse(raw: str, *, allow_display_name: bool = True) -> ParsedAddress:
    """Validate an address (optionally `Name <addr>`); raise InvalidAddress saying why."""
    # Imported here: email-validator costs ~35 ms to import, and the ingest path never needs it.
    from email_validator import EmailNotValidError, validate_email

    try:
        valid = validate_email(
            raw.strip(),
            check_deliverability=False,
            allow_smtputf8=False,  # SES does not send to internationalised local parts
            allow_display_name=allow_display_name,
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    ascii_form = str(valid.ascii_email)  # always set when SMTPUTF8 is refused
    return ParsedAddress(ascii_form, ascii_form.lower(), valid.display_name or None)


def key(address: str) -> str:
    """The canonical key of `address` (module docstring). Never raises."""
    if address.isascii() and _PLAIN.fullmatch(address):
        return address.lower()
    try:
        return parse(address).key
    except InvalidAddress:
        return unicodedata.normalize("NFC", unicodedata.normalize("NFC", address.strip()).lower())


def for_display(address_key: str) -> str:
    """The key with its domain in Unicode (`user@bücher.de`), for people to read; never a key."""
    local, at, domain = address_key.rpartition("@")
    if not at or "xn--" not in domain:
        return address_key
    import idna

    try:
        return f"{local}@{idna.decode(domain)}"
    except idna.IDNAError:
        return address_key


def prefix_key(prefix: str) -> str:
    """A search prefix in the key's form: lower-cased, and a Unicode domain part in IDNA. The
    labels of a Unicode domain are encoded whole, so `user@bücher` finds `user@bücher.de` but
    `user@büch` finds nothing (punycode of a part of a label is not a part of its punycode).
    Raises InvalidAddress for what no key can start with."""
    text = prefix.strip().lower()
    if text.isascii():
        return text
    local, at, domain = text.partition("@")
    if not local.isascii():
        raise InvalidAddress(
            "no address SESami keeps has non-ASCII characters before the @ (SES does not send "
            "to internationalised local parts)"
        )
    import idna

    labels = []
    for label in domain.split("."):
        try:
            labels.append(label if label.isascii() else idna.encode(label, uts46=True).decode())
        except idna.IDNAError as exc:
            raise InvalidAddress(f"the domain part is not valid IDNA: {exc}") from None
    return f"{local}{at}{'.'.join(labels)}"
