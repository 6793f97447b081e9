"""Bulk requests (POST /mail/bulk): one template (inline, or a stored one by `template_id`) and
up to 1,000 recipients with their variables, rendered by the Mustache library of
templates/mustache.py. Checked as a whole before anything is sent: a missing variable, or a value
that would put a line break into the Subject header, is a 400 naming the recipient.
"""

from __future__ import annotations

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
from chalicelib.templates.mustache import MessageTemplate, parse_values

MAX_BULK_RECIPIENTS = 1_000

# (template_id, version as the caller gave it or None) -> the stored template's published version
TemplateResolver = Callable[[str, Any], MessageTemplate]


def parse_variables(raw: Any, field: str, template: MessageTemplate) -> dict[str, str]:
    """A recipient's variables (templates/mustache.py `parse_values`), every variable the template
    needs (a missing one is a 400 naming it), and no line break in a value that lands in the
    Subject header (invariant 8)."""
    variables = parse_values(raw, field)
    for name in (template.subject.variables | template.subject.sections) & set(variables):
        check_header(variables[name], f"{field}.{name}")  # it lands in the Subject header
    missing = template.missing(variables)
    if missing:
        raise bad(field, f"{field} lacks {', '.join(missing)}")
    return variables


def render_checked(
    template: MessageTemplate, variables: Mapping[str, str], field: str
) -> tuple[str, str | None, str | None]:
    """Render, then check what the rendering made: the subject's length and line breaks (template
    text and a value together can still form an encoded-word), the body's size."""
    subject, html_body, text_body = template.render(variables, field)
    if len(subject) > MAX_SUBJECT:
        raise bad(field, f"the rendered subject is over {MAX_SUBJECT} characters")
    if not subject.strip():
        raise bad(field, "the rendered subject is empty")
    check_header(subject, field)
    size = sum(len(b.encode("utf-8", "surrogatepass")) for b in (html_body, text_body) if b)
    if size > MAX_BODY_BYTES:
        raise bad(field, f"the rendered body is {size} bytes, over {MAX_BODY_BYTES}")
    return subject, html_body, text_body


def inline_template(raw: Any, prefix: str = "template.") -> MessageTemplate:
    """`{"subject", "html", "text"}` given in the request, checked as templates."""
    if not isinstance(raw, Mapping):
        raise bad(
            prefix.rstrip("."), "template must be an object with subject and html and/or text"
        )
    refuse_unknown(raw, _TEMPLATE_FIELDS, prefix)
    subject = parse_subject(raw.get("subject"), f"{prefix}subject")
    html_raw, text_raw = parse_bodies(raw.get("html"), raw.get("text"), prefix)
    return MessageTemplate.parse(subject, html_raw, text_raw, prefix)


@dataclass(frozen=True)
class BulkRecipient:
    to: Address
    variables: Mapping[str, str]


@dataclass(frozen=True)
class BulkRequest:
    sender: Address
    reply_to: tuple[Address, ...]
    template: MessageTemplate
    tags: tuple[tuple[str, str], ...]
    configuration_set: str | None
    recipients: tuple[BulkRecipient, ...]


_BULK_FIELDS = frozenset(
    [
        "from",
        "reply_to",
        "template",
        "template_id",
        "version",
        "recipients",
        "tags",
        "configuration_set",
    ]
)
_TEMPLATE_FIELDS = frozenset(("subject", "html", "text"))


def parse_bulk(body: Mapping[str, Any], resolve: TemplateResolver | None = None) -> BulkRequest:
    refuse_unknown(body, _BULK_FIELDS)
    template_id = body.get("template_id")
    if template_id is not None:
        if "template" in body:
            raise bad("template", "give template or template_id, not both")
        if resolve is None:
            raise bad("template_id", "stored templates are not available here")
        if not isinstance(template_id, str):
            raise bad("template_id", "template_id must be a string")
        template = resolve(template_id, body.get("version"))
    else:
        if "version" in body:
            raise bad("version", "version goes with template_id")
        template = inline_template(body.get("template"))
    raw_recipients = body.get("recipients")
    if not isinstance(raw_recipients, list) or not raw_recipients:
        raise bad("recipients", "recipients must be a non-empty list")
    if len(raw_recipients) > MAX_BULK_RECIPIENTS:
        raise bad("recipients", f"{len(raw_recipients)} recipients, over {MAX_BULK_RECIPIENTS}")
    recipients: list[BulkRecipient] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_recipients):
        recipient = _bulk_recipient(raw, f"recipients[{i}]", template)
        if recipient.to.key in seen:
            raise bad(f"recipients[{i}].to", f"{recipient.to.address} is listed twice")
        seen.add(recipient.to.key)
        recipients.append(recipient)
    return BulkRequest(
        sender=parse_address(body.get("from"), "from"),
        reply_to=address_list(body.get("reply_to"), "reply_to", MAX_REPLY_TO),
        template=template,
        tags=parse_tags(body.get("tags")),
        configuration_set=parse_configuration_set(body.get("configuration_set")),
        recipients=tuple(recipients),
    )


def _bulk_recipient(raw: Any, field: str, template: MessageTemplate) -> BulkRecipient:
    if not isinstance(raw, Mapping):
        raise bad(field, f"{field} must be an object with to and variables")
    refuse_unknown(raw, frozenset(("to", "variables")), f"{field}.")
    to = parse_address(raw.get("to"), f"{field}.to")
    variables = parse_variables(raw.get("variables"), f"{field}.variables", template)
    render_checked(template, variables, f"{field}.variables")
    return BulkRecipient(to, variables)
