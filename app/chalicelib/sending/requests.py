"""Reading and checking what a caller asks SESami to send (POST /mail, POST /mail/bulk).

Invariant 8 (no CR or LF reaches an outgoing header) is kept by `core/headers.py`, through which
every value that ends up in a header goes.

Addresses are checked by core/addresses.py (email-validator, syntax only: SES, not SESami, is
the judge of deliverability), which also gives each its canonical key: the suppression check
and the records look recipients up by it. Every refusal is an InvalidRequest naming the field
(`details={"field": ...}`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formataddr
from typing import Any

from chalicelib.core import addresses
from chalicelib.core.headers import bad, check_header

MAX_RECIPIENTS = 50  # SES: to + cc + bcc of one message
MAX_REPLY_TO = 10
MAX_SUBJECT = 998  # RFC 5322 line length
MAX_BODY_BYTES = 10 * 1024 * 1024  # html + text, UTF-8
MAX_DISPLAY_NAME = 200
# SES allows 50 tags per message; SESami adds its own (RESERVED_TAG_PREFIX) to tie events back.
SESAMI_TAGS = 2
MAX_TAGS = 50 - SESAMI_TAGS
RESERVED_TAG_PREFIX = "sesami-"

_TAG_PART = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # SES MessageTag name and value
_CONFIG_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# ------------------------------------------------------------------------------ addresses


@dataclass(frozen=True)
class Address:
    address: str  # ASCII (IDN domains in punycode), as given to SES
    name: str | None = None

    @property
    def key(self) -> str:
        """The canonical key SESami keys recipients by (core/addresses.py), as ingest does."""
        return addresses.key(self.address)

    def header(self) -> str:
        """`Name <address>`, quoted as needed; a non-ASCII name as an RFC 2047 encoded-word."""
        return formataddr((self.name, self.address), "utf-8") if self.name else self.address


def parse_address(raw: Any, field: str) -> Address:
    """`a@b`, `Name <a@b>`, or `{"address": "a@b", "name": "Name"}`."""
    name: str | None = None
    as_object = isinstance(raw, Mapping)
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"address", "name"}
        if unknown:
            raise bad(field, f"{field} has unknown fields: {', '.join(sorted(unknown))}")
        name, raw = raw.get("name"), raw.get("address")
        if name is not None and not isinstance(name, str):
            raise bad(field, f"{field}.name must be a string")
    if not isinstance(raw, str) or not raw.strip():
        raise bad(field, f"{field} must be an email address")
    check_header(raw, field)
    try:
        valid = addresses.parse(raw, allow_display_name=not as_object)
    except addresses.InvalidAddress as exc:
        raise bad(field, f"{field} is not a valid email address: {exc}") from None
    name = valid.display_name if name is None else name
    if name is not None:
        check_header(name, field)
        if len(name) > MAX_DISPLAY_NAME:
            raise bad(field, f"{field}: the display name is over {MAX_DISPLAY_NAME} characters")
    return Address(valid.ascii, name or None)


def address_list(raw: Any, field: str, limit: int) -> tuple[Address, ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    if len(items) > limit:
        raise bad(field, f"{field} has {len(items)} addresses, over {limit}")
    return tuple(parse_address(item, f"{field}[{i}]") for i, item in enumerate(items))


# ------------------------------------------------------------------------------ other fields


def _text(raw: Any, field: str, *, required: bool = False) -> str | None:
    if raw is None or raw == "":
        if required:
            raise bad(field, f"{field} is required")
        return None
    if not isinstance(raw, str):
        raise bad(field, f"{field} must be a string")
    return raw


def parse_subject(raw: Any, field: str) -> str:
    subject = _text(raw, field, required=True) or ""
    if len(subject) > MAX_SUBJECT:
        raise bad(field, f"{field} is {len(subject)} characters, over {MAX_SUBJECT}")
    return check_header(subject, field)


def parse_bodies(html_raw: Any, text_raw: Any, prefix: str = "") -> tuple[str | None, str | None]:
    html_body, text_body = _text(html_raw, f"{prefix}html"), _text(text_raw, f"{prefix}text")
    if html_body is None and text_body is None:
        raise bad(f"{prefix}html", f"give {prefix}html, {prefix}text or both")
    size = sum(len(b.encode("utf-8", "surrogatepass")) for b in (html_body, text_body) if b)
    if size > MAX_BODY_BYTES:
        raise bad(
            f"{prefix}html" if html_body else f"{prefix}text",
            f"the body is {size} bytes, over {MAX_BODY_BYTES} (html and text together)",
        )
    return html_body, text_body


def parse_tags(raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise bad("tags", "tags must be an object of name: value")
    if len(raw) > MAX_TAGS:
        raise bad("tags", f"tags has {len(raw)} entries, over {MAX_TAGS} (SESami adds its own)")
    out = []
    for name, value in raw.items():
        field = f"tags.{name}"
        check_header(name, "tags")
        if not isinstance(value, str):
            raise bad(field, f"{field} must be a string")
        check_header(value, field)
        if not _TAG_PART.match(name):
            raise bad("tags", "a tag name is 1-256 ASCII letters, digits, '_' or '-'")
        if not _TAG_PART.match(value):
            raise bad(field, f"{field} must be 1-256 ASCII letters, digits, '_' or '-'")
        if name.lower().startswith(RESERVED_TAG_PREFIX):
            raise bad(field, f"tag names starting with {RESERVED_TAG_PREFIX!r} are SESami's")
        out.append((name, value))
    return tuple(out)


def parse_configuration_set(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not _CONFIG_SET.match(raw):
        raise bad("configuration_set", "configuration_set must be 1-64 letters, digits, '-', '_'")
    return raw


def refuse_unknown(body: Mapping[str, Any], known: frozenset[str], prefix: str = "") -> None:
    for name in body:
        if name not in known:
            raise bad(f"{prefix}{name}", f"unknown field {prefix}{name}")


# ------------------------------------------------------------------------------ POST /mail


@dataclass(frozen=True)
class MailRequest:
    sender: Address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    html: str | None
    text: str | None
    tags: tuple[tuple[str, str], ...]
    configuration_set: str | None
    skip_suppressed: bool

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc + self.bcc


_MAIL_FIELDS = frozenset(
    [
        "from",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "subject",
        "html",
        "text",
        "tags",
        "configuration_set",
        "skip_suppressed",
        "template_id",
        "version",
        "variables",
    ]
)
# (template_id, version, variables) as the caller gave them -> rendered (subject, html, text)
RenderStored = Callable[[Any, Any, Any], tuple[str, str | None, str | None]]


def parse_mail(body: Mapping[str, Any], render: RenderStored | None = None) -> MailRequest:
    """The request; with `template_id` the content is a stored template's published version
    rendered with `variables` (by `render`), instead of subject/html/text."""
    refuse_unknown(body, _MAIL_FIELDS)
    if "template_id" in body:
        for name in ("subject", "html", "text"):
            if body.get(name) is not None:
                raise bad(name, f"give template_id or subject/html/text, not both ({name})")
        if render is None:
            raise bad("template_id", "stored templates are not available here")
        subject, html_body, text_body = render(
            body["template_id"], body.get("version"), body.get("variables")
        )
    else:
        for name in ("version", "variables"):
            if name in body:
                raise bad(name, f"{name} goes with template_id")
        html_body, text_body = parse_bodies(body.get("html"), body.get("text"))
        subject = parse_subject(body.get("subject"), "subject")
    to, cc, bcc = (address_list(body.get(f), f, MAX_RECIPIENTS) for f in ("to", "cc", "bcc"))
    count = len(to) + len(cc) + len(bcc)
    if count == 0:
        raise bad("to", "give at least one recipient in to, cc or bcc")
    if count > MAX_RECIPIENTS:
        raise bad("to", f"{count} recipients in to, cc and bcc, over {MAX_RECIPIENTS}")
    skip = body.get("skip_suppressed", False)
    if not isinstance(skip, bool):
        raise bad("skip_suppressed", "skip_suppressed must be true or false")
    return MailRequest(
        sender=parse_address(body.get("from"), "from"),
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=address_list(body.get("reply_to"), "reply_to", MAX_REPLY_TO),
        subject=subject,
        html=html_body,
        text=text_body,
        tags=parse_tags(body.get("tags")),
        configuration_set=parse_configuration_set(body.get("configuration_set")),
        skip_suppressed=skip,
    )
