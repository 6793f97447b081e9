"""Stored templates through the API (real tokens from moto's Cognito, DynamoDB Local, moto's
SESv2): create, edit the draft, publish immutable versions, preview, send one message or a bulk
batch by `template_id`; and the Mustache library's rules (escaping, refusals) directly."""

from __future__ import annotations

from typing import Any

import pytest
from chalicelib.core.errors import InvalidRequest
from chalicelib.templates.mustache import MessageTemplate, Template

from tests.sending import test_mail
from tests.sending.test_mail import SENDER, Tenant

# test_mail's fixtures, used here by name: a connected tenant, what reaches SES, inline workers.
wire, sender_identity, sent = test_mail.wire, test_mail.sender_identity, test_mail.sent
runner, tenant = test_mail.runner, test_mail.tenant

WELCOME = {
    "name": "Welcome",
    "subject": "Welcome, {{first_name}}",
    "html": '<p title="{{first_name}}">Hi {{first_name}}{{#vip}}, our VIP{{/vip}}</p>',
    "text": "Hi {{first_name}}, your code is {{code}}",
    "sample_variables": {"first_name": "Ada", "code": 7},
}


def _create(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    response = tenant.post_get("POST", "/templates", {**WELCOME, **changes})
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def _publish(tenant: Tenant, template_id: str) -> dict[str, Any]:
    response = tenant.post_get("POST", f"/templates/{template_id}/versions")
    assert response.status_code == 201, response.json_body
    return dict(response.json_body)


def test_a_template_lists_its_variables_and_is_listed(tenant: Tenant) -> None:
    created = _create(tenant)
    draft = created["draft"]
    assert draft["variables"] == ["code", "first_name"] and draft["sections"] == ["vip"]
    assert created["latest_version"] is None and created["versions"] == []
    assert draft["preview_url"].startswith("http")
    listed = tenant.post_get("GET", "/templates").json_body["items"]
    assert [t["template_id"] for t in listed] == [created["template_id"]]


def test_published_versions_are_immutable_and_sends_use_the_latest(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    tid = _create(tenant)["template_id"]
    first = _publish(tenant, tid)
    assert first["version"] == 1 and first["subject"] == WELCOME["subject"]
    edit = {**WELCOME, "subject": "Hello again, {{first_name}}", "revision": 1}
    edit.pop("name")
    changed = tenant.post_get("PUT", f"/templates/{tid}", edit)
    assert changed.status_code == 200, changed.json_body
    # The draft changed; version 1 did not.
    again = tenant.post_get("GET", f"/templates/{tid}/versions/1").json_body
    assert again["subject"] == WELCOME["subject"] and again["published_at"] == first["published_at"]
    # A stale revision is a 409: two editors never overwrite each other unseen.
    stale = tenant.post_get("PUT", f"/templates/{tid}", {**edit, "revision": 1})
    assert stale.status_code == 409 and stale.json_body["error"]["details"]["revision"] == 2
    # No route changes a version.
    for method in ("PUT", "DELETE", "POST"):
        response = tenant.post_get(method, f"/templates/{tid}/versions/1", {})
        assert response.status_code in (403, 404, 405), (method, response.status_code)
    assert _publish(tenant, tid)["version"] == 2
    versions = tenant.post_get("GET", f"/templates/{tid}").json_body["versions"]
    assert [v["version"] for v in versions] == [2, 1]

    variables = {"first_name": "Grace", "code": 42}
    to = ["alice@example.org"]
    latest = tenant.mail({"from": SENDER, "to": to, "template_id": tid, "variables": variables})
    assert latest.status_code == 200, latest.json_body
    pinned = tenant.mail(
        {"from": SENDER, "to": to, "template_id": tid, "version": 1, "variables": variables}
    )
    assert pinned.status_code == 200, pinned.json_body
    subjects = [p["Content"]["Simple"]["Subject"]["Data"] for p in sent]
    assert subjects == ["Hello again, Grace", "Welcome, Grace"]
    assert sent[0]["Content"]["Simple"]["Body"]["Text"]["Data"] == "Hi Grace, your code is 42"


def test_the_store_never_writes_a_version_twice(tenant: Tenant) -> None:
    from chalicelib.templates.store import TemplateStore

    tid = _create(tenant)["template_id"]
    store = TemplateStore(500)
    draft = store.draft(tenant.id, tid)
    assert draft is not None
    assert store.publish(tenant.id, tid, draft, 0, "2026-01-01T00:00:00.000Z", "t")
    # Publishing "version 1" again (a stale latest) is refused by its conditions.
    assert not store.publish(tenant.id, tid, draft, 0, "2026-01-02T00:00:00.000Z", "t")
    kept = store.version(tenant.id, tid, 1)
    assert kept is not None and kept.published_at == "2026-01-01T00:00:00.000Z"


def test_a_missing_variable_is_a_400_that_names_it(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    tid = _create(tenant)["template_id"]
    _publish(tenant, tid)
    body = {"from": SENDER, "to": ["a@example.org"], "template_id": tid, "variables": {"code": 1}}
    response = tenant.mail(body)
    assert response.status_code == 400
    error = response.json_body["error"]
    assert error["details"] == {"field": "variables"} and "first_name" in error["message"]
    inline = {**body, "subject": "x"}
    both = tenant.mail(inline)
    assert both.status_code == 400 and both.json_body["error"]["details"] == {"field": "subject"}
    assert sent == []


def test_an_unpublished_or_unknown_template_cannot_be_sent(tenant: Tenant) -> None:
    tid = _create(tenant)["template_id"]
    body = {"from": SENDER, "to": ["a@example.org"], "template_id": tid}
    assert tenant.mail(body).status_code == 409
    assert tenant.mail({**body, "template_id": "0" * 32}).status_code == 404
    assert tenant.mail({**body, "version": 3}).status_code == 404


def test_a_bulk_send_with_a_template_renders_each_recipients_variables_escaped(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    tid = _create(tenant)["template_id"]
    _publish(tenant, tid)
    recipients = [
        {"to": "alice@example.org", "variables": {"first_name": "Alice", "code": 1, "vip": "y"}},
        {
            "to": "bob@example.org",
            "variables": {"first_name": '<script>x</script>" onclick="y', "code": 2},
        },
    ]
    response = tenant.post_get(
        "POST", "/mail/bulk", {"from": SENDER, "template_id": tid, "recipients": recipients}
    )
    assert response.status_code == 202, response.json_body
    alice, bob = sent
    assert alice["Content"]["Simple"]["Subject"]["Data"] == "Welcome, Alice"
    assert alice["Content"]["Simple"]["Body"]["Html"]["Data"] == (
        '<p title="Alice">Hi Alice, our VIP</p>'
    )
    html = bob["Content"]["Simple"]["Body"]["Html"]["Data"]
    assert "<script>" not in html and '" onclick="' not in html
    assert "&lt;script&gt;x&lt;/script&gt;&quot; onclick=&quot;y" in html
    # The text part is not HTML: no escaping there.
    assert bob["Content"]["Simple"]["Body"]["Text"]["Data"].startswith("Hi <script>x</script>")
    missing = tenant.post_get(
        "POST",
        "/mail/bulk",
        {"from": SENDER, "template_id": tid, "recipients": [{"to": "c@example.org"}]},
    )
    assert missing.status_code == 400
    assert missing.json_body["error"]["details"] == {"field": "recipients[0].variables"}
    assert "code, first_name" in missing.json_body["error"]["message"]


def test_preview_renders_sample_variables_and_lists_the_missing_ones(tenant: Tenant) -> None:
    tid = _create(tenant)["template_id"]
    stored = tenant.post_get("POST", f"/templates/{tid}/preview", {}).json_body
    assert stored["subject"] == "Welcome, Ada" and stored["missing"] == []
    some = tenant.post_get(
        "POST", f"/templates/{tid}/preview", {"variables": {"first_name": "<b>"}}
    ).json_body
    assert some["missing"] == ["code"]
    assert some["html"] == '<p title="&lt;b&gt;">Hi &lt;b&gt;</p>'
    inline = tenant.post_get(
        "POST", "/template-preview", {"subject": "Hi {{x}}", "text": "{{y}}", "variables": {}}
    ).json_body
    assert inline["missing"] == ["x", "y"] and inline["subject"] == "Hi "


def test_a_template_is_refused_where_escaping_cannot_protect_or_it_is_not_mustache(
    tenant: Tenant,
) -> None:
    for html, why in (
        ("<p>{{{raw}}}</p>", "unescaped"),
        ("<a href={{url}}>x</a>", "inside an HTML tag"),
        ("<a title='{{t}}'>x</a>", "single-quoted"),
        ("<p>{{#open}}</p>", "not a valid Mustache template"),
        ("<p>{{> other}}</p>", "partials"),
    ):
        response = tenant.post_get("POST", "/templates", {**WELCOME, "html": html})
        assert response.status_code == 400, html
        error = response.json_body["error"]
        assert error["details"] == {"field": "html"} and why in error["message"], error


def test_a_deleted_template_is_gone_with_its_versions(tenant: Tenant) -> None:
    tid = _create(tenant)["template_id"]
    _publish(tenant, tid)
    assert tenant.post_get("DELETE", f"/templates/{tid}").status_code == 204
    assert tenant.post_get("GET", f"/templates/{tid}").status_code == 404
    assert tenant.post_get("GET", f"/templates/{tid}/versions/1").status_code == 404
    assert tenant.post_get("GET", "/templates").json_body["items"] == []
    assert tenant.post_get("DELETE", f"/templates/{tid}").status_code == 404


# ---------------------------------------------------------------------------- the library


def test_values_are_escaped_in_html_only() -> None:
    template = MessageTemplate.parse("Hi {{n}}", '<b title="{{n}}">{{n}}</b>', "{{n}}")
    subject, html, text = template.render({"n": '<i>&"x'})
    assert subject == 'Hi <i>&"x' and text == '<i>&"x'
    assert html == '<b title="&lt;i&gt;&amp;&quot;x">&lt;i&gt;&amp;&quot;x</b>'


def test_dotted_names_and_sections_follow_mustache() -> None:
    template = Template.parse("{{user.name}}{{#vip}}!{{/vip}}{{^vip}}?{{/vip}}", "t")
    assert template.variables == {"user.name"} and template.sections == {"vip"}
    assert template.render({"user.name": "Ada", "vip": "yes"}) == "Ada!"
    assert template.render({"user.name": "Ada"}) == "Ada?"


@pytest.mark.parametrize(
    "source",
    ["<{{tag}}>", "<p {{attr}}>", "<img src={{u}}>", "<a title='{{x}}'>", "<p>{{&raw}}</p>"],
)
def test_unsafe_html_placements_are_refused(source: str) -> None:
    with pytest.raises(InvalidRequest):
        Template.parse(source, "html", html=True)
    Template.parse(source, "text")  # the same text is fine where nothing is HTML


@pytest.mark.parametrize(
    "value",
    ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "data:text/html,x"],
)
def test_a_url_attribute_refuses_a_value_of_another_scheme_naming_the_variable(
    value: str,
) -> None:
    template = MessageTemplate.parse(
        "s", '<a href="{{url}}">x</a><img src="{{pic}}" alt="{{url}}">', None
    )
    assert template.html is not None and template.html.url_variables == {"url", "pic"}
    with pytest.raises(InvalidRequest) as refused:
        template.render(
            {"url": value, "pic": "https://example.org/a.png"}, "recipients[2].variables"
        )
    assert refused.value.details == {"field": "recipients[2].variables.url"}
    for fine in ("https://example.org/?a=1", "mailto:a@example.org", "/relative", "page.html"):
        html = template.render({"url": fine, "pic": "http://example.org/a.png"})[1]
        assert html is not None and 'href="' in html


def test_a_variable_after_the_templates_own_scheme_is_not_checked() -> None:
    template = Template.parse(
        '<a href="https://example.org/{{path}}" title="{{t}}">x</a>', "h", html=True
    )
    assert template.url_variables == frozenset()
    assert "javascript:" in template.render({"path": "javascript:x", "t": "javascript:y"})


def test_a_javascript_link_variable_is_a_400_on_send(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    tid = _create(tenant, html='<p>Hi {{first_name}} <a href="{{link}}">go</a></p>')["template_id"]
    _publish(tenant, tid)
    body = {
        "from": SENDER,
        "to": ["a@example.org"],
        "template_id": tid,
        "variables": {"first_name": "Ada", "code": 1, "link": "javascript:alert(1)"},
    }
    response = tenant.mail(body)
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["details"] == {"field": "variables.link"}
    assert sent == []


def test_a_deleted_template_cannot_be_sent_by_a_pinned_version(
    tenant: Tenant, sent: list[dict[str, Any]]
) -> None:
    # The head goes first when a template is deleted, then its versions: one left behind (the
    # second step failed) must not be sendable by naming it.
    from chalicelib.core import keys
    from chalicelib.core.tables import TemplateModel
    from chalicelib.templates.store import head_sk

    tid = _create(tenant)["template_id"]
    _publish(tenant, tid)
    TemplateModel(keys.templates_pk(tenant.id), head_sk(tid)).delete()
    body = {"from": SENDER, "to": ["a@example.org"], "template_id": tid, "version": 1}
    response = tenant.mail({**body, "variables": {"first_name": "Ada", "code": 1}})
    assert response.status_code == 404, response.json_body
    assert sent == []
