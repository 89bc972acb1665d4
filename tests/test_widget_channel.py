"""Unit tests of the widget channel (bot/channels/widget/channel.py).

The blueprint is served by a real Sanic server on a spare loopback port (the
harness in tests/browser/harness.py) with a fake agent, and driven with
``requests``: sanic-testing, Sanic's own test client package, is not in the
project's lock, and a real server also exercises Sanic's and Sanic-CORS's
middleware exactly as Rasa runs them.
"""

import gzip
import json
import re
import secrets
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests
from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from sanic import Sanic

from bot.channels.widget.channel import (
    DEFAULT_EXIT_URL,
    STATIC_DIR,
    SessionSigner,
    WidgetConfigError,
    WidgetInput,
    history_turns,
    normalise_origin,
)

ALLOWED = "https://www.example.org"
OTHER = "https://evil.example.net"
MAX_CHARS = 50
XSS = '<img src=x onerror="window.__xss=1">'


from tests.browser import harness  # noqa: E402


def serve(app: Sanic) -> Iterator[str]:
    """Serves an app and yields the widget's base URL."""
    server = harness.ServerThread(app).start()
    try:
        yield server.base_url + harness.PREFIX
    finally:
        server.stop()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """Base URL of a widget with one allowed origin and a 50-character limit."""
    yield from serve(harness.build_app([ALLOWED], max_message_chars=MAX_CHARS))


@pytest.fixture
def token(base: str) -> str:
    """A fresh conversation token from the server."""
    reply = requests.post(f"{base}/session", timeout=10)
    assert reply.status_code == 201
    return str(reply.json()["token"])


def post(base: str, path: str, body: Any, **kwargs: Any) -> requests.Response:
    """POSTs JSON as text/plain, as the widget does."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "text/plain;charset=UTF-8", **kwargs.pop("headers", {})}
    return requests.post(f"{base}/{path}", data=data, headers=headers, timeout=10, **kwargs)


# ---- configuration ------------------------------------------------------------------


def test_missing_secret_fails_at_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WIDGET_SECRET", raising=False)
    with pytest.raises(WidgetConfigError, match="WIDGET_SECRET"):
        WidgetInput.from_credentials({"allowed_origins": [ALLOWED]})


def test_secret_comes_from_the_environment_and_defaults_apply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WIDGET_SECRET", secrets.token_urlsafe(32))
    channel = WidgetInput.from_credentials(None)
    assert channel.name() == "widget"
    assert channel.max_message_chars == 500
    assert channel.exit_url == DEFAULT_EXIT_URL == "https://www.bbc.co.uk/weather"
    assert channel.allowed_origins == frozenset()


@pytest.mark.parametrize(
    "options",
    [
        {"secret": "too-short"},
        {"allowed_origins": ["*"]},
        {"allowed_origins": "*"},
        {"allowed_origins": ["https://*.example.org"]},
        {"allowed_origins": ["null"]},
        {"allowed_origins": ["https://www.example.org/path"]},
        {"allowed_origins": ["ftp://www.example.org"]},
        {"max_message_chars": 0},
        {"max_message_chars": "500"},
        {"exit_url": "javascript:alert(1)"},
        {"exit_url": "http://www.bbc.co.uk/weather"},
        {"title": "x" * 81},
        {"greeting": ["not", "text"]},
    ],
)
def test_unsafe_options_are_refused(options: Dict[str, Any]) -> None:
    credentials = {"secret": secrets.token_urlsafe(32), **options}
    with pytest.raises(WidgetConfigError):
        WidgetInput.from_credentials(credentials)


def test_origins_are_normalised() -> None:
    assert normalise_origin("HTTPS://WWW.Example.org:443/") == "https://www.example.org"
    assert normalise_origin("http://localhost:8080") == "http://localhost:8080"


# ---- tokens -----------------------------------------------------------------------------


def test_tokens_are_random_and_verify() -> None:
    signer = SessionSigner("s" * 40, "widget")
    first, second = signer.new_token(), signer.new_token()
    assert first != second
    session_id = signer.verify(first)
    assert session_id is not None and len(session_id) == 32
    assert first.startswith(session_id + ".")


def _forgeries() -> Dict[str, Callable[[str], object]]:
    def flip(text: str, index: int) -> str:
        return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]

    return {
        "tampered id": lambda t: flip(t, 0),
        "tampered signature": lambda t: flip(t, len(t) - 1),
        "other secret": lambda t: SessionSigner("o" * 40, "widget").new_token(),
        "other channel": lambda t: SessionSigner("s" * 40, "socketio").new_token(),
        "random signature": lambda t: t.rsplit(".", 1)[0] + "." + secrets.token_urlsafe(32),
        "unsigned id": lambda t: t.split(".")[0],
        "unsigned id and time": lambda t: t.rsplit(".", 1)[0],
        "old id.signature format": lambda t: t.split(".")[0] + "." + t.split(".")[2],
        "expired": lambda t: SessionSigner("s" * 40, "widget", clock=lambda: 1_000_000.0).new_token(),
        "issued in the future": lambda t: SessionSigner("s" * 40, "widget", clock=lambda: 9e9).new_token(),
        "swapped parts": lambda t: ".".join(reversed(t.split("."))),
        "extra part": lambda t: t + ".x",
        "padded signature": lambda t: t + "=",
        "empty": lambda t: "",
        "too long": lambda t: t * 5,
        "not text": lambda t: 12345,
    }


@pytest.mark.parametrize("kind", sorted(_forgeries()))
def test_forged_tokens_are_rejected(kind: str) -> None:
    signer = SessionSigner("s" * 40, "widget")
    assert signer.verify(_forgeries()[kind](signer.new_token())) is None


@pytest.mark.parametrize("kind", ["tampered id", "tampered signature", "other secret"])
def test_server_rejects_forged_tokens(base: str, token: str, kind: str) -> None:
    forged = _forgeries()[kind](token)
    reply = post(base, "message", {"token": forged, "text": "hi"})
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_token"
    assert post(base, "history", {"token": forged}).status_code == 401


# ---- request validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"\xff\xfe{}", 400, "invalid_json"),
        (b'["a list"]', 400, "invalid_json"),
        (b'"a string"', 400, "invalid_json"),
        ({"text": "hi"}, 400, "invalid_field"),
        ({"token": 42, "text": "hi"}, 400, "invalid_field"),
        ({"token": "TOKEN", "text": 42}, 400, "invalid_field"),
        ({"token": "TOKEN", "text": ["hi"]}, 400, "invalid_field"),
        ({"token": "TOKEN", "text": None}, 400, "invalid_field"),
        ({"token": "TOKEN", "text": "hi", "payload": "/greet"}, 400, "invalid_field"),
        ({"token": "TOKEN", "payload": {"a": 1}}, 400, "invalid_field"),
        ({"token": "TOKEN", "text": ""}, 400, "empty_text"),
        ({"token": "TOKEN", "text": " \n\t "}, 400, "empty_text"),
        ({"token": "TOKEN", "text": "x" * (MAX_CHARS + 1)}, 413, "text_too_long"),
        ({"token": "TOKEN", "text": "x" * 100_000}, 413, "body_too_large"),
        ({"token": "not-a-token", "text": "hi"}, 401, "invalid_token"),
    ],
)
def test_bad_message_requests_get_a_clear_4xx(base: str, token: str, body: Any, status: int, error: str) -> None:
    if isinstance(body, dict) and body.get("token") == "TOKEN":
        body = {**body, "token": token}
    reply = post(base, "message", body)
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"] == error
    assert reply.json()["message"]


def test_message_at_the_limit_is_accepted(base: str, token: str) -> None:
    reply = post(base, "message", {"token": token, "text": "y" * MAX_CHARS})
    assert reply.status_code == 200
    assert reply.json() == [{"text": "You said: " + "y" * MAX_CHARS}]


def test_oversized_session_request_is_refused(base: str) -> None:
    assert post(base, "session", b"x" * 10_000).status_code == 413


# ---- messages, history --------------------------------------------------------------------


def test_message_is_answered_with_collected_bot_messages(base: str, token: str) -> None:
    reply = post(base, "message", {"token": token, "text": "menu"})
    assert reply.status_code == 200
    assert reply.json() == [{"text": "What would you like to know?", "buttons": harness.MENU_BUTTONS}]
    reply = post(base, "message", {"token": token, "payload": "/ask_opening_times"})
    assert reply.json() == [{"text": "You picked opening times."}]


def test_hostile_html_comes_back_as_plain_json_text(base: str, token: str) -> None:
    """Neither rendered nor HTML-escaped server-side: the widget inserts it as text."""
    reply = post(base, "message", {"token": token, "text": XSS})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.json() == [{"text": "You said: " + XSS}]
    assert "&lt;" not in reply.text and "&quot;" not in reply.text
    bot = post(base, "message", {"token": token, "text": "xss"}).json()
    assert bot == [{"text": harness.XSS_REPLY}]
    history = post(base, "history", {"token": token}).json()
    assert {"sender": "user", "text": XSS} in history


def test_history_rebuilds_the_conversation(base: str, token: str) -> None:
    post(base, "message", {"token": token, "text": "menu"})
    post(base, "message", {"token": token, "payload": "/ask_contact"})
    expected = [
        {"sender": "user", "text": "menu"},
        {"sender": "bot", "text": "What would you like to know?", "buttons": harness.MENU_BUTTONS},
        {"sender": "user", "text": "Talk to someone"},
        {"sender": "bot", "text": "You picked talk to someone.\nLine two."},
    ]
    assert post(base, "history", {"token": token}).json() == expected
    # The token never goes in a URL: GET is refused, and says how to ask instead.
    refused = requests.get(f"{base}/history", params={"token": token}, timeout=10)
    assert refused.status_code == 405 and refused.json()["error"] == "use_post"


def test_history_of_a_new_conversation_is_empty(base: str, token: str) -> None:
    assert post(base, "history", {"token": token}).json() == []


def test_history_keeps_user_and_bot_turns_only() -> None:
    events = [
        ActionExecuted("action_session_start"),
        UserUttered("hello"),
        SlotSet("topic", "x"),
        ActionExecuted("utter_greet"),
        BotUttered("Hi!\n\nHow can I help?"),
        UserUttered(None),
        BotUttered(None, data={"custom": {"a": 1}}),
    ]
    assert history_turns(events) == [
        {"sender": "user", "text": "hello"},
        {"sender": "bot", "text": "Hi!"},
        {"sender": "bot", "text": "How can I help?"},
    ]


def test_agent_failure_is_answered_with_502(base: str, token: str) -> None:
    reply = post(base, "message", {"token": token, "text": "fail"})
    assert reply.status_code == 502
    assert reply.json()["error"] == "bot_error"
    assert "RuntimeError" not in reply.text and "Traceback" not in reply.text


def test_agent_not_ready_is_answered_with_503() -> None:
    app = harness.build_app(agent=harness.FakeAgent(ready=False))
    for url in serve(app):
        session = requests.post(f"{url}/session", timeout=10).json()
        reply = post(url, "message", {"token": session["token"], "text": "hi"})
        assert reply.status_code == 503
        assert reply.json()["error"] == "not_ready"


def test_slow_agent_is_answered_with_504_and_its_turn_is_kept() -> None:
    import asyncio

    agent = harness.FakeAgent()

    async def slow(message: UserMessage) -> None:
        await asyncio.sleep(0.5)
        await agent.handle_message(message)

    app = harness.build_app(agent=agent, on_new_message=slow, response_timeout=0.1)
    for url in serve(app):
        token = requests.post(f"{url}/session", timeout=10).json()["token"]
        reply = post(url, "message", {"token": token, "text": "hi"})
        assert reply.status_code == 504
        assert reply.json()["error"] == "timeout"
        import time

        time.sleep(0.8)
        assert post(url, "history", {"token": token}).json()[-1] == {
            "sender": "bot",
            "text": "You said: hi",
        }


def test_log_never_contains_message_text(base: str, token: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="bot.channels.widget")
    post(base, "message", {"token": token, "text": "my secret words"})
    post(base, "message", {"token": token, "text": "fail"})
    assert "my secret words" not in caplog.text
    assert token not in caplog.text


# ---- CORS ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["config", "session", "message", "history", "forget"])
def test_cors_reflects_only_allowed_origins_and_refuses_the_others(base: str, token: str, path: str) -> None:
    body = {"token": token, "text": "hi"}
    for origin, expected in ((OTHER, None), ("null", None), (ALLOWED, ALLOWED)):
        if path == "config":
            reply = requests.get(f"{base}/config", headers={"Origin": origin}, timeout=10)
        else:
            reply = post(base, path, body, headers={"Origin": origin})
        assert reply.headers.get("Access-Control-Allow-Origin") == expected
        assert "Origin" in reply.headers["Vary"]
        if expected is None:  # refused by the server, not just hidden by the browser
            assert reply.status_code == 403 and reply.json()["error"] == "origin_not_allowed"
        else:
            assert reply.status_code < 300


def test_preflight_is_answered_for_allowed_origins_only(base: str) -> None:
    def preflight(origin: str) -> requests.Response:
        return requests.options(
            f"{base}/message",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=10,
        )

    allowed = preflight(ALLOWED)
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert allowed.headers["Access-Control-Allow-Headers"] == "Content-Type"
    other = preflight(OTHER)
    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other.headers


@pytest.mark.parametrize("rasa_cors", [None, "*"])
def test_cors_inside_rasas_own_app_never_allows_everyone(rasa_cors: Any) -> None:
    """Rasa's app-wide Sanic-CORS (`--cors`) must not add `*` to widget routes."""
    from rasa.core.run import configure_app

    Sanic.test_mode = True  # Rasa's app is always named "rasa_server"
    channel = WidgetInput(secret=harness.SECRET, allowed_origins=[ALLOWED])
    app = configure_app([channel], cors=rasa_cors, enable_api=True)
    app.ctx.agent = harness.FakeAgent()
    for url in serve(app):
        token = requests.post(f"{url}/session", timeout=10).json()["token"]
        for origin, status, expected in ((ALLOWED, 200, [ALLOWED]), (OTHER, 403, [])):
            reply = post(url, "message", {"token": token, "text": "hi"}, headers={"Origin": origin})
            assert reply.status_code == status
            if status == 200:
                assert reply.json() == [{"text": "You said: hi"}]
            assert reply.raw.headers.getlist("Access-Control-Allow-Origin") == expected
        assert post(url, "history", {"token": token}).json()[0]["text"] == "hi"
        for origin, status, expected in ((ALLOWED, 204, [ALLOWED]), (OTHER, 403, [])):
            reply = requests.options(
                f"{url}/message",
                headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
                timeout=10,
            )
            assert reply.status_code == status
            assert reply.raw.headers.getlist("Access-Control-Allow-Origin") == expected
            assert "Access-Control-Allow-Credentials" not in reply.headers


def test_no_response_ever_allows_every_origin(base: str, token: str) -> None:
    replies: List[requests.Response] = [
        requests.get(f"{base}/{path}", headers={"Origin": origin}, timeout=10)
        for path in ("", "widget.js", "widget.css", "demo", "config")
        for origin in (ALLOWED, OTHER)
    ]
    replies.append(post(base, "message", {"token": token, "text": "hi"}, headers={"Origin": OTHER}))
    for reply in replies:
        assert reply.headers.get("Access-Control-Allow-Origin") != "*"


# ---- static files -----------------------------------------------------------------------------


def test_health(base: str) -> None:
    assert requests.get(f"{base}/", timeout=10).json() == {"status": "ok"}


def test_widget_files_fit_in_30_kb_gzipped() -> None:
    names = ("widget.js", "widget.css", "demo.html")
    total = sum(len(gzip.compress((STATIC_DIR / n).read_bytes(), 9)) for n in names)
    assert total <= 30 * 1024, f"{total} bytes gzipped"


def test_static_files_are_served_compressed_and_cacheable(base: str) -> None:
    reply = requests.get(f"{base}/widget.js", headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/javascript")
    assert reply.headers["Content-Encoding"] == "gzip"
    assert reply.content == (STATIC_DIR / "widget.js").read_bytes()
    again = requests.get(f"{base}/widget.js", headers={"If-None-Match": reply.headers["ETag"]}, timeout=10)
    assert again.status_code == 304
    css = requests.get(f"{base}/widget.css", timeout=10)
    assert css.headers["Content-Type"].startswith("text/css")


def test_widget_script_never_inserts_html() -> None:
    source = (STATIC_DIR / "widget.js").read_text("utf-8")
    code = re.sub(r"/\*.*?\*/|(?<![:\"'])//[^\n]*", "", source, flags=re.DOTALL)  # drop comments
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code
    assert "textContent" in source and "sessionStorage" in source
    assert "localStorage" not in source and "document.cookie" not in source


def test_demo_page_shows_the_snippet_as_text_under_a_strict_csp(base: str) -> None:
    reply = requests.get(f"{base}/demo", timeout=10)
    assert reply.status_code == 200
    page = reply.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "user-scalable" not in page and "maximum-scale" not in page
    assert f"&lt;script src=&quot;{base}/widget.js&quot;" in page
    assert '<script src="widget.js"' in page
    csp = reply.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert re.search(r"style-src 'self' 'sha256-[A-Za-z0-9+/=]+'", csp)
