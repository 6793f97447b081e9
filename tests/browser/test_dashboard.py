"""The dashboard in a real browser (Debian's Chromium through Playwright) against the local stack
as `make dev` starts it: what a newcomer does by hand, step by step. A screenshot of every page,
at desktop and phone sizes, is saved under test-artifacts/dashboard/.

Waits poll the page (Playwright's `expect`) for what a user would wait for; nothing here asserts
on how long anything took."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from tests.live_stack import LiveStack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
BOUNCE = "bounce@simulator.amazonses.com"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def stack(live_stack: LiveStack) -> LiveStack:
    live_stack.wait_seeded()
    return live_stack


class Problems:
    """Console errors, uncaught exceptions and failed requests: each fails the test."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        page.on("pageerror", lambda e: self.seen.append(f"uncaught: {e}"))
        page.on("console", self._console)
        page.on("requestfailed", lambda r: self.seen.append(f"request failed: {r.url}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.seen.append(f"console error: {message.text}")


@pytest.fixture
def page(browser: Browser, stack: LiveStack) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, base_url=stack.url)
    page = context.new_page()
    problems = Problems(page)
    yield page
    context.close()
    # A 4xx the test provoked shows as a console error for that resource; anything else fails.
    unexpected = [p for p in problems.seen if "status of 4" not in p]
    assert not unexpected, unexpected


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def settled(page: Page) -> None:
    """The page has rendered and nothing is loading."""
    expect(page.locator("#main .page, #public form").first).to_be_visible()
    expect(page.locator(".loading")).to_have_count(0, timeout=30_000)


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#shell")).to_be_visible()
    settled(page)


def go(page: Page, hash_route: str) -> None:
    page.evaluate("route => { location.hash = route; }", hash_route)
    settled(page)


def test_sign_in_and_see_the_overview_chart_with_seeded_data(page: Page, stack: LiveStack) -> None:
    page.goto("/")
    settled(page)
    shot(page, "sign-in")
    sign_in(page, stack.email, stack.password)
    go(page, "#/?range=30d")
    sent = page.locator("[data-total=SENT] .value")
    assert int(sent.inner_text().replace(",", "")) >= 300
    assert int(page.locator("[data-total=BOUNCED] .value").inner_text().replace(",", "")) > 0
    # Each rate shows the state the API computed against SES's lines, in words and colour.
    rates = stack.get("/stats?range=30d")["rates"]
    words = {"ok": "Healthy", "warning": "Past SES's review line", "at_risk": "SES may pause"}
    for name in ("bounce", "complaint"):
        card = page.locator(f"[data-rate='{name} rate']")
        expect(card).to_have_class(re.compile(rf"\brate {rates[name]['state']}\b"))
        expect(card.locator(".state")).to_contain_text(words[rates[name]["state"]])
    chart = page.locator("canvas#events-chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 200
    # Chart.js drew the seeded series: the sum of the plotted "Sent" points is the Sent total.
    plotted = page.evaluate(
        "() => Chart.getChart('events-chart').data.datasets"
        ".find(d => d.label === 'Sent').data.reduce((a, b) => a + b, 0)"
    )
    assert plotted == int(sent.inner_text().replace(",", ""))
    shot(page, "overview")


BY = {  # the dashboard's words for each class (web/dashboard/engagement.js)
    "human": "by a person",
    "apple_privacy": "by Apple's proxy",
    "image_proxy": "through an image proxy",
    "scanner": "by a security scanner",
    "unknown": "by something unidentified",
}


def _sentence(opens: dict[str, Any]) -> str:
    """What the dashboard says of `opens` (count, by_class), every class counted."""
    count, by_class = opens["count"], opens["by_class"]
    assert count and sum(by_class.values()) == count
    times = "once" if count == 1 else f"{count:,} times"
    parts = [f"{by_class[c]:,} {words}" for c, words in BY.items() if by_class.get(c)]
    return f"Opened {times}: {', '.join(parts)}."


def _opened_by(stack: LiveStack, cls: str) -> dict[str, Any]:
    """A message of one recipient with at least one open of class `cls` (its final verdict)."""
    rows = stack.get(f"/events?range=30d&status=OPENED&engagement={cls}&limit=50")["events"]
    for message_id in dict.fromkeys(r["message_id"] for r in rows):
        detail = stack.get(f"/messages/{message_id}")
        if detail["opens"]["by_class"].get(cls) and len(detail["recipients"]) == 1:
            return {"message_id": message_id, **detail}
    raise AssertionError(f"no message of one recipient opened by {cls} in the demo traffic")


def test_people_and_machines_on_the_overview_the_activity_and_a_message(
    page: Page, stack: LiveStack
) -> None:
    sign_in(page, stack.email, stack.password)
    go(page, "#/?range=30d")
    rates = stack.get("/stats?range=30d")["rates"]
    for name in ("open", "click"):
        card = page.locator(f"[data-rate='{name} rate']")
        expect(card).to_have_attribute("data-lead", "human")  # the default: people's rate leads
        expect(card.locator(".value")).to_have_text(f"{rates[name]['human'] * 100:.1f}%")
        expect(card.locator(".alt")).to_contain_text(f"{rates[name]['value'] * 100:.1f}%")
    assert rates["open"]["value"] > rates["open"]["human"]  # the demo's machines open mail
    expect(page.locator("[data-who=opens] li[data-class=apple_privacy]")).to_be_visible()
    labels = page.evaluate("() => Chart.getChart('events-chart').data.datasets.map(d => d.label)")
    assert "Opened by people" in labels and "Clicked by people" in labels
    shot(page, "overview-engagement")

    go(page, "#/activity?range=30d&engagement=scanner")
    who = page.locator("table.events tbody td[data-label=Who]")
    expect(who.first).to_be_visible()
    assert set(who.all_inner_texts()) == {"Scanner"}
    page.locator("table.events tbody td[data-label=Subject] a").first.click()
    settled(page)
    sentences = page.locator("p.engagement-sentence", has_text="by a security scanner")
    expect(sentences.first).to_be_visible()
    expect(page.locator("ol.timeline [data-engagement=scanner]").first).to_be_visible()
    shot(page, "message-engagement")

    # A person's opens and Apple's proxy's, in the words of the message page's sentence, as
    # many as the API counts; and the recipient page's breakdown of the same opens.
    for cls, words in (("human", "by a person"), ("apple_privacy", "by Apple's proxy")):
        message = _opened_by(stack, cls)
        go(page, f"#/message/{message['message_id']}")
        opened = page.locator("p.engagement-sentence[data-kind=opens]")
        expect(opened).to_have_text(_sentence(message["opens"]))
        expect(opened).to_contain_text(f"{message['opens']['by_class'][cls]} {words}")
        (address,) = message["recipients"]
        mine = stack.get(f"/recipients/{quote(address)}?range=30d")["totals"]
        go(page, f"#/recipient/{quote(address)}?range=30d")
        card = page.locator("[data-total=opens]")
        expect(card.locator(".value")).to_have_text(f"{mine['opens']:,}")
        expect(card.locator(".sub")).to_have_text(f"{mine['opens_by'].get('human', 0)} by a person")
        both = page.locator("p.engagement-sentence")
        counts = {"count": mine["opens"], "by_class": mine["opens_by"]}
        expect(both).to_contain_text(_sentence(counts))
        expect(both).to_contain_text(f"{mine['opens_by'][cls]} {words}")
    shot(page, "recipient-engagement")
    # Mail sent to several addresses (the demo has none): its opens are said to be nobody's in
    # particular, never "recorded before SESami told them apart".
    said = page.evaluate(
        """async () => {
          const { sentence } = await import(new URL("static/engagement.js", document.baseURI));
          return [sentence("Opened", 0, {}, 3), sentence("Opened", 2, { human: 1 }, 1)];
        }"""
    )
    shared = "on mail sent to several addresses, which SES does not attribute to one recipient"
    assert said == [
        f"Opened 3 times: 3 {shared}.",
        f"Opened 3 times: 1 by a person, 1 recorded before SESami told them apart, 1 {shared}.",
    ]

    go(page, "#/account")
    lead = page.get_by_label("The overview leads with")
    for choice, words in (("raw", "raw rates"), ("human", "people's rates")):
        lead.select_option(choice)
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator(".form-status .notice.ok", has_text=words)).to_be_visible()
        if choice == "raw":
            go(page, "#/?range=30d")
            card = page.locator("[data-rate='open rate']")
            expect(card).to_have_attribute("data-lead", "raw")
            expect(card.locator(".value")).to_have_text(f"{rates['open']['value'] * 100:.1f}%")
            go(page, "#/account")
            lead = page.get_by_label("The overview leads with")
    page.get_by_label("Indexed tags").fill("campaign, bogus tag")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".form-status .notice.error")).to_contain_text("not a tag name")
    page.get_by_label("Indexed tags").fill("campaign")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".form-status .notice.ok")).to_contain_text("Indexed tags: campaign")


def test_filter_activity_to_bounced_and_open_a_message_timeline(
    page: Page, stack: LiveStack
) -> None:
    sign_in(page, stack.email, stack.password)
    go(page, "#/activity")
    page.get_by_label("Range").select_option("30d")
    page.get_by_label("Bounced").check()
    page.get_by_role("button", name="Apply filters").click()
    settled(page)
    expect(page).to_have_url(re.compile(r"status=BOUNCED"))
    statuses = page.locator("table.events tbody td[data-label=Status]")
    expect(statuses.first).to_be_visible()
    texts = statuses.all_inner_texts()
    assert texts and set(texts) == {"Bounced"}, texts
    shot(page, "activity-bounced")

    first_subject = page.locator("table.events tbody td[data-label=Subject] a").first
    subject = first_subject.inner_text()
    first_subject.click()
    settled(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(subject)
    expect(page.locator("ol.timeline li[data-status=BOUNCED]").first).to_be_visible()
    expect(page.locator("ol.timeline li[data-status=SENT]")).to_have_count(1)
    shot(page, "message")

    recipient = page.locator("td[data-label=Recipient] a").first
    address = recipient.inner_text()
    recipient.click()
    settled(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(address)
    expect(page.locator("td[data-label=Subject] a", has_text=subject)).to_have_count(1)
    shot(page, "recipient")


def test_send_to_the_bounce_simulator_then_unsuppress(page: Page, stack: LiveStack) -> None:
    sign_in(page, stack.email, stack.password)
    go(page, "#/send")
    shot(page, "send")
    form = page.get_by_role("form", name="Send an email")
    form.get_by_label("From").fill("SESami Demo <news@example.net>")
    form.get_by_label("To", exact=True).fill(BOUNCE)
    form.get_by_label("Subject").fill(f"Browser test {uuid.uuid4().hex[:6]}")
    form.get_by_label("Text").fill("This address bounces.")
    form.get_by_role("button", name="Send").click()
    sent = form.locator(".notice.ok")
    expect(sent).to_contain_text("Sent.")
    sent.get_by_role("link", name="Follow this message").click()
    settled(page)
    # The simulator's Bounce arrives through the real ingest a moment later: reload until it shows.
    heading_badge = page.locator(".page-head .badge")
    for _ in range(30):
        if heading_badge.inner_text() == "Bounced":
            break
        page.wait_for_timeout(500)
        page.reload()
        settled(page)
    expect(heading_badge).to_have_text("Bounced")
    expect(page.locator("ol.timeline li[data-status=BOUNCED]")).to_contain_text("Permanent")
    shot(page, "message-bounced")

    # The address is on the suppression list, and a second send is refused with that reason.
    go(page, f"#/suppression?q={BOUNCE}")
    row = page.locator("table.suppression tbody tr", has_text=BOUNCE)
    expect(row).to_have_count(1)
    expect(row.locator("td[data-label=Reason]")).to_contain_text("BOUNCE")
    shot(page, "suppression")

    go(page, "#/send")
    form = page.get_by_role("form", name="Send an email")
    form.get_by_label("From").fill("news@example.net")
    form.get_by_label("To", exact=True).fill(BOUNCE)
    form.get_by_label("Subject").fill("Again")
    form.get_by_label("Text").fill("Refused: suppressed.")
    form.get_by_role("button", name="Send").click()
    expect(form.locator(".notice.warn")).to_contain_text("suppression list")
    expect(form.locator(".notice.warn")).to_contain_text(BOUNCE)

    # Remove it: the dialog asks why, and the tombstone keeps the answer.
    go(page, f"#/suppression?q={BOUNCE}")
    page.once("dialog", lambda dialog: dialog.accept("browser test: address fixed"))
    page.locator(f"button[data-remove='{BOUNCE}']").click()
    expect(page.locator(".notice.ok")).to_contain_text("removed from the suppression list")
    expect(page.locator("table.suppression tbody tr", has_text=BOUNCE)).to_have_count(0)
    entry = stack.get(f"/suppression-list/{BOUNCE}")
    assert entry["suppressed"] is False
    assert entry["last_change"]["why"] == "browser test: address fixed"


def test_links_and_account_pages(page: Page, stack: LiveStack) -> None:
    sign_in(page, stack.email, stack.password)
    go(page, "#/links?range=30d")
    rows = page.locator("table.links tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 3
    shot(page, "links")

    go(page, "#/account")
    account = stack.get("/account")
    expect(page.locator("#external-id")).to_have_text(account["external_id"])
    expect(page.locator("pre.commands")).to_contain_text("pulumi up")
    expect(page.locator("li[data-check=role_assumable] .badge")).to_have_text("OK")
    expect(page.locator("li[data-check=last_event] .badge")).to_have_text("OK")
    shot(page, "account")


def test_erase_a_recipient_from_its_page(page: Page, stack: LiveStack) -> None:
    address = f"erase-{uuid.uuid4().hex[:8]}@example.com"
    sign_in(page, stack.email, stack.password)
    go(page, "#/send")
    form = page.get_by_role("form", name="Send an email")
    form.get_by_label("From").fill("news@example.net")
    form.get_by_label("To", exact=True).fill(address)
    form.get_by_label("Subject").fill("To be erased")
    form.get_by_label("Text").fill("Hello.")
    form.get_by_role("button", name="Send").click()
    expect(form.locator(".notice.ok")).to_contain_text("Sent.")
    go(page, f"#/recipient/{address}")
    for _ in range(30):  # the simulated Send and Delivery arrive through ingest a moment later
        if page.locator("table tbody tr").count():
            break
        page.wait_for_timeout(500)
        page.reload()
        settled(page)
    expect(page.locator("table tbody tr")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Erase…").click()
    report = page.locator("[data-erased=true]")
    expect(report).to_contain_text("Erased.", timeout=60_000)  # the erasure runs in the request
    expect(report).to_contain_text("messages erased")
    shot(page, "recipient-erased")
    page.reload()
    settled(page)
    expect(page.locator(".empty")).to_contain_text("No messages")


def test_sign_up_with_the_confirmation_code_gets_an_empty_tenant_of_ones_own(
    page: Page, stack: LiveStack
) -> None:
    email = f"newcomer-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/#/sign-up")
    settled(page)
    shot(page, "sign-up")
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill("Newcomer-2026!")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    shot(page, "confirm")
    page.get_by_label("Confirmation code").fill("123456")  # moto accepts any code
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".notice.ok")).to_contain_text("confirmed")
    expect(page.get_by_label("Email")).to_have_value(email)
    page.get_by_label("Password").fill("Newcomer-2026!")
    page.get_by_role("button", name="Sign in").click()
    settled(page)
    expect(page.locator(".notice.info")).to_contain_text("No email events")
    assert page.locator("[data-total=SENT] .value").inner_text() == "0"  # none of the demo's
    go(page, "#/account")
    expect(page.locator(".page-head .badge")).to_have_text("Not connected")
    expect(page.locator("#external-id")).to_have_text(re.compile(r"^sesami-[0-9a-f]{48}$"))
    assert page.locator("#external-id").inner_text() != stack.get("/account")["external_id"]
    go(page, "#/activity?range=1y")
    expect(page.locator(".empty")).to_contain_text("No events match")
    go(page, "#/account")
    zone = page.locator("#danger-zone")
    expect(zone.get_by_role("button", name="Disconnect AWS account")).to_be_disabled()
    expect(page.locator("#main table")).to_have_count(0)  # nothing audited yet
    shot(page, "account-danger-zone")

    # Sign out: back to the sign-in page, and the pages are closed until signing in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/#/activity")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => localStorage.getItem('sesami.session')") is None


def test_a_wrong_password_is_refused_on_the_page(page: Page, stack: LiveStack) -> None:
    page.goto("/")
    page.get_by_label("Email").fill(stack.email)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".notice.error")).to_contain_text("wrong email or password")
    expect(page.locator("#shell")).to_be_hidden()


def test_webhooks_send_a_test_event_and_see_it_delivered_then_the_alerts(
    page: Page, stack: LiveStack
) -> None:
    sign_in(page, stack.email, stack.password)
    go(page, "#/webhooks")
    row = page.locator("table.endpoints tbody tr", has_text=stack.info["webhook_receiver"])
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Send test event").click()
    settled(page)
    shot(page, "webhooks")
    page.locator("table.endpoints tbody tr", has_text=stack.info["webhook_receiver"]).get_by_role(
        "link", name="Deliveries"
    ).click()
    settled(page)
    delivered = page.locator("table.deliveries tbody tr", has_text="webhook.test").filter(
        has_text="Delivered"
    )
    for _ in range(30):  # the local delivery thread polls the queue every second
        if delivered.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
        settled(page)
    expect(delivered.first).to_be_visible()
    delivered.first.get_by_role("button", name="Details").click()
    expect(page.locator("pre.payload")).to_contain_text("webhook.test")
    shot(page, "webhook-deliveries")

    go(page, "#/alerts")
    expect(page.get_by_role("form", name="bounce rate")).to_be_visible()
    expect(page.get_by_role("form", name="complaint rate")).to_be_visible()
    shot(page, "alerts")


def test_every_page_works_on_a_phone(browser: Browser, stack: LiveStack) -> None:
    context = browser.new_context(viewport=PHONE, base_url=stack.url, is_mobile=True)
    page = context.new_page()
    problems = Problems(page)
    try:
        sign_in(page, stack.email, stack.password)
        nav = page.locator("#nav")
        expect(nav).to_be_hidden()  # folded behind the menu button
        for route, name in [
            ("#/?range=30d", "overview"),
            ("#/activity?range=30d", "activity"),
            ("#/links?range=30d", "links"),
            ("#/suppression", "suppression"),
            ("#/send", "send"),
            ("#/templates", "templates"),
            ("#/identities", "identities"),
            ("#/account", "account"),
            ("#/webhooks", "webhooks"),
            ("#/alerts", "alerts"),
            ("#/team", "team"),
            ("#/keys", "keys"),
        ]:
            page.get_by_role("button", name="Menu").click()
            expect(nav).to_be_visible()
            go(page, route)
            expect(nav).to_be_hidden()
            # Nothing is wider than the screen: no sideways scrolling.
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (name, width)
            shot(page, f"phone-{name}")
    finally:
        context.close()
    assert not problems.seen, problems.seen


def _call(stack: LiveStack, path: str, credential: str) -> int:
    """The status of a GET with this bearer (a token or an API key)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310
        f"{stack.url}{path}", headers={"Authorization": f"Bearer {credential}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_invite_accept_as_the_invitee_then_create_and_revoke_an_api_key(
    page: Page, browser: Browser, stack: LiveStack
) -> None:
    from devstack import provision

    invitee = f"colleague-{uuid.uuid4().hex[:8]}@example.com"
    sign_in(page, stack.email, stack.password)
    go(page, "#/team")
    shot(page, "team")
    form = page.get_by_role("form", name="Invite a colleague")
    form.get_by_label("Colleague's email").fill(invitee)
    form.get_by_label("Role").select_option("viewer")
    form.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".notice.ok")).to_contain_text(f"{invitee} is invited as viewer")
    pending = page.locator("table.invitations tbody tr", has_text=invitee)
    expect(pending).to_have_count(1)
    expect(pending.locator("td[data-label=Role]")).to_have_text("viewer")

    # The invitee's login exists (Cognito emails a temporary password; here it is set directly).
    provision.aws(stack.moto, "cognito-idp").admin_set_user_password(
        UserPoolId=stack.info["SESAMI_USER_POOL_ID"],
        Username=invitee,
        Password="Colleague-2026!",
        Permanent=True,
    )
    theirs = browser.new_context(viewport=DESKTOP, base_url=stack.url)
    other = theirs.new_page()
    problems = Problems(other)
    try:
        sign_in(other, invitee, "Colleague-2026!")
        # Everything else is refused until they accept: the dashboard shows the invitation.
        expect(other.get_by_role("heading", name="You are invited")).to_be_visible()
        expect(other.locator("#invitation-team")).to_have_text("Demo Co")
        expect(other.locator("#invitation-by")).to_have_text(stack.email)
        expect(other.locator("#invitation-role")).to_have_text("viewer")
        expect(other.locator("#nav a:visible")).to_have_count(0)
        shot(other, "invitation")
        other.get_by_role("button", name="Accept the invitation").click()
        expect(other.locator("[data-total=SENT] .value")).to_be_visible()
        settled(other)
        # A viewer: no Send or API keys in the menu, and no invite form on the team page.
        expect(other.locator("#nav a[data-page=team]")).to_be_visible()
        expect(other.locator("#nav a[data-page=keys]")).to_be_hidden()
        expect(other.locator("#nav a[data-page=send]")).to_be_hidden()
        go(other, "#/team")
        expect(other.locator("table.team tbody tr", has_text=invitee)).to_have_count(1)
        expect(other.get_by_role("form", name="Invite a colleague")).to_have_count(0)
        expect(other.locator("[data-remove-user]")).to_have_count(0)
        go(other, "#/keys")
        expect(other.locator(".notice.info")).to_contain_text("Only admins manage API keys")
    finally:
        theirs.close()
    assert not [p for p in problems.seen if "status of 4" not in p], problems.seen

    page.reload()  # the admin's team page, read again
    settled(page)
    joined = page.locator("table.team tbody tr", has_text=invitee)
    expect(joined).to_have_count(1)
    expect(page.locator("table.invitations tbody tr", has_text=invitee)).to_have_count(0)

    # An API key: shown once, works, listed by its prefix only, revoked at once.
    go(page, "#/keys")
    shot(page, "keys")
    create = page.get_by_role("form", name="Create an API key")
    name = f"browser {uuid.uuid4().hex[:6]}"
    create.get_by_label("Name").fill(name)
    create.get_by_label("Scope").select_option("read")
    create.get_by_role("button", name="Create key").click()
    shown = page.locator("#new-key")
    expect(shown).to_have_text(re.compile(r"^sk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$"))
    expect(page.get_by_role("button", name="Copy the key")).to_be_visible()
    expect(page.locator(".new-key .notice.warn")).to_contain_text("only time")
    key = shown.inner_text()
    prefix = key[:19]
    row = page.locator("table.keys tbody tr", has_text=name)
    expect(row.locator("td[data-label=Prefix]")).to_have_text(prefix)
    expect(row.locator("td[data-label=Status]")).to_have_text("active")
    shot(page, "key-created")
    assert _call(stack, "/events?range=24h", key) == 200
    assert _call(stack, "/api-keys", key) == 403  # a read key manages no keys
    page.get_by_role("button", name="I have stored it").click()
    expect(page.locator("#new-key")).to_have_count(0)
    assert key[20:] not in page.content()  # the secret is nowhere in the page any more
    page.reload()
    settled(page)
    assert key[20:] not in page.content()

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"button[data-revoke='{prefix}']").click()
    expect(page.locator(".notice.ok")).to_contain_text(f"{prefix}) is revoked")
    row = page.locator("table.keys tbody tr", has_text=name)
    expect(row.locator("td[data-label=Status]")).to_have_text("revoked")
    assert _call(stack, "/events?range=24h", key) == 401


def test_delete_a_tenant_from_the_danger_zone(page: Page, stack: LiveStack) -> None:
    email = f"leaver-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/#/sign-up")
    settled(page)
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill("Leaver-2026!")
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Confirmation code").fill("123456")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".notice.ok")).to_contain_text("confirmed")
    page.get_by_label("Password").fill("Leaver-2026!")
    page.get_by_role("button", name="Sign in").click()
    # Signing in lands on the overview; wait for it, or its redirect would override the next route.
    expect(page.locator("#shell")).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible(timeout=60_000)
    settled(page)
    go(page, "#/account")
    # A new tenant's first account page waits on its creation (a sign-up under load: slow).
    expect(page.locator("dd.mono").first).to_be_visible(timeout=60_000)
    tenant_id = page.locator("dd.mono").first.inner_text()
    asked: list[str] = []

    def confirm(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept(tenant_id)

    page.once("dialog", confirm)
    page.locator("#danger-zone").get_by_role("button", name="Delete tenant…").click()
    expect(page.locator("#danger-zone .notice")).to_contain_text(
        re.compile("Deleting|deleted"), timeout=30_000
    )
    assert tenant_id in asked[0] and "logins" in asked[0]  # it said what goes, and asked for the ID
    shot(page, "account-deleting")
    # From now on the tenant's pages are closed (410), while the deletion goes on.
    go(page, "#/activity")
    expect(page.locator(".notice.error")).to_contain_text("being deleted")


class _Pixel:
    """A remote image on loopback that counts who fetched it (a tracking pixel's stand-in)."""

    def __init__(self) -> None:
        import http.server
        import threading

        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

            def log_message(self, *args: Any) -> None:
                return None

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pixel.gif"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_sent_messages_html_shows_in_a_sandbox_that_runs_no_script(
    browser: Browser, stack: LiveStack
) -> None:
    pixel = _Pixel()
    context = browser.new_context(viewport=DESKTOP, base_url=stack.url)
    page = context.new_page()
    problems = Problems(page)
    try:
        sign_in(page, stack.email, stack.password)
        go(page, "#/send")
        form = page.get_by_role("form", name="Send an email")
        form.get_by_label("From").fill("news@example.net")
        form.get_by_label("To", exact=True).fill("success@simulator.amazonses.com")
        form.get_by_label("Subject").fill(f"Framed {uuid.uuid4().hex[:6]}")
        form.get_by_label("Text").fill("The text part.")
        form.get_by_label("HTML (optional)").fill(
            '<p style="color:#0f766e" onmouseover="parent.postMessage(1, \'*\')">Hello frame</p>'
            f'<img alt="pixel" src="{pixel.url}"><script>document.title = "ran"</script>'
        )
        form.get_by_role("button", name="Send").click()
        form.locator(".notice.ok").get_by_role("link", name="Follow this message").click()
        settled(page)
        panel = page.locator("[data-content-status=stored]")
        expect(panel).to_contain_text("The text part.")
        frame_element = panel.locator("iframe.mail-frame")
        assert frame_element.get_attribute("sandbox") == ""  # no allow-scripts, no same-origin
        frame = page.frame_locator("iframe.mail-frame")
        expect(frame.locator("p")).to_have_text("Hello frame")
        page.wait_for_timeout(500)
        assert pixel.hits == []  # remote content stays out until asked for
        # The frame runs no script, whatever its HTML: one inserted now does not run either.
        inner = next(f for f in page.frames if "/frames/" in f.url)
        ran = inner.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'document.body.dataset.ran = \"yes\"'; document.body.append(s);"
            " return document.body.dataset.ran || null; }"
        )
        assert ran is None
        assert inner.evaluate("() => document.title") != "ran"
        shot(page, "message-content")
        panel.get_by_role("button", name="Load remote content").click()
        expect(frame.locator("p")).to_have_text("Hello frame")
        for _ in range(20):
            if pixel.hits:
                break
            page.wait_for_timeout(250)
        assert pixel.hits == ["/pixel.gif"]
    finally:
        context.close()
        pixel.close()
    # The browser itself reports what it refused: the script (the frame is sandboxed without
    # allow-scripts) and, before the viewer asked, the remote image (the frame's CSP).
    blocked_script = [p for p in problems.seen if "sandboxed" in p and "allow-scripts" in p]
    blocked_image = [p for p in problems.seen if "pixel.gif" in p and "Content Security" in p]
    assert blocked_script and blocked_image, problems.seen
    blocked_image += [p for p in problems.seen if p == f"request failed: {pixel.url}"]
    others = [p for p in problems.seen if p not in blocked_script + blocked_image]
    assert others == [], others


def test_templates_and_identities_pages(page: Page, stack: LiveStack) -> None:
    sign_in(page, stack.email, stack.password)
    go(page, "#/templates")
    page.get_by_role("button", name="New template").click()
    expect(page).to_have_url(re.compile(r"#/templates/[0-9a-f]{32}"))
    settled(page)
    expect(page.locator("p.small.muted").first).to_contain_text("first_name")
    frame = page.frame_locator("iframe.mail-frame")
    expect(frame.locator("p").first).to_have_text("Hi Ada,")
    form = page.get_by_role("form", name="Edit the draft")
    form.get_by_label("Subject").fill("Hello {{first_name}} from {{team}}")
    form.get_by_role("button", name="Save draft").click()
    expect(form.locator(".notice.ok")).to_contain_text("Draft saved")
    expect(page.locator(".notice.warn")).to_contain_text("team")
    form.get_by_role("button", name="Publish").click()
    expect(form.locator(".notice.ok")).to_contain_text("Published version 1")
    shot(page, "template-editor")
    go(page, "#/templates")
    expect(page.locator("table tbody tr").first).to_contain_text("version 1")
    shot(page, "templates")
    go(page, "#/identities")
    expect(page.locator("[data-identity='example.net']")).to_contain_text("SUCCESS")
    shot(page, "identities")


def test_a_pending_domain_shows_the_dns_records_to_add(page: Page, stack: LiveStack) -> None:
    # moto answers every identity verified, with no DKIM tokens or MAIL FROM (an emulator gap):
    # the page's GET /identities is answered with what the real service makes of a pending
    # domain as SES describes it (botocore's Stubber, tests/identities/test_identities.py).
    from chalicelib.core.signing import Signer
    from chalicelib.identities.service import IdentityService

    from tests.identities.test_identities import PENDING_DOMAIN, _stubbed, _tenant

    adapter, stub = _stubbed()
    listed = {"IdentityType": "DOMAIN", "IdentityName": "news.example", "SendingEnabled": True,
              "VerificationStatus": "PENDING"}  # fmt: skip
    stub.add_response("list_email_identities", {"EmailIdentities": [listed]}, {"PageSize": 50})
    stub.add_response("get_email_identity", PENDING_DOMAIN, {"EmailIdentity": "news.example"})
    stub.add_response("get_account", {"ProductionAccessEnabled": False, "SendingEnabled": True})
    with stub:
        body = IdentityService(lambda t: adapter, Signer(b"k" * 32)).list(_tenant(), "50", None)
    page.route(re.compile(r"/identities\?"), lambda route: route.fulfill(json=body))
    sign_in(page, stack.email, stack.password)
    go(page, "#/identities")
    domain = page.locator("[data-identity='news.example']")
    expect(domain.locator(".state").first).to_have_text("PENDING")
    expect(domain).to_contain_text("DNS records to add")
    rows = domain.locator("table tbody tr")
    expect(rows).to_have_count(5)  # three DKIM CNAMEs, the MAIL FROM MX and SPF
    first = rows.filter(has_text="tok1._domainkey.news.example")
    expect(first).to_contain_text("CNAME")
    expect(first).to_contain_text("tok1.dkim.amazonses.com")
    expect(first).to_contain_text("pending")
    expect(rows.filter(has_text="MX")).to_contain_text("10 feedback-smtp.eu-west-1.amazonses.com")
    expect(page.locator(".notice.warn")).to_contain_text("Sandbox")
    shot(page, "identities-pending")
