"""rasa-webchat 1.0.1 (npm), the most used Rasa web client, in Chromium, with its documented settings.

It connects with socket.io-client 3, which starts with long-polling; every poll is a separate
HTTP request. It must connect and talk through:

- the default ``make run`` (two Rasa server processes on this machine's 2 CPUs: the
  ``live_server`` fixture), where a poll may reach either process;
- nginx (``deploy/nginx/assistant.conf``) in front of two replicas on one PostgreSQL, each with
  two Rasa processes.

The page is served at the server's own address (Playwright answers it), as a site that puts the
widget on its own pages would. Needs Debian's chromium and ``npm ci`` (rasa-webchat is in
package.json). Never run ``playwright install``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from scripts.services import Nginx, PostgresCluster, Replica

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
WEBCHAT = ROOT / "node_modules" / "rasa-webchat" / "lib" / "index.js"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]  # fmt: skip
PAGE = """<!DOCTYPE html><html lang="en"><head><title>A council page</title></head><body>
<h1>Children and young people</h1>
<script src="/webchat-test/webchat.js"></script>
<script>
  // rasa-webchat's README settings, nothing else changed.
  WebChat.default({
    initPayload: "/get_started",
    customData: {"language": "en"},
    socketUrl: "BASE",
    title: "Title",
    subtitle: "Subtitle",
  }, null);
</script></body></html>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: apt-get install -y chromium")
    if not WEBCHAT.exists():
        pytest.fail("rasa-webchat is missing: npm ci")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


def talk(browser: Browser, base: str) -> Page:
    """Opens a page at ``base`` with rasa-webchat, asks about the money, and checks the answer."""
    context = browser.new_context()
    page = context.new_page()
    polls = []

    def serve_page(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=PAGE.replace("BASE", base))

    def serve_webchat(route: Route) -> None:
        route.fulfill(status=200, content_type="application/javascript", body=WEBCHAT.read_bytes())

    page.route(f"{base}/webchat-test/page", serve_page)
    page.route(f"{base}/webchat-test/webchat.js", serve_webchat)
    page.on("request", lambda request: polls.append(request.url) if "transport=polling" in request.url else None)
    page.goto(f"{base}/webchat-test/page")
    page.locator(".rw-launcher").click()
    box = page.locator(".rw-new-message")
    expect(box).to_be_enabled(timeout=60_000)
    box.fill("how much money is there")
    box.press("Enter")
    expect(page.locator(".rw-response").filter(has_text="£180,000").first).to_be_visible(timeout=60_000)
    assert len(polls) >= 2, "socket.io-client did not start with long-polling"
    context.close()
    return page


def test_live_webchat_talks_to_the_default_make_run(browser: Browser, live_server: object) -> None:
    for _ in range(2):  # two visitors: their polls land on either of the two processes
        talk(browser, str(getattr(live_server, "base_url")))


@pytest.fixture(scope="module")
def balanced(postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import sqlalchemy as sa

    from bot.storage.migrate import upgrade

    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text('CREATE DATABASE "webchat"'))
    admin.dispose()
    url = postgres.url.rsplit("/", 1)[0] + "/webchat"
    upgrade(url)
    folder = tmp_path_factory.mktemp("webchat")
    shared = {"TRACKER_DB_URL": url, "SANIC_WORKERS": "2", "WIDGET_SECRET": "w" * 48}
    replicas = [Replica(name, shared, folder).start() for name in ("A", "B")]
    balancer = None
    try:
        for replica in replicas:
            replica.wait_ready()
        balancer = Nginx(folder / "nginx", [f"127.0.0.1:{r.port}" for r in replicas]).start()
        yield f"http://127.0.0.1:{balancer.port}"
    finally:
        if balancer is not None:
            balancer.stop()
        for replica in replicas:
            replica.stop()


def test_webchat_talks_through_nginx_to_several_replicas(browser: Browser, balanced: str) -> None:
    for _ in range(2):
        talk(browser, balanced)
