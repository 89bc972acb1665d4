"""Browser tests of the chat widget: Playwright with Debian's chromium, axe-core from npm.

Tests named ``test_live_*`` drive the real assistant through the ``live_server``
fixture (tests/conftest.py starts ``python -m bot.server.serve`` with the trained model).
The others use the fake bot of harness.py, which can answer with hostile HTML,
offer fixed quick replies or fail on purpose. Its widget (on 127.0.0.1) is
embedded in the harness's host page opened as http://localhost:PORT/host, a
different origin on the same loopback address space (Chromium's local network
access rules block a public page from calling a loopback server).

Needs ``apt-get install -y chromium`` and ``npm ci`` (axe-core). Never run
``playwright install``: it downloads a browser, which fails here.
"""

import os
import re
from urllib.parse import urlencode
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
LIVE_TIMEOUT = 60_000
NEUTRAL_PAGE = "<!DOCTYPE html><html lang='en'><title>Neutral site</title><h1>Weather</h1></html>"


from tests.browser import harness  # noqa: E402


def _require(path: Path, how: str) -> None:
    if not path.exists():
        message = f"{path} is missing: {how}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require(CHROMIUM, "run `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


class FakeSite:
    """The harness: the widget with the fake bot, and a host site allowed to embed it."""

    def __init__(self, allowed: bool = True, widget: str = "") -> None:
        sock = harness.loopback_socket()
        port = sock.getsockname()[1]
        self.host = f"http://localhost:{port}"
        app = harness.build_app([self.host] if allowed else [], max_message_chars=200)
        self.server = harness.ServerThread(app, sock).start()
        self.widget = widget or f"http://127.0.0.1:{port}{harness.PREFIX}"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSite]:
    site = FakeSite()
    yield site
    site.server.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    # No internet here: any non-local page (such as the exit site) is a blank stand-in.
    ctx.route(
        re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])"),
        lambda route: route.fulfill(status=200, content_type="text/html", body=NEUTRAL_PAGE),
    )
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def live(live_server: Any) -> str:
    """Base URL of the widget on the real Rasa server."""
    return str(live_server.base_url).rstrip("/") + "/webhooks/widget"


# ---- helpers -------------------------------------------------------------------------------


def open_host(page: Page, site: FakeSite, **data: str) -> "Widget":
    query = urlencode({"src": f"{site.widget}/widget.js", **data})
    page.goto(f"{site.host}/host?{query}")
    return Widget(page, data.get("title") or "Chat with us")


def widget_config(base: str) -> Dict[str, Any]:
    reply = requests.get(f"{base}/config", timeout=30)
    assert reply.status_code == 200, (
        f"GET {base}/config answered {reply.status_code}: is bot.channels.widget.WidgetInput in credentials.yml?"
    )
    return dict(reply.json())


def open_demo(page: Page, base: str) -> "Widget":
    title = widget_config(base)["title"]
    page.goto(f"{base}/demo")
    return Widget(page, title)


class Widget:
    """The widget on a page, found by accessible roles and names."""

    def __init__(self, page: Page, title: str) -> None:
        self.page = page
        self.title = title
        self.launcher = page.get_by_role("button", name=title, exact=True)
        self.dialog = page.get_by_role("dialog", name=title)
        self.input = page.get_by_role("textbox", name="Your message")
        self.conversation = page.get_by_role("region", name="Conversation")
        self.bot = page.locator(".lcw-msg--bot:not(.lcw-typing) .lcw-bubble")
        self.user = page.locator(".lcw-msg--user .lcw-bubble")
        self.replies = page.get_by_role("group", name="Suggested replies")

    def open(self) -> None:
        self.launcher.click()
        expect(self.dialog).to_be_visible()
        expect(self.input).to_be_focused()

    def send(self, text: str, timeout: float = 10_000) -> str:
        """Sends a message and returns the text of the first new bot bubble."""
        before = self.bot.count()
        self.input.fill(text)
        self.dialog.get_by_role("button", name="Send").click()
        expect(self.user.last).to_have_text(text)
        return self.wait_for_bot(before, timeout)

    def wait_for_bot(self, before: int, timeout: float = 10_000) -> str:
        expect(self.bot).not_to_have_count(before, timeout=timeout)
        expect(self.page.locator(".lcw-typing")).to_be_hidden(timeout=timeout)
        return self.bot.nth(before).inner_text()

    def texts(self) -> List[str]:
        return self.page.locator(".lcw-log .lcw-bubble").all_inner_texts()


def axe_violations(page: Page) -> List[Dict[str, Any]]:
    _require(AXE, "run `npm ci` at the repository root")
    page.evaluate(AXE.read_text("utf-8"))  # evaluate() is not subject to the page's CSP
    result = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations"
        ".map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))",
        WCAG_TAGS,
    )
    return list(result)


def session_storage(page: Page) -> Dict[str, str]:
    return dict(page.evaluate("() => Object.fromEntries(Object.entries(sessionStorage))"))


# ---- the real assistant -------------------------------------------------------------------


def test_live_demo_answers_a_question_and_a_quick_reply(page: Page, live: str) -> None:
    widget = open_demo(page, live)
    expect(page.get_by_role("heading", name="Chat widget demo")).to_be_visible()
    expect(page.locator("pre code")).to_contain_text(f'<script src="{live}/widget.js"')
    widget.open()
    answer = widget.send("hello", timeout=LIVE_TIMEOUT)
    assert answer.strip()
    expect(page.get_by_role("alert")).to_have_count(0)
    replies = widget.replies.get_by_role("button")
    expect(replies.first).to_be_visible()
    title = replies.first.inner_text()
    before = widget.bot.count()
    replies.first.click()
    expect(widget.user.last).to_have_text(title)
    assert widget.wait_for_bot(before, LIVE_TIMEOUT).strip()


def test_live_reload_restores_the_history_in_the_same_tab_only(context: BrowserContext, page: Page, live: str) -> None:
    widget = open_demo(page, live)
    widget.open()
    widget.send("hello", timeout=LIVE_TIMEOUT)
    shown = widget.texts()
    assert "lcw.token" in session_storage(page)
    page.reload()
    expect(widget.dialog).to_be_visible()  # it was open: it opens again
    expect(widget.user.first).to_have_text("hello", timeout=LIVE_TIMEOUT)
    expect(page.locator(".lcw-log .lcw-bubble")).to_have_count(len(shown))
    assert widget.texts() == shown
    # Only sessionStorage is used: a new tab starts afresh and nothing else is kept.
    other = context.new_page()
    other.goto(f"{live}/demo")
    assert session_storage(other) == {}
    assert other.evaluate("() => localStorage.length") == 0
    assert context.cookies() == []


def test_live_keyboard_only(page: Page, live: str) -> None:
    widget = open_demo(page, live)
    for _ in range(30):
        page.keyboard.press("Tab")
        if widget.launcher.evaluate("node => node === document.activeElement"):
            break
    expect(widget.launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(widget.dialog).to_be_visible()
    expect(widget.input).to_be_focused()
    before = widget.bot.count()
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    expect(widget.user.last).to_have_text("hello")
    assert widget.wait_for_bot(before, LIVE_TIMEOUT).strip()
    page.keyboard.press("Escape")
    expect(widget.dialog).to_be_hidden()
    expect(widget.launcher).to_be_focused()


def test_live_quick_exit_leaves_and_forgets(page: Page, live: str) -> None:
    widget = open_demo(page, live)
    exit_url = widget_config(live)["exit_url"]
    widget.open()
    widget.send("hello", timeout=LIVE_TIMEOUT)
    widget.dialog.get_by_role("button", name="Exit this page").click()
    page.wait_for_url(exit_url)
    expect(page.get_by_role("heading", name="Weather")).to_be_visible()
    page.go_back()
    assert "/demo" not in page.url  # the chat page was replaced, not kept in history
    page.goto(f"{live}/demo")  # same tab, same origin: nothing of the chat is left
    assert session_storage(page) == {}
    widget.open()
    expect(widget.user).to_have_count(0)


def test_live_xss_in_user_messages_runs_nothing(page: Page, live: str) -> None:
    widget = open_demo(page, live)
    widget.open()
    payloads = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=1</script>"]
    for payload in payloads:
        widget.send(payload, timeout=LIVE_TIMEOUT)
    page.reload()
    expect(widget.user).to_have_count(2, timeout=LIVE_TIMEOUT)
    assert widget.user.all_inner_texts() == payloads
    assert page.evaluate("() => window.__xss") is None
    assert page.locator(".lcw img, .lcw script").count() == 0


def test_live_axe_finds_no_violations(page: Page, live: str) -> None:
    widget = open_demo(page, live)
    expect(widget.launcher).to_be_visible()
    assert axe_violations(page) == []
    widget.open()
    widget.send("hello", timeout=LIVE_TIMEOUT)
    assert axe_violations(page) == []


# ---- the fake bot on a host site -------------------------------------------------------------


def test_quick_reply_sends_the_payload_and_shows_the_title(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(page, fake)
    widget.open()
    assert widget.send("menu") == "What would you like to know?"
    option = widget.replies.get_by_role("button", name="Opening times")
    before = widget.bot.count()
    option.click()
    expect(widget.user.last).to_have_text("Opening times")
    assert widget.wait_for_bot(before) == "You picked opening times."
    expect(widget.replies).to_have_count(0)
    widget.send("menu")
    widget.replies.get_by_role("button", name="Talk to someone").click()
    expect(widget.bot.last).to_contain_text("Line two.")
    assert widget.bot.last.inner_text() == "You picked talk to someone.\nLine two."
    assert widget.bot.last.locator("br").count() == 1
    page.reload()  # the history shows the button titles, not the payloads
    expect(widget.user).to_have_count(4)
    assert widget.user.all_inner_texts() == ["menu", "Opening times", "menu", "Talk to someone"]


def test_xss_in_a_bot_answer_runs_nothing_and_only_http_links_are_made(
    context: BrowserContext, page: Page, fake: FakeSite
) -> None:
    widget = open_host(page, fake)
    widget.open()
    widget.send("xss")
    page.wait_for_timeout(300)
    bubble = widget.bot.last
    assert '<img src=x onerror="window.__xss_bot=1">' in bubble.inner_text()
    assert "<script>" in bubble.inner_text()
    assert page.evaluate("() => window.__xss_bot") is None
    assert page.locator(".lcw img, .lcw script").count() == 0
    links = bubble.get_by_role("link")
    expect(links).to_have_count(1)
    assert links.get_attribute("href") == "https://example.org/help"
    assert links.get_attribute("target") == "_blank"
    assert links.get_attribute("rel") == "noopener noreferrer"
    expect(links).to_have_accessible_name("https://example.org/help (opens in a new tab)")


def test_unreachable_server_shows_an_error_with_a_retry(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(page, fake)
    widget.open()
    page.route(f"{fake.widget}/message", lambda route: route.abort())
    widget.input.fill("hi there")
    widget.input.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("We can't reach the chat right now")
    page.unroute(f"{fake.widget}/message")
    before = widget.bot.count()
    alert.get_by_role("button", name="Try again").click()
    assert widget.wait_for_bot(before) == "You said: hi there"
    expect(alert).to_have_count(0)
    assert widget.user.all_inner_texts() == ["hi there"]


def test_bot_failure_shows_the_servers_plain_message(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(page, fake)
    widget.open()
    widget.input.fill("fail")
    widget.input.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Sorry, something went wrong. Please try again.")
    expect(page.get_by_role("alert").get_by_role("button", name="Try again")).to_be_visible()


def test_embed_options_and_cors(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(
        page,
        fake,
        title="Family help",
        greeting="Hello from the host page",
        position="left",
        **{"primary-color": "#ffdd00"},
    )
    box = widget.launcher.bounding_box()
    assert box is not None and box["x"] < 640
    widget.open()
    expect(widget.bot.first).to_have_text("Hello from the host page")
    assert widget.send("hello") == "You said: hello"  # cross-origin calls work
    colour = widget.user.last.evaluate("node => getComputedStyle(node).color")
    assert colour == "rgb(11, 12, 12)"  # dark text on the light yellow chosen by the host
    # A site that is not on the allow-list cannot use the chat.
    other = FakeSite(allowed=False, widget=fake.widget)
    try:
        blocked = open_host(page, other)
        blocked.open()
        blocked.input.fill("hello")
        blocked.input.press("Enter")
        expect(page.get_by_role("alert")).to_contain_text("We can't reach the chat right now")
    finally:
        other.server.stop()


def test_live_region_gets_only_the_newest_message(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(page, fake)
    widget.open()
    live_region = page.locator(".lcw [aria-live='polite']")
    widget.send("first")
    expect(live_region).to_have_text("You said: first")
    widget.send("second")
    expect(live_region).to_have_text("You said: second")
    assert live_region.locator("p").count() == 1
    expect(widget.conversation).not_to_have_attribute("aria-live", re.compile(".*"))


def test_message_length_limit_and_counter(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(page, fake)
    widget.open()
    expect(widget.input).to_have_attribute("maxlength", "200")  # the server's limit
    expect(page.locator(".lcw-count")).to_have_text("0 / 200")
    widget.input.fill("a" * 10)
    expect(page.locator(".lcw-count")).to_have_text("10 / 200")
    widget.input.fill("")
    widget.input.press_sequentially("b" * 205, delay=0)
    assert len(widget.input.input_value()) == 200
    expect(widget.input).to_have_accessible_description("You can type up to 200 characters.")


def test_shift_three_times_is_a_quick_exit(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(page, fake)
    widget.open()
    widget.send("hi")
    for key in ("Shift", "Shift", "a", "Shift"):  # other keys in between do not count
        page.keyboard.press(key)
    page.wait_for_timeout(300)
    assert page.url.startswith(fake.host)
    for _ in range(3):
        page.keyboard.press("Shift")
    page.wait_for_url("https://www.bbc.co.uk/weather")
    page.goto(f"{fake.host}/host")
    assert session_storage(page) == {}


def test_phone_width_is_full_screen_and_keeps_focus_inside(browser: Browser, fake: FakeSite) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        widget = open_host(page, fake)
        widget.open()
        assert widget.dialog.bounding_box() == {"x": 0, "y": 0, "width": 375, "height": 667}
        expect(widget.dialog).to_have_attribute("aria-modal", "true")
        assert widget.input.evaluate("node => parseFloat(getComputedStyle(node).fontSize)") >= 16
        for _ in range(12):  # Tab never leaves the full-screen panel
            page.keyboard.press("Tab")
            assert page.evaluate("() => !!document.activeElement.closest('.lcw-panel')")
        viewport = page.evaluate("() => document.querySelector('meta[name=viewport]').content")
        assert viewport == "width=device-width, initial-scale=1"
    finally:
        context.close()


def test_reduced_motion_stops_the_animation(browser: Browser, fake: FakeSite) -> None:
    context = browser.new_context(reduced_motion="reduce")
    try:
        page = context.new_page()
        widget = open_host(page, fake)
        widget.open()
        dot = page.locator(".lcw-dot").first
        assert dot.evaluate("node => getComputedStyle(node).animationName") == "none"
    finally:
        context.close()


def test_axe_on_error_state_and_links(context: BrowserContext, page: Page, fake: FakeSite) -> None:
    widget = open_host(page, fake)
    assert axe_violations(page) == []
    widget.open()
    widget.send("xss")
    widget.send("menu")
    widget.input.fill("fail")
    widget.input.press("Enter")
    expect(page.get_by_role("alert")).to_be_visible()
    assert axe_violations(page) == []
