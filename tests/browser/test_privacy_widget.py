"""The widget in Chromium: quick exit and "Delete this chat" delete the conversation on the server,
a message is retried with the same id after a network error or a 502/503, a renewed token is kept.

Uses the fake bot of harness.py (an in-memory tracker store behind the real widget channel) and the
fixtures of test_widget_browser.py. Needs Debian's chromium (see that module).
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List

import requests
from playwright.sync_api import BrowserContext, Page, Route, expect

from bot.channels.signing import SessionSigner
from tests.browser import harness
from tests.browser.test_widget_browser import (  # noqa: F401 - fixtures
    FakeSite,
    browser,
    context,
    fake,
    open_host,
    page,
    session_storage,
)


def history(site: FakeSite, token: str) -> List[Dict[str, Any]]:
    reply = requests.post(f"{site.widget}/history", data=json.dumps({"token": token}), timeout=10)
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def wait_until_deleted(site: FakeSite, token: str) -> None:
    deadline = time.monotonic() + 10
    while history(site, token):
        assert time.monotonic() < deadline, "the conversation is still on the server"
        time.sleep(0.2)


def test_quick_exit_deletes_the_conversation_on_the_server(
    context: BrowserContext, page: Page, fake: FakeSite  # noqa: F811
) -> None:
    widget = open_host(page, fake)
    widget.open()
    widget.send("something private")
    token = session_storage(page)["lcw.token"]
    assert history(fake, token)[0]["text"] == "something private"
    beacons: List[str] = []
    page.on("request", lambda request: request.url.endswith("/forget") and beacons.append(request.post_data or ""))
    widget.dialog.get_by_role("button", name="Exit this page").click()
    page.wait_for_url("https://www.bbc.co.uk/weather")
    wait_until_deleted(fake, token)
    assert beacons and json.loads(beacons[0]) == {"token": token}  # the token in the body, never in the URL


def test_delete_this_chat_deletes_it_everywhere_and_closes(
    context: BrowserContext, page: Page, fake: FakeSite  # noqa: F811
) -> None:
    widget = open_host(page, fake, greeting="Hello from the host page")
    widget.open()
    widget.send("remember this")
    token = session_storage(page)["lcw.token"]
    widget.dialog.get_by_role("button", name="Delete this chat").click()
    expect(widget.dialog).to_be_hidden()
    expect(widget.launcher).to_be_focused()
    expect(page.locator(".lcw [aria-live='polite']")).to_have_text("This chat has been deleted.")
    wait_until_deleted(fake, token)
    assert session_storage(page) == {}
    widget.open()  # a new chat: the greeting only
    expect(widget.bot).to_have_count(1)
    expect(widget.bot.first).to_have_text("Hello from the host page")
    expect(widget.user).to_have_count(0)


def test_a_message_is_retried_with_the_same_id_after_503_and_502_and_shown_once(
    context: BrowserContext, page: Page, fake: FakeSite  # noqa: F811
) -> None:
    widget = open_host(page, fake)
    widget.open()
    sent: List[Dict[str, Any]] = []

    def flaky(route: Route) -> None:
        sent.append(json.loads(route.request.post_data or "{}"))
        if len(sent) == 1:
            route.fulfill(status=503, content_type="application/json", body='{"error": "x", "message": "busy"}')
        elif len(sent) == 2:
            route.abort()  # a network error
        elif len(sent) == 3:
            route.fulfill(status=502, content_type="application/json", body='{"error": "x", "message": "failed"}')
        else:
            route.continue_()

    page.route(f"{fake.widget}/message", flaky)
    assert widget.send("are you there") == "You said: are you there"
    ids = {body["message_id"] for body in sent}
    assert len(sent) == 4 and len(ids) == 1 and len(ids.pop()) == 32
    expect(page.get_by_role("alert")).to_have_count(0)
    assert widget.user.all_inner_texts() == ["are you there"]
    widget.send("and again")
    assert len(sent) == 5 and sent[4]["message_id"] != sent[0]["message_id"]  # a new message, a new id


def test_a_401_or_429_is_not_retried_and_the_helplines_are_shown(
    context: BrowserContext, page: Page, fake: FakeSite  # noqa: F811
) -> None:
    widget = open_host(page, fake)
    widget.open()
    calls: List[str] = []

    def limited(route: Route) -> None:
        calls.append(route.request.url)
        route.fulfill(
            status=429,
            headers={"Retry-After": "5", "Access-Control-Allow-Origin": fake.host},
            content_type="application/json",
            body=json.dumps(
                {
                    "error": "rate_limited",
                    "message": "You are sending messages very fast.",
                    "help": "If you are in danger right now, call 999. Childline: 0800 1111.",
                }
            ),
        )

    page.route(f"{fake.widget}/message", limited)
    widget.input.fill("hello")
    widget.input.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You are sending messages very fast.")
    expect(alert).to_contain_text("Childline: 0800 1111")
    page.wait_for_timeout(1500)
    assert len(calls) == 1


def test_a_renewed_token_replaces_the_old_one(context: BrowserContext, page: Page, fake: FakeSite) -> None:  # noqa: F811
    old = SessionSigner(harness.SECRET, "widget", clock=lambda: time.time() - 600).new_token()
    page.goto(f"{fake.host}/host")
    page.evaluate("(token) => sessionStorage.setItem('lcw.token', token)", old)
    widget = open_host(page, fake)
    widget.open()
    widget.send("hello again")
    renewed = session_storage(page)["lcw.token"]
    assert renewed != old and renewed.split(".")[0] == old.split(".")[0]
    assert history(fake, renewed)[-1]["text"] == "You said: hello again"
