"""DynamoDB for stored templates (the `templates` table, keyed by the tenant: invariant 7).

    T#t#TPL / H#<template>          head: name, latest published version, who and when
    T#t#TPL / N                     how many templates the tenant has (bounded, invariant 11)
    T#t#TPL#<template> / D          the draft: subject, html, text, sample variables, revision
    T#t#TPL#<template> / V#000001   a published version: a copy of the draft, written once with
                                    a condition that it does not exist, and never updated
    T#t#TPL#<template> / M#000001   its metadata (who published it, when): small, for listing

Publishing is one transaction: the version and its metadata are created, the head's latest
version moves from n to n+1 (conditional), and the draft's revision is checked to be the one that
was read, so a version is exactly the draft it was published from. Nothing in this module updates
or deletes a version item except deleting the whole template.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pynamodb.connection import Connection
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.core import dynamo, keys
from chalicelib.core.tables import TemplateModel

COUNT_SK = "N"
DRAFT_SK = "D"


def head_sk(template_id: str) -> str:
    return f"H#{template_id}"


def version_sk(version: int) -> str:
    return f"V#{version:06d}"


def meta_sk(version: int) -> str:
    return f"M#{version:06d}"


@dataclass(frozen=True)
class Content:
    subject: str
    html: str | None
    text: str | None
    sample: dict[str, Any]


@dataclass(frozen=True)
class Head:
    template_id: str
    name: str
    latest_version: int
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str


@dataclass(frozen=True)
class Draft:
    content: Content
    revision: int
    updated_at: str
    updated_by: str


@dataclass(frozen=True)
class Version:
    version: int
    published_at: str
    published_by: str
    content: Content | None = None  # None in listings


def _content(item: TemplateModel) -> Content:
    return Content(item.subject or "", item.html, item.text, dict(item.sample or {}))


def _head(item: TemplateModel) -> Head:
    return Head(
        item.sk[2:],
        item.name or "",
        int(item.latest_version or 0),
        item.created_at or "",
        item.created_by or "",
        item.updated_at or "",
        item.updated_by or "",
    )


class TemplateStore:
    def __init__(self, max_templates: int) -> None:
        self._max = max_templates

    # ------------------------------------------------------------------ reads

    def heads(self, tenant_id: str) -> list[Head]:
        with dynamo.storage("the template list"):
            return [
                _head(i)
                for i in TemplateModel.query(
                    keys.templates_pk(tenant_id), TemplateModel.sk.startswith("H#")
                )
            ]

    def head(self, tenant_id: str, template_id: str) -> Head | None:
        item = dynamo.get(TemplateModel, keys.templates_pk(tenant_id), head_sk(template_id))
        return None if item is None else _head(item)

    def draft(self, tenant_id: str, template_id: str) -> Draft | None:
        item = dynamo.get(TemplateModel, keys.template_pk(tenant_id, template_id), DRAFT_SK)
        if item is None:
            return None
        return Draft(
            _content(item), int(item.revision or 0), item.updated_at or "", item.updated_by or ""
        )

    def version(self, tenant_id: str, template_id: str, version: int) -> Version | None:
        pk = keys.template_pk(tenant_id, template_id)
        item = dynamo.get(TemplateModel, pk, version_sk(version))
        if item is None:
            return None
        return Version(version, item.created_at or "", item.created_by or "", _content(item))

    def versions(self, tenant_id: str, template_id: str) -> list[Version]:
        with dynamo.storage("the template's versions"):
            return [
                Version(int(i.sk[2:]), i.created_at or "", i.created_by or "")
                for i in TemplateModel.query(
                    keys.template_pk(tenant_id, template_id),
                    TemplateModel.sk.startswith("M#"),
                    scan_index_forward=False,
                )
            ]

    # ------------------------------------------------------------------ writes

    def create(
        self, tenant_id: str, template_id: str, name: str, content: Content, at: str, by: str
    ) -> bool:
        """False when the tenant already has the maximum number of templates."""
        heads_pk = keys.templates_pk(tenant_id)
        head = TemplateModel(
            heads_pk,
            head_sk(template_id),
            name=name,
            latest_version=0,
            created_at=at,
            created_by=by,
            updated_at=at,
            updated_by=by,
        )
        draft = self._draft_item(tenant_id, template_id, content, 1, at, by)
        counter = TemplateModel(heads_pk, COUNT_SK)
        room = TemplateModel.template_count.does_not_exist() | (
            TemplateModel.template_count < self._max
        )

        def write() -> None:
            with TransactWrite(connection=_connection()) as txn:
                txn.save(head, condition=TemplateModel.sk.does_not_exist())
                txn.save(draft, condition=TemplateModel.sk.does_not_exist())
                txn.update(counter, actions=[TemplateModel.template_count.add(1)], condition=room)

        return dynamo.write_if("creating a template", write)

    def save_draft(
        self,
        tenant_id: str,
        template_id: str,
        name: str | None,
        content: Content,
        revision: int,
        at: str,
        by: str,
    ) -> bool:
        """Replace the draft if it is still at `revision`; False when it is not (or gone)."""
        draft = self._draft_item(tenant_id, template_id, content, revision + 1, at, by)
        head = TemplateModel(keys.templates_pk(tenant_id), head_sk(template_id))
        head_actions: list[Action] = [
            TemplateModel.updated_at.set(at),
            TemplateModel.updated_by.set(by),
        ]
        if name is not None:
            head_actions.append(TemplateModel.name.set(name))

        def write() -> None:
            with TransactWrite(connection=_connection()) as txn:
                txn.save(draft, condition=TemplateModel.revision == revision)
                txn.update(head, actions=head_actions, condition=TemplateModel.sk.exists())

        return dynamo.write_if("saving a template draft", write)

    def publish(
        self, tenant_id: str, template_id: str, draft: Draft, latest: int, at: str, by: str
    ) -> bool:
        """Version latest+1 from `draft`; False when the draft or the head moved meanwhile."""
        pk = keys.template_pk(tenant_id, template_id)
        n = latest + 1
        c = draft.content
        version = TemplateModel(
            pk,
            version_sk(n),
            subject=c.subject,
            html=c.html,
            text=c.text,
            sample=c.sample,
            created_at=at,
            created_by=by,
        )
        meta = TemplateModel(pk, meta_sk(n), created_at=at, created_by=by)
        head = TemplateModel(keys.templates_pk(tenant_id), head_sk(template_id))
        new = TemplateModel.sk.does_not_exist()

        def write() -> None:
            with TransactWrite(connection=_connection()) as txn:
                txn.save(version, condition=new)
                txn.save(meta, condition=new)
                txn.condition_check(
                    TemplateModel, pk, DRAFT_SK, condition=TemplateModel.revision == draft.revision
                )
                txn.update(
                    head,
                    actions=[
                        TemplateModel.latest_version.set(n),
                        TemplateModel.updated_at.set(at),
                        TemplateModel.updated_by.set(by),
                    ],
                    condition=TemplateModel.latest_version == latest,
                )

        return dynamo.write_if("publishing a template", write)

    def delete(self, tenant_id: str, template_id: str) -> bool:
        """Remove the head (the template is gone from then on), count it down, then every item
        of the template. False if there was no such template."""
        heads_pk = keys.templates_pk(tenant_id)
        head = TemplateModel(heads_pk, head_sk(template_id))
        counter = TemplateModel(heads_pk, COUNT_SK)

        def write() -> None:
            with TransactWrite(connection=_connection()) as txn:
                txn.delete(head, condition=TemplateModel.sk.exists())
                txn.update(counter, actions=[TemplateModel.template_count.add(-1)])

        if not dynamo.write_if("deleting a template", write):
            return False
        pk = keys.template_pk(tenant_id, template_id)
        with dynamo.storage("deleting a template's versions"):
            items = list(TemplateModel.query(pk, attributes_to_get=["pk", "sk"]))
            self._delete_all(items)
        return True

    @staticmethod
    def _delete_all(items: Iterable[TemplateModel]) -> None:
        with TemplateModel.batch_write() as batch:
            for item in items:
                batch.delete(item)

    @staticmethod
    def _draft_item(
        tenant_id: str, template_id: str, content: Content, revision: int, at: str, by: str
    ) -> TemplateModel:
        return TemplateModel(
            keys.template_pk(tenant_id, template_id),
            DRAFT_SK,
            subject=content.subject,
            html=content.html,
            text=content.text,
            sample=content.sample,
            revision=revision,
            updated_at=at,
            updated_by=by,
        )


def _connection() -> Connection:
    meta = TemplateModel.Meta
    return Connection(region=meta.region, host=meta.host)
