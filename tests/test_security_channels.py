"""Attacks on the channels, each with the safe outcome, on small in-process servers with a fake bot.

REST (bot/channels/rest.py), the widget (bot/channels/widget/channel.py), socket.io
(bot/channels/socketio.py) and what they share (bot/channels/guard.py, signing.py). The same
attacks against the real assistant: tests/test_security_live.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests
import socketio
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.channels import guard
from bot.channels.guard import RateLimiter, client_address, trusted_proxies
from bot.channels.rest import RestInput
from bot.channels.signing import SessionSigner
from bot.channels.socketio import SocketIOInput
from tests.browser import harness
from tests.test_socketio import _close as close_polling_client

TOKEN = "rest-token-for-tests-" + "t" * 32
MARKER = "okapimarmalade"
ALLOWED = "https://www.example.org"


async def echo(message: UserMessage) -> None:
    if message.text == "fail":
        raise RuntimeError(f"failed on purpose with {message.text}")
    await message.output_channel.send_text_message(message.sender_id or "", f"{message.sender_id}: {message.text}")


def serve_rest(token: str = TOKEN) -> harness.ServerThread:
    app = Sanic(f"rest_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.blueprint(RestInput(token=token).blueprint(echo), url_prefix="/webhooks/rest")
    return harness.ServerThread(app).start()


@pytest.fixture(scope="module")
def rest() -> Iterator[str]:
    server = serve_rest()
    try:
        yield server.base_url + "/webhooks/rest/webhook"
    finally:
        server.stop()


def post(url: str, body: Any, token: Optional[str] = TOKEN, **headers: str) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(url, data=data, headers={"Content-Type": "application/json", **headers}, timeout=30)


def assert_json_error(reply: requests.Response, status: int, code: Optional[str] = None) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    body = reply.json()
    assert body["message"] and (code is None or body["error"] == code), body
    assert "Traceback" not in reply.text and "Error" not in body["message"]


# ---- REST ------------------------------------------------------------------------------------------


def test_rest_answers_only_with_the_bearer_token(rest: str) -> None:
    assert post(rest, {"sender": "a", "message": "hi"}).json() == [{"recipient_id": "a", "text": "a: hi"}]
    for token in (None, "", "wrong", TOKEN + "x", TOKEN[:-1]):
        reply = post(rest, {"sender": "a", "message": "hi"}, token=token)
        assert_json_error(reply, 401, "unauthorised")
        assert reply.headers["WWW-Authenticate"] == "Bearer"
    basic = requests.post(rest, json={"sender": "a", "message": "hi"}, auth=("user", TOKEN), timeout=10)
    assert_json_error(basic, 401)


def test_rest_is_off_without_a_token() -> None:
    server = serve_rest(token="")
    try:
        reply = post(server.base_url + "/webhooks/rest/webhook", {"sender": "a", "message": "hi"}, token="")
        assert_json_error(reply, 403, "channel_off")
    finally:
        server.stop()


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hi"},  # Rasa's REST put this in the shared "default" conversation
        {"sender": None, "message": "hi"},
        {"sender": "", "message": "hi"},
        {"sender": 42, "message": "hi"},
        {"sender": "widget:AbCdEfGhIjKlMnOpQrStUvWxYz012345", "message": "hi"},  # another channel's conversation
        {"sender": "socketio:abc", "message": "hi"},
        {"sender": "x" * 65, "message": "hi"},
        {"sender": "ünïcode", "message": "hi"},
    ],
)
def test_rest_needs_its_own_sender_and_can_never_name_another_channels_conversation(rest: str, body: Dict) -> None:
    assert_json_error(post(rest, body), 400, "invalid_sender")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"", 400),
        (b"[1, 2]", 400),
        (b'"text"', 400),
        (b"null", 400),
        (b"\xff\xfe\x00", 400),
        (b'{"sender": "a", "message": "hi"', 400),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, 400),  # deep nesting
        ({"sender": "a"}, 400),
        ({"sender": "a", "message": None}, 400),
        ({"sender": "a", "message": 42}, 400),
        ({"sender": "a", "message": ["hi"]}, 400),
        ({"sender": "a", "message": {"text": "hi"}}, 400),
        ({"sender": "a", "message": " \x00\n "}, 400),
        ({"sender": "a", "message": "hi", "message_id": "../../etc"}, 400),
        ({"sender": "a", "message": "hi", "message_id": "x" * 65}, 400),
        ({"sender": "a", "message": "y" * 501}, 413),
        (b'{"sender": "a", "message": "' + b"z" * 70_000 + b'"}', 413),
        (b"x" * (20 * 1024 * 1024), 413),
    ],
)
def test_rest_refuses_malformed_and_oversized_requests_with_a_json_error(rest: str, body: Any, status: int) -> None:
    assert_json_error(post(rest, body), status)
    assert post(rest, {"sender": uuid.uuid4().hex, "message": "still there?"}).status_code == 200


def test_rest_takes_500_characters_and_a_message_id(rest: str) -> None:
    reply = post(rest, {"sender": "a", "message": "y" * 500, "message_id": "Retry-1_a"})
    assert reply.status_code == 200 and reply.json()[0]["text"].endswith("y" * 500)


def test_rest_refuses_web_pages_and_other_methods(rest: str) -> None:
    assert_json_error(post(rest, {"sender": "a", "message": "hi"}, Origin="https://evil.example"), 403)
    assert_json_error(requests.get(rest, timeout=10), 405, "use_post")


def test_a_failed_turn_is_a_502_and_never_logs_the_text(rest: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    reply = post(rest, {"sender": "a", "message": "fail"})
    assert_json_error(reply, 502, "bot_error")
    assert "0800 1111" in reply.json()["help"]  # a person left without an answer gets the helplines
    post(rest, {"sender": "a", "message": f"hello {MARKER}"})
    assert MARKER not in caplog.text and TOKEN not in caplog.text


# ---- limits ------------------------------------------------------------------------------------------


def test_a_burst_of_300_from_one_client_hits_the_limit_with_retry_after() -> None:
    server = serve_rest()
    url = server.base_url + "/webhooks/rest/webhook"
    try:
        with requests.Session() as session:
            statuses = []
            for number in range(300):
                reply = session.post(
                    url, json={"sender": f"s{number}", "message": "hi"}, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                statuses.append(reply.status_code)
                if reply.status_code == 429:
                    assert int(reply.headers["Retry-After"]) >= 1
                    assert reply.json()["error"] == "rate_limited" and "0800 1111" in reply.json()["help"]
    finally:
        server.stop()
    assert statuses.count(429) > 150, statuses.count(429)
    assert set(statuses) == {200, 429}


def test_one_conversation_cannot_flood_either() -> None:
    server = serve_rest()
    url = server.base_url + "/webhooks/rest/webhook"
    try:
        statuses = [post(url, {"sender": "same", "message": "hi"}).status_code for _ in range(30)]
    finally:
        server.stop()
    assert statuses[:5] == [200] * 5 and 429 in statuses


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_people_at_normal_speed_never_hit_the_limits_even_on_one_address() -> None:
    """Ten people behind one school or office address, each sending a message every 4 to 8 seconds."""
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    next_at = {person: person * 0.7 for person in range(10)}
    sent = 0
    while clock.now < 1000.0 + 600:  # ten minutes
        person = min(next_at, key=next_at.get)  # type: ignore[arg-type]
        clock.now = 1000.0 + next_at[person]
        limiter.check("203.0.113.7", f"conversation-{person}")  # raises Refused on a 429
        sent += 1
        next_at[person] += 4 + (person % 5)
    assert sent > 900


def test_the_limiter_counts_per_client_and_per_conversation() -> None:
    clock = FakeClock()
    limiter = RateLimiter(client_per_minute=60, conversation_per_minute=12, clock=clock)
    for number in range(15):  # the client's burst is 15
        limiter.check("a", f"c{number}")
    with pytest.raises(guard.Refused) as refused:
        limiter.check("a", "c-new")
    assert refused.value.status == 429 and refused.value.retry_after == 1
    limiter.check("b", "c0")  # another client is not held back
    clock.now += 60
    for _ in range(5):
        limiter.check("c", "one")
    with pytest.raises(guard.Refused):
        limiter.check("c", "one")  # a conversation's burst is 5
    off = RateLimiter(client_per_minute=0, conversation_per_minute=0, clock=clock)
    for _ in range(1000):
        off.check("a", "one")


def test_limits_come_from_the_environment_and_bad_values_fail_clearly() -> None:
    limiter = RateLimiter.from_env({"RATE_LIMIT_CLIENT_PER_MINUTE": "0", "RATE_LIMIT_CONVERSATION_PER_MINUTE": "10"})
    assert (limiter.client_per_minute, limiter.conversation_per_minute) == (0, 10)
    assert RateLimiter.from_env({}).client_per_minute == guard.DEFAULT_CLIENT_PER_MINUTE
    for bad in ({"RATE_LIMIT_CLIENT_PER_MINUTE": "-1"}, {"RATE_LIMIT_CONVERSATION_PER_MINUTE": "lots"}):
        with pytest.raises(guard.SettingsError):
            RateLimiter.from_env(bad)
    with pytest.raises(guard.SettingsError):
        trusted_proxies({"TRUSTED_PROXIES": "10.0.0.0/8, not-an-address"})


def test_x_forwarded_for_counts_only_from_a_trusted_proxy() -> None:
    proxies = trusted_proxies({"TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8"})
    assert client_address("127.0.0.1", "198.51.100.4", proxies) == "198.51.100.4"
    assert client_address("10.1.2.3", "198.51.100.4, 10.0.0.9", proxies) == "198.51.100.4"
    assert client_address("127.0.0.1", "6.6.6.6, 198.51.100.4", proxies) == "198.51.100.4"  # a forged first hop
    assert client_address("203.0.113.9", "198.51.100.4", proxies) == "203.0.113.9"  # not a proxy of ours
    assert client_address("127.0.0.1", "198.51.100.4", ()) == "127.0.0.1"  # no proxies configured


# ---- widget -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def widget() -> Iterator[str]:
    server = harness.ServerThread(harness.build_app([ALLOWED])).start()
    try:
        yield server.base_url + harness.PREFIX
    finally:
        server.stop()


def widget_post(base: str, path: str, body: Dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(f"{base}/{path}", data=json.dumps(body), headers=headers, timeout=30)


def test_a_widget_token_is_renewed_while_the_talk_goes_on(widget: str) -> None:
    old = SessionSigner(harness.SECRET, "widget", clock=lambda: time.time() - 600).new_token()
    reply = widget_post(widget, "message", {"token": old, "text": "hi"}, Origin=ALLOWED)
    assert reply.status_code == 200
    renewed = reply.headers["X-Chat-Token"]
    assert renewed != old and renewed.split(".")[0] == old.split(".")[0]
    assert "X-Chat-Token" in reply.headers["Access-Control-Expose-Headers"]
    fresh = requests.post(f"{widget}/session", timeout=10).json()["token"]
    assert "X-Chat-Token" not in widget_post(widget, "message", {"token": fresh, "text": "hi"}).headers


def test_an_expired_widget_token_is_refused_but_may_still_delete_its_chat(widget: str) -> None:
    expired = SessionSigner(harness.SECRET, "widget", clock=lambda: time.time() - 5 * 3600).new_token()
    assert_json_error(widget_post(widget, "message", {"token": expired, "text": "hi"}), 401, "invalid_token")
    assert_json_error(widget_post(widget, "history", {"token": expired}), 401, "invalid_token")
    assert widget_post(widget, "forget", {"token": expired}).json() == {"deleted": True}


def test_the_widget_forget_route_deletes_the_conversation(widget: str) -> None:
    token = requests.post(f"{widget}/session", timeout=10).json()["token"]
    widget_post(widget, "message", {"token": token, "text": f"remember {MARKER}"})
    assert widget_post(widget, "history", {"token": token}).json()[0]["text"] == f"remember {MARKER}"
    beacon = requests.post(  # what navigator.sendBeacon sends: text/plain, the token in the body
        f"{widget}/forget", data=json.dumps({"token": token}), headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert beacon.status_code == 200
    assert widget_post(widget, "history", {"token": token}).json() == []
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_json_error(widget_post(widget, "forget", {"token": forged}), 401)
    assert_json_error(widget_post(widget, "forget", {"token": token}, Origin="https://evil.example"), 403)


def test_the_id_part_of_a_widget_token_opens_nothing(widget: str) -> None:
    token = requests.post(f"{widget}/session", timeout=10).json()["token"]
    session_id = token.split(".")[0]
    for forged in (session_id, f"{session_id}.{token.split('.')[2]}", token.rsplit(".", 1)[0]):
        assert_json_error(widget_post(widget, "message", {"token": forged, "text": "hi"}), 401)


def test_history_is_never_read_from_a_url(widget: str) -> None:
    token = requests.post(f"{widget}/session", timeout=10).json()["token"]
    assert_json_error(requests.get(f"{widget}/history", params={"token": token}, timeout=10), 405, "use_post")


# ---- socket.io ----------------------------------------------------------------------------------------


class Client:
    """A python-socketio client (long-polling) that records what it is sent."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.confirmed: List[str] = []
        self.uttered: List[Dict[str, Any]] = []
        self.sio.on("session_confirm", self._confirm)
        self.sio.on("bot_uttered", self._uttered)

    async def _confirm(self, session_id: str) -> None:
        self.confirmed.append(session_id)

    async def _uttered(self, message: Dict[str, Any]) -> None:
        self.uttered.append(message)

    async def connect(self, url: str, origin: Optional[str] = None) -> None:
        headers = {"Origin": origin} if origin else {}
        await self.sio.connect(url, socketio_path="socket.io", transports=["polling"], headers=headers, wait_timeout=20)

    async def session(self, session_id: Any) -> str:
        before = len(self.confirmed)
        await self.sio.emit("session_request", {"session_id": session_id})
        for _ in range(100):
            if len(self.confirmed) > before:
                return self.confirmed[-1]
            await asyncio.sleep(0.05)
        raise AssertionError("no session_confirm")

    async def say(self, text: Any, session_id: Any = None, wait: float = 1.5) -> List[str]:
        before = len(self.uttered)
        await self.sio.emit("user_uttered", {"message": text, "session_id": session_id})
        await asyncio.sleep(wait)
        return [str(m.get("text")) for m in self.uttered[before:]]

    async def close(self) -> None:
        await close_polling_client(self.sio)


@pytest.fixture(scope="module")
def socket_server() -> Iterator[str]:
    import os

    os.environ.setdefault("WIDGET_SECRET", harness.SECRET)
    channel = SocketIOInput.from_credentials(
        {"session_persistence": True, "allowed_origins": [ALLOWED], "secret": harness.SECRET, "max_message_chars": 50}
    )
    app = Sanic(f"sio_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.blueprint(channel.blueprint(echo), url_prefix="/webhooks/socketio")
    server = harness.ServerThread(app).start()
    try:
        yield server.base_url
    finally:
        server.stop()


async def test_a_second_socket_cannot_join_or_post_into_someone_elses_conversation(socket_server: str) -> None:
    alice, mallory = Client(), Client()
    await alice.connect(socket_server)
    await mallory.connect(socket_server)
    try:
        token = await alice.session(None)
        session_id = token.split(".")[0]
        assert SessionSigner(harness.SECRET, "socketio").verify(token) == session_id
        # Mallory knows Alice's conversation id (not her token): a new conversation of her own.
        stolen = await mallory.session(session_id)
        assert stolen.split(".")[0] != session_id
        widget_token = SessionSigner(harness.SECRET, "widget").new_token()
        own = await mallory.session(widget_token)
        assert own.split(".")[0] not in (widget_token.split(".")[0], session_id)
        # Posting with Alice's id or token goes to Mallory's own conversation, and Alice hears nothing.
        said = await mallory.say(f"injected {MARKER}", session_id=token)
        assert said == [f"socketio:{own.split('.')[0]}: injected {MARKER}"]
        assert await alice.say("mine", session_id=token) == [f"socketio:{session_id}: mine"]
        assert not any(MARKER in str(m) for m in alice.uttered)
        assert not any("mine" in str(m) for m in mallory.uttered)
    finally:
        await alice.close()
        await mallory.close()


async def test_the_holder_of_the_token_rejoins_after_a_reload(socket_server: str) -> None:
    first, again = Client(), Client()
    await first.connect(socket_server)
    try:
        token = await first.session(None)
    finally:
        await first.close()
    await again.connect(socket_server)
    try:
        renewed = await again.session(token)
        assert renewed.split(".")[0] == token.split(".")[0]
        assert await again.say("back", session_id=renewed) == [f"socketio:{token.split('.')[0]}: back"]
    finally:
        await again.close()


async def test_socketio_refuses_other_origins_before_a_session_opens(socket_server: str) -> None:
    refused = Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(socket_server, origin="https://evil.example")
    allowed = Client()
    await allowed.connect(socket_server, origin=ALLOWED)
    await allowed.close()
    reply = requests.get(
        f"{socket_server}/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"}, timeout=10
    )
    assert reply.status_code == 400 and "Access-Control-Allow-Origin" not in reply.headers


async def test_socketio_answers_bad_messages_and_never_stays_silent(socket_server: str) -> None:
    client = Client()
    await client.connect(socket_server)
    try:
        no_session = await client.say("hello")
        assert len(no_session) == 1 and "not started" in no_session[0] and "0800 1111" in no_session[0]
        await client.session(None)
        for bad in (None, 42, ["a"], {"x": 1}, "", "\x00\x00", "w" * 51):
            replies = await client.say(bad, wait=0.3)
            assert len(replies) == 1 and replies[0], (bad, replies)
        for data in ("a string", 7, None, [1, 2]):
            await client.sio.emit("user_uttered", data)
            await client.sio.emit("session_request", data)
        await asyncio.sleep(0.5)
        assert (await client.say("still here"))[-1].endswith(": still here")
    finally:
        await client.close()
