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

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.live_stack import LiveStack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CHROMIUM = Path("/usr/bin/chromium")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
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
