"""Bulk requests (POST /mail/bulk): one template with `{{name}}` placeholders and up to 1,000
recipients with their variables. Checked as a whole before anything is sent: a missing variable,
or a value that would put a line break into the Subject header, is a 400 naming the recipient.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.core.headers import bad, check_header
from chalicelib.sending.requests import (
    MAX_BODY_BYTES,
    MAX_REPLY_TO,
    MAX_SUBJECT,
    Address,
    address_list,
    parse_address,
    parse_bodies,
    parse_configuration_set,
    parse_subject,
    parse_tags,
    refuse_unknown,
)

MAX_BULK_RECIPIENTS = 1_000
MAX_VARIABLES = 50
MAX_VARIABLE_VALUE = 10_000

_VARIABLE = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
_VARIABLE_NAME = re.compile(rf"^{_VARIABLE}$")
_PLACEHOLDER = re.compile(r"\{\{\s*(" + _VARIABLE + r")\s*\}\}")


@dataclass(frozen=True)
class Template:
    """Text with `{{name}}` placeholders, split once into literals and variable names."""

    parts: tuple[str, ...]  # literal, name, literal, name, ..., literal

    @classmethod
    def parse(cls, text: str) -> Template:
        return cls(tuple(_PLACEHOLDER.split(text)))

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.parts[1::2])

    def render(self, values: Mapping[str, str], escape: Callable[[str], str] = str) -> str:
        return "".join(p if i % 2 == 0 else escape(values[p]) for i, p in enumerate(self.parts))

    def rendered_bytes(self, values: Mapping[str, str], escape: Callable[[str], str] = str) -> int:
        """len(render(...).encode()) without building the text."""
        return sum(
            len((p if i % 2 == 0 else escape(values[p])).encode("utf-8", "surrogatepass"))
            for i, p in enumerate(self.parts)
        )


def escape_html(value: str) -> str:
    return html.escape(value, quote=True)


@dataclass(frozen=True)
class BulkRecipient:
    to: Address
    variables: Mapping[str, str]


@dataclass(frozen=True)
class BulkRequest:
    sender: Address
    reply_to: tuple[Address, ...]
    subject: Template
    html: Template | None
    text: Template | None
    tags: tuple[tuple[str, str], ...]
    configuration_set: str | None
    recipients: tuple[BulkRecipient, ...]


_BULK_FIELDS = frozenset(
    ["from", "reply_to", "template", "recipients", "tags", "configuration_set"]
)
_TEMPLATE_FIELDS = frozenset(("subject", "html", "text"))


def parse_bulk(body: Mapping[str, Any]) -> BulkRequest:
    refuse_unknown(body, _BULK_FIELDS)
    raw_template = body.get("template")
    if not isinstance(raw_template, Mapping):
        raise bad("template", "template must be an object with subject and html and/or text")
    refuse_unknown(raw_template, _TEMPLATE_FIELDS, "template.")
    subject = Template.parse(parse_subject(raw_template.get("subject"), "template.subject"))
    html_raw, text_raw = parse_bodies(
        raw_template.get("html"), raw_template.get("text"), "template."
    )
    html_t = Template.parse(html_raw) if html_raw is not None else None
    text_t = Template.parse(text_raw) if text_raw is not None else None
    raw_recipients = body.get("recipients")
    if not isinstance(raw_recipients, list) or not raw_recipients:
        raise bad("recipients", "recipients must be a non-empty list")
    if len(raw_recipients) > MAX_BULK_RECIPIENTS:
        raise bad("recipients", f"{len(raw_recipients)} recipients, over {MAX_BULK_RECIPIENTS}")
    needed = frozenset().union(*(t.names for t in (subject, html_t, text_t) if t))
    recipients: list[BulkRecipient] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_recipients):
        recipient = _bulk_recipient(raw, f"recipients[{i}]", needed, subject, html_t, text_t)
        if recipient.to.key in seen:
            raise bad(f"recipients[{i}].to", f"{recipient.to.address} is listed twice")
        seen.add(recipient.to.key)
        recipients.append(recipient)
    return BulkRequest(
        sender=parse_address(body.get("from"), "from"),
        reply_to=address_list(body.get("reply_to"), "reply_to", MAX_REPLY_TO),
        subject=subject,
        html=html_t,
        text=text_t,
        tags=parse_tags(body.get("tags")),
        configuration_set=parse_configuration_set(body.get("configuration_set")),
        recipients=tuple(recipients),
    )


def _bulk_recipient(
    raw: Any,
    field: str,
    needed: frozenset[str],
    subject: Template,
    html_t: Template | None,
    text_t: Template | None,
) -> BulkRecipient:
    if not isinstance(raw, Mapping):
        raise bad(field, f"{field} must be an object with to and variables")
    refuse_unknown(raw, frozenset(("to", "variables")), f"{field}.")
    to = parse_address(raw.get("to"), f"{field}.to")
    raw_vars = raw.get("variables", {})
    if not isinstance(raw_vars, Mapping) or len(raw_vars) > MAX_VARIABLES:
        raise bad(f"{field}.variables", f"variables must be an object of ≤ {MAX_VARIABLES} values")
    variables: dict[str, str] = {}
    for name, value in raw_vars.items():
        vfield = f"{field}.variables.{name}"
        if not _VARIABLE_NAME.match(name):
            raise bad(vfield, "a variable name is a letter or '_' then letters, digits, _ . -")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad(vfield, f"{vfield} must be a string or a number")
        text = str(value)
        if len(text) > MAX_VARIABLE_VALUE:
            raise bad(vfield, f"{vfield} is over {MAX_VARIABLE_VALUE} characters")
        if name in subject.names:
            check_header(text, vfield)  # it lands in the Subject header
        variables[name] = text
    missing = sorted(needed - set(variables))
    if missing:
        raise bad(f"{field}.variables", f"{field}.variables lacks {', '.join(missing)}")
    rendered_subject = subject.render(variables)
    if len(rendered_subject) > MAX_SUBJECT:
        raise bad(f"{field}.variables", f"the rendered subject is over {MAX_SUBJECT} characters")
    # Template text and a value together can still form an encoded-word: check the whole.
    check_header(rendered_subject, f"{field}.variables")
    size = (html_t.rendered_bytes(variables, escape_html) if html_t else 0) + (
        text_t.rendered_bytes(variables) if text_t else 0
    )
    if size > MAX_BODY_BYTES:
        raise bad(f"{field}.variables", f"the rendered body is {size} bytes, over {MAX_BODY_BYTES}")
    return BulkRecipient(to, variables)
