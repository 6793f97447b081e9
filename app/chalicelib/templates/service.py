"""Stored templates: create, edit (the draft), publish (an immutable version), list, delete,
preview, and the published version a send uses (`resolve`).

A template has one draft, which every edit replaces (its `revision` guards concurrent editors:
give the revision you read and a stale one is a 409), and published versions 1, 2, ... copied
from the draft and never changed. A send names a template by ID and, optionally, a version; with
none it takes the latest published version; a draft is never sent. Every part is a Mustache
template (templates/mustache.py), checked when it is saved, so a stored template always renders.

Errors: InvalidRequest (400, naming the field), NotFound (404), Conflict (409: a stale revision,
no published version yet, the tenant's template limit).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import Conflict, NotFound
from chalicelib.core.headers import bad, check_header
from chalicelib.templates.mustache import MessageTemplate, parse_values
from chalicelib.templates.store import Content, Draft, Head, TemplateStore, Version

MAX_TEMPLATES = 500  # per tenant
MAX_VERSIONS = 1_000  # per template
MAX_NAME = 100
MAX_SUBJECT = 998
MAX_CONTENT_BYTES = 300_000  # subject + html + text, UTF-8: one DynamoDB item holds it
_ID = re.compile(r"^[0-9a-f]{32}$")
_FIELDS = frozenset(("name", "subject", "html", "text", "sample_variables", "revision"))

PreviewUrl = Callable[[str, str, str], str]  # (tenant, template, "draft" | version) -> frame URL


def _now() -> str:
    return keys.iso_ms(datetime.now(UTC))


class TemplateService:
    def __init__(
        self,
        store: TemplateStore,
        preview_url: PreviewUrl | None = None,
        clock: Callable[[], str] = _now,
    ) -> None:
        self._store, self._preview_url, self._clock = store, preview_url, clock

    # ------------------------------------------------------------------ reads

    def list(self, tenant_id: str) -> dict[str, Any]:
        heads = sorted(self._store.heads(tenant_id), key=lambda h: h.name.lower())
        return {"items": [_head_view(h) for h in heads], "limit": MAX_TEMPLATES}

    def get(self, tenant_id: str, template_id: str) -> dict[str, Any]:
        head, draft = self._head_and_draft(tenant_id, template_id)
        versions = self._store.versions(tenant_id, template_id)
        return {
            **_head_view(head),
            "draft": {
                **_content_view(draft.content),
                "revision": draft.revision,
                "updated_at": draft.updated_at,
                "updated_by": draft.updated_by,
                "preview_url": self._preview(tenant_id, template_id, "draft"),
            },
            "versions": [
                {
                    "version": v.version,
                    "published_at": v.published_at,
                    "published_by": v.published_by,
                }
                for v in versions
            ],
        }

    def version(self, tenant_id: str, template_id: str, raw: str) -> dict[str, Any]:
        n = _version_number(raw, "version")
        found = self._store.version(tenant_id, _checked_id(template_id), n)
        if found is None or found.content is None:
            raise NotFound(f"template {template_id} has no version {n}")
        return {
            "template_id": template_id,
            "version": n,
            "published_at": found.published_at,
            "published_by": found.published_by,
            **_content_view(found.content),
            "preview_url": self._preview(tenant_id, template_id, str(n)),
        }

    # ------------------------------------------------------------------ writes

    def create(self, tenant_id: str, body: Mapping[str, Any], by: str) -> dict[str, Any]:
        _refuse_unknown(body)
        name = _name(body.get("name"))
        content = _content(body)
        template_id = uuid.uuid4().hex
        if not self._store.create(tenant_id, template_id, name, content, self._clock(), by):
            raise Conflict(
                f"the account has {MAX_TEMPLATES} templates, the most it may keep; delete one first"
            )
        return self.get(tenant_id, template_id)

    def update(
        self, tenant_id: str, template_id: str, body: Mapping[str, Any], by: str
    ) -> dict[str, Any]:
        """Replace the draft (name, subject, html, text, sample_variables). With `revision`, only
        if the draft is still at it."""
        _refuse_unknown(body)
        _, draft = self._head_and_draft(tenant_id, template_id)
        expected = body.get("revision", draft.revision)
        if isinstance(expected, bool) or not isinstance(expected, int):
            raise bad("revision", "revision must be the integer the draft was read at")
        if expected != draft.revision:
            raise _stale(draft.revision)
        name = _name(body["name"]) if "name" in body else None
        content = _content(body)
        if not self._store.save_draft(
            tenant_id, template_id, name, content, expected, self._clock(), by
        ):
            latest = self._store.draft(tenant_id, template_id)
            if latest is None:
                raise NotFound(f"no template {template_id}")
            raise _stale(latest.revision)
        return self.get(tenant_id, template_id)

    def publish(self, tenant_id: str, template_id: str, by: str) -> dict[str, Any]:
        head, draft = self._head_and_draft(tenant_id, template_id)
        if head.latest_version >= MAX_VERSIONS:
            raise Conflict(f"template {template_id} has {MAX_VERSIONS} versions, the most it may")
        if not self._store.publish(
            tenant_id, template_id, draft, head.latest_version, self._clock(), by
        ):
            raise Conflict(
                "the template changed while it was being published (another edit or "
                "publication); read it again and publish again",
                details={"retryable": True},
            )
        return self.version(tenant_id, template_id, str(head.latest_version + 1))

    def delete(self, tenant_id: str, template_id: str) -> None:
        if not self._store.delete(tenant_id, _checked_id(template_id)):
            raise NotFound(f"no template {template_id}")

    # ------------------------------------------------------------------ rendering

    def preview(
        self, tenant_id: str, template_id: str | None, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Render with sample variables: a stored template's draft or version (`version`), or
        the inline subject/html/text given. Missing variables render empty and are listed."""
        allowed = (
            {"variables", "version"} if template_id else {"variables", "subject", "html", "text"}
        )
        for name in body:
            if name not in allowed:
                raise bad(name, f"unknown field {name}")
        if template_id is None:
            content = _content({**body, "sample_variables": None})
        else:
            content = self._content_of(tenant_id, template_id, body.get("version", "draft"))
        values = (
            parse_values(body["variables"], "variables")
            if "variables" in body
            else dict(content.sample)
        )
        template = _template(content)
        subject, html_body, text_body = template.render(values)
        return {
            "subject": subject,
            "html": html_body,
            "text": text_body,
            "variables": sorted(template.variables),
            "sections": sorted(template.sections),
            "missing": template.missing(values),
        }

    def resolve(self, tenant_id: str, template_id: Any, version: Any) -> MessageTemplate:
        """The published version a send uses: `version`, or the latest published one."""
        if not isinstance(template_id, str) or not _ID.match(template_id):
            raise bad("template_id", "template_id is the 32-character ID of a stored template")
        # The head in both cases: a template is deleted head first, then its versions, so a
        # version left behind by an interrupted deletion is never sent by naming it.
        head = self._store.head(tenant_id, template_id)
        if head is None:
            raise NotFound(f"no template {template_id}", details={"field": "template_id"})
        if version is None:
            if head.latest_version == 0:
                raise Conflict(
                    f"template {template_id} has no published version yet: publish its draft "
                    f"(POST /templates/{template_id}/versions) or send with version",
                    details={"field": "template_id"},
                )
            n = head.latest_version
        else:
            n = _version_number(version, "version")
        found = self._store.version(tenant_id, template_id, n)
        if found is None or found.content is None:
            raise NotFound(
                f"template {template_id} has no version {n}", details={"field": "version"}
            )
        c = found.content
        return MessageTemplate.parse(c.subject, c.html, c.text, template_id=template_id, version=n)

    def frame_html(self, tenant_id: str, template_id: str, which: str) -> str:
        """The HTML part rendered with the stored sample variables (the editor's frame)."""
        content = self._content_of(tenant_id, template_id, which)
        html_body = _template(content).render(content.sample)[1]
        return html_body or ""

    # ------------------------------------------------------------------ helpers

    def _content_of(self, tenant_id: str, template_id: str, which: Any) -> Content:
        if which == "draft":
            return self._head_and_draft(tenant_id, template_id)[1].content
        n = _version_number(which, "version")
        found: Version | None = self._store.version(tenant_id, _checked_id(template_id), n)
        if found is None or found.content is None:
            raise NotFound(f"template {template_id} has no version {n}")
        return found.content

    def _head_and_draft(self, tenant_id: str, template_id: str) -> tuple[Head, Draft]:
        _checked_id(template_id)
        head = self._store.head(tenant_id, template_id)
        draft = self._store.draft(tenant_id, template_id) if head else None
        if head is None or draft is None:
            raise NotFound(f"no template {template_id}")
        return head, draft

    def _preview(self, tenant_id: str, template_id: str, which: str) -> str | None:
        return self._preview_url(tenant_id, template_id, which) if self._preview_url else None


def _head_view(head: Head) -> dict[str, Any]:
    return {
        "template_id": head.template_id,
        "name": head.name,
        "latest_version": head.latest_version or None,
        "created_at": head.created_at,
        "created_by": head.created_by,
        "updated_at": head.updated_at,
        "updated_by": head.updated_by,
    }


def _content_view(content: Content) -> dict[str, Any]:
    template = _template(content)
    return {
        "subject": content.subject,
        "html": content.html,
        "text": content.text,
        "sample_variables": content.sample,
        "variables": sorted(template.variables),
        "sections": sorted(template.sections),
    }


def _template(content: Content) -> MessageTemplate:
    return MessageTemplate.parse(content.subject, content.html, content.text)


def _content(body: Mapping[str, Any]) -> Content:
    """subject, html and/or text as Mustache templates (checked now), and sample variables."""
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise bad("subject", "subject is required")
    if len(subject) > MAX_SUBJECT:
        raise bad("subject", f"subject is {len(subject)} characters, over {MAX_SUBJECT}")
    check_header(subject, "subject")
    parts: dict[str, str | None] = {}
    for name in ("html", "text"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise bad(name, f"{name} must be a string")
        parts[name] = value or None
    if parts["html"] is None and parts["text"] is None:
        raise bad("html", "give html, text or both")
    size = sum(len(p.encode("utf-8", "surrogatepass")) for p in (subject, *parts.values()) if p)
    if size > MAX_CONTENT_BYTES:
        raise bad(
            "html" if parts["html"] else "text",
            f"the template is {size} bytes, over {MAX_CONTENT_BYTES}",
        )
    MessageTemplate.parse(subject, parts["html"], parts["text"])  # 400 naming the part
    sample = parse_values(body.get("sample_variables"), "sample_variables")
    return Content(subject, parts["html"], parts["text"], sample)


def _name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise bad("name", "name is required")
    name = raw.strip()
    if len(name) > MAX_NAME:
        raise bad("name", f"name is over {MAX_NAME} characters")
    return name


def _refuse_unknown(body: Mapping[str, Any]) -> None:
    for name in body:
        if name not in _FIELDS:
            raise bad(name, f"unknown field {name}")


def _checked_id(template_id: str) -> str:
    if not _ID.match(template_id):
        raise NotFound(f"no template {template_id[:64]!r}")
    return template_id


def _version_number(raw: Any, field: str) -> int:
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_VERSIONS:
        raise bad(field, f"{field} is a published version number (1-{MAX_VERSIONS})")
    return raw


def _stale(revision: int) -> Conflict:
    return Conflict(
        f"the draft was changed by someone else (it is at revision {revision}); read it again",
        details={"revision": revision},
    )
