"""Three people walked through the real assistant in Chromium, as issue 13 asks: a young person
on a phone, a parent and a member of staff. Every reply must end with a next step (buttons or
tap-to-call links), never repeat the reply before it word for word, and give the facts asked for.
Also: helplines are tap-to-call links, a new reply is shown from its first message, and on a
phone the header keeps to two lines. Screenshots go to results/browser/ (element positions are
what the tests compare, not pixels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.test_widget_browser import (  # noqa: F401 - fixtures used by name
    LIVE_TIMEOUT,
    NEUTRAL_PAGE,
    Widget,
    browser,
    live,
    open_demo,
)

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "results" / "browser"
PHONE = {"width": 390, "height": 780}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(params=[PHONE, DESKTOP], ids=["phone", "desktop"])
def sized(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Tuple[BrowserContext, str]]:  # noqa: F811
    import re

    context = browser.new_context(viewport=request.param, is_mobile=request.param is PHONE)
    context.route(
        re.compile(r"^https?://(?!(127\.0\.0\.1|localhost)[:/])"),
        lambda route: route.fulfill(status=200, content_type="text/html", body=NEUTRAL_PAGE),
    )
    yield context, request.node.callspec.id
    context.close()


def reply_after(widget: Widget, page: Page, before: int) -> List[str]:
    """The bubbles of the newest reply."""
    widget.wait_for_bot(before, LIVE_TIMEOUT)
    return widget.bot.all_inner_texts()[before:]


def next_step_shown(page: Page) -> bool:
    """Whether the newest reply offers buttons or links."""
    replies = page.locator(".lcw-replies .lcw-reply")
    links = page.locator(".lcw-msg--bot").last.locator(".lcw-link")
    return replies.count() > 0 or links.count() > 0


def step(widget: Widget, page: Page, say: Optional[str] = None, tap: Optional[str] = None) -> str:
    """Types a message or taps a button; returns the whole reply as one text."""
    before = widget.bot.count()
    if say is not None:
        widget.input.fill(say)
        widget.dialog.get_by_role("button", name="Send").click()
    else:
        page.locator(".lcw-replies").get_by_role("button", name=tap, exact=True).click()
    return "\n".join(reply_after(widget, page, before))


def walk(page: Page, base: str, journey: List[Tuple[str, str, List[str]]], shots: str) -> None:
    """Plays a journey: ("say" | "tap", text, facts the reply must give)."""
    widget = open_demo(page, base)
    widget.open()
    previous = ""
    for number, (kind, text, facts) in enumerate(journey, start=1):
        reply = step(widget, page, say=text) if kind == "say" else step(widget, page, tap=text)
        for fact in facts:
            assert fact in reply, f"step {number} ({text!r}): {fact!r} not in {reply!r}"
        assert reply != previous, f"step {number} ({text!r}) repeated the reply before it: {reply!r}"
        assert next_step_shown(page), f"step {number} ({text!r}) ended with nothing to tap: {reply!r}"
        previous = reply
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shots}.png"))


def test_live_a_young_person_on_a_phone_has_no_dead_end(browser: Browser, live: str) -> None:  # noqa: F811
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        walk(
            context.new_page(),
            live,
            [
                ("say", "hiya wots the plan lol", ["2014 to 2017"]),
                ("tap", "The five outcomes", ["To be listened to"]),
                ("say", "wots the 3rd one", ["To be happy"]),
                ("say", "thanks for nothing", ["Sorry"]),
                ("say", "can i talk to a real person", ["Childline", "0800 1111"]),
                ("say", "my mum is drunk again and i have to look after my little brother", ["999", "0800 1111"]),
                ("tap", "No, everyone is safe", ["glad"]),
            ],
            "journey-young-person-phone",
        )
    finally:
        context.close()


def test_live_a_parent_has_no_dead_end(browser: Browser, live: str) -> None:  # noqa: F811
    context = browser.new_context(viewport=DESKTOP)
    try:
        walk(
            context.new_page(),
            live,
            [
                ("say", "is there any family support in Accrington", ["Prevention and Early Help Co-ordinators"]),
                ("tap", "The co-ordinators", ["9 Prevention and Early Help Co-ordinators"]),
                ("say", "who pays for that early support", ["Lancashire County Council"]),
                ("say", "zxqw vbnm", []),
                ("say", "qwpo lkjh", ["still"]),
                ("tap", "Talk to a person", ["0808 800 5000", "0800 1111"]),
            ],
            "journey-parent",
        )
    finally:
        context.close()


def test_live_a_member_of_staff_checks_figures_and_sources(browser: Browser, live: str) -> None:  # noqa: F811
    context = browser.new_context(viewport=DESKTOP)
    try:
        walk(
            context.new_page(),
            live,
            [
                ("say", "Annual district council contribution?", ["£180,000"]),
                ("say", "Frequency?", ["Every year"]),
                ("say", "source?", ["annual sum of £180,000 (in kind)"]),
                ("say", "How much money is there in total?", ["£180,000", "£1,500,000"]),
                ("say", "where's that from", ["annual sum of £180,000", "£1,500,000 funding"]),
                ("say", "how many children and young people live in lancashire", ["280,000"]),
            ],
            "journey-staff",
        )
    finally:
        context.close()


def test_live_helplines_are_tap_to_call_links(browser: Browser, live: str) -> None:  # noqa: F811
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = context.new_page()
        widget = open_demo(page, live)
        widget.open()
        step(widget, page, say="i want to die")
        childline = page.get_by_role("link", name="Call Childline, 0800 1111")
        expect(childline).to_be_visible()
        assert childline.get_attribute("href") == "tel:08001111"
        assert page.get_by_role("link", name="Call Emergency services, 999").get_attribute("href") == "tel:999"
    finally:
        context.close()


def test_live_a_new_reply_is_shown_from_its_first_message_and_the_header_is_short(
    sized: Tuple[BrowserContext, str], live: str  # noqa: F811
) -> None:
    context, size = sized
    page = context.new_page()
    widget = open_demo(page, live)
    widget.open()
    for question in ("hello", "what are the plan's outcomes", "what does the trust do"):
        step(widget, page, say=question)  # a conversation long enough to scroll
    before = widget.bot.count()
    step(widget, page, say="what is the children and young people's plan?")
    first = widget.bot.nth(before).bounding_box()
    log = widget.conversation.bounding_box()
    assert first is not None and log is not None
    bottom = log["y"] + log["height"]
    assert log["y"] - 1 <= first["y"] <= bottom - 40, f"the reply's first message is out of sight: {first} in {log}"
    title = page.locator(".lcw-title")
    box = title.bounding_box()
    line = float(title.evaluate("n => parseFloat(getComputedStyle(n).lineHeight)"))
    assert box is not None and box["height"] <= 2 * line + 1, f"the title takes more than two lines: {box}, {line}"
    header = page.locator(".lcw-header").bounding_box()
    assert header is not None
    if size == "phone":
        assert header["height"] <= 64, f"the header is too tall on a phone: {header}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"reply-top-{size}.png"))


def test_live_a_reply_taller_than_the_conversation_starts_at_its_first_message(
    browser: Browser, live: str  # noqa: F811
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 460}, is_mobile=True)
    try:
        page = context.new_page()
        widget = open_demo(page, live)
        widget.open()
        step(widget, page, say="hello")
        before = widget.bot.count()
        step(widget, page, say="what is the children and young people's plan?")
        first = widget.bot.nth(before).bounding_box()
        log = widget.conversation.bounding_box()
        assert first is not None and log is not None
        height = float(widget.conversation.evaluate("n => n.scrollHeight - n.clientHeight"))
        assert height > 0, "the reply should not fit in the conversation at this size"
        assert log["y"] - 1 <= first["y"] <= log["y"] + 40, f"the reply starts out of sight: {first} in {log}"
    finally:
        context.close()
