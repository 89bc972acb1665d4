"""Every attack of issue 10 against the real assistant, each with the safe outcome.

A server of this module's own (``make run``, two Rasa processes, as on a 2-CPU machine) with:
DEBUG logging everywhere, the default rate limits, ``TRUSTED_PROXIES=127.0.0.1`` (so each test can
speak as clients of its own through ``X-Forwarded-For``), and databases seeded, before it starts,
with a conversation and a feedback view older than the retention limit.

The tests run in file order: the last ones read the whole server log (no user text, no traceback).
The attacks on the safety net itself ("/intent" text, button payloads) are the lead's (bot/nlp/safety/).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shutil
import sqlite3
import stat
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import pytest
import requests
from websockets.legacy.client import connect as websocket_connect

from tests.conftest import KNOWLEDGE, ROOT, START_TIMEOUT, _start_make_run, _stop, _wait_for, free_port

REST_TOKEN = "live-security-rest-token-" + "r" * 32
ACTION_TOKEN = "live-security-action-token-" + "a" * 32
WIDGET_SECRET = "live-security-widget-secret-" + "w" * 32
DAY = 86400.0
# Marker words: each is sent through one channel in one shape; none may ever reach the log.
MARKERS: List[str] = []
_client_numbers = itertools.count(1)


def marker(kind: str) -> str:
    word = f"zq{kind}{uuid.uuid4().hex[:8]}marker"
    MARKERS.append(word)
    return word


def new_client() -> str:
    """An address of its own for each simulated person (the server trusts 127.0.0.1 as a proxy)."""
    number = next(_client_numbers)
    return f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"


@dataclass
class Server:
    base: str
    actions: str
    action_port: int
    work: Path
    log: Path
    tracker_db: Path
    feedback_db: Path

    def rest(
        self, sender: str, message: Any, client: Optional[str] = None, token: Optional[str] = REST_TOKEN, **extra: Any
    ) -> requests.Response:
        headers = {"X-Forwarded-For": client or new_client()}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = {"sender": sender, "message": message, **extra}
        return requests.post(f"{self.base}/webhooks/rest/webhook", json=body, headers=headers, timeout=60)

    def texts(self, sender: str, message: str) -> str:
        reply = self.rest(sender, message)
        assert reply.status_code == 200, reply.text
        return "\n".join(m.get("text") or "" for m in reply.json())

    def widget(self, path: str, body: Any, **headers: str) -> requests.Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("X-Forwarded-For", new_client())
        return requests.post(f"{self.base}/webhooks/widget/{path}", data=data, headers=headers, timeout=60)

    def widget_token(self) -> str:
        reply = self.widget("session", {})
        assert reply.status_code == 201, reply.text
        return str(reply.json()["token"])

    def rows(self, sql: str, *args: Any) -> List[Tuple[Any, ...]]:
        with sqlite3.connect(self.tracker_db) as connection:
            return connection.execute(sql, args).fetchall()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _seed(tracker_db: Path, feedback_db: Path) -> None:
    """A conversation and a feedback view from 40 days ago, and a recent conversation, before the start."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from actions.feedback_store import save_view
    from bot.storage.tracker_store import BoundedSQLTrackerStore

    store = BoundedSQLTrackerStore(domain=Domain.load(str(ROOT / "domain.yml")), host=f"sqlite:///{tracker_db}")
    for sender, age in (("seeded-old", 40 * DAY), ("seeded-recent", 1 * DAY)):
        tracker = DialogueStateTracker(sender, [])
        when = time.time() - age
        for offset, event in enumerate(
            [
                ActionExecuted("action_listen", timestamp=when),
                UserUttered("what is the plan", {"name": "ask_plan", "confidence": 1.0}, timestamp=when + 1),
                ActionExecuted("action_answer_topic", timestamp=when + 2),
                BotUttered("The Plan covers 2014 to 2017.", timestamp=when + 3),
                ActionExecuted("action_listen", timestamp=when + 4),
            ]
        ):
            tracker.update(event)
        asyncio.run(store.save(tracker))
    store.engine.dispose()
    old = datetime.fromtimestamp(time.time() - 40 * DAY, timezone.utc)
    save_view("plan", "a view from long ago", path=feedback_db, now=old)
    save_view("plan", "a view from yesterday", path=feedback_db, now=datetime.now(timezone.utc))
    os.chmod(tracker_db, 0o644)  # as a file made before this project's privacy settings
    os.chmod(feedback_db, 0o644)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("security")
    knowledge = work / "lancashire.yml"
    shutil.copy(KNOWLEDGE, knowledge)
    tracker_db, feedback_db = work / "tracker.db", work / "feedback.db"
    _seed(tracker_db, feedback_db)
    port, action_port = free_port(), free_port()
    env = dict(os.environ)
    for name in ("RATE_LIMIT_CLIENT_PER_MINUTE", "RATE_LIMIT_CONVERSATION_PER_MINUTE", "RETENTION_DAYS"):
        env.pop(name, None)  # the defaults
    env.update(
        PORT=str(port),
        ACTION_PORT=str(action_port),
        TRACKER_DB_URL=f"sqlite:///{tracker_db}",
        FEEDBACK_DB=str(feedback_db),
        KNOWLEDGE_FILE=str(knowledge),
        WIDGET_SECRET=WIDGET_SECRET,
        REST_TOKEN=REST_TOKEN,
        ACTION_TOKEN=ACTION_TOKEN,
        SANIC_WORKERS="2",
        LOG_LEVEL="DEBUG",
        LOG_LEVEL_LIBRARIES="DEBUG",
        TRUSTED_PROXIES="127.0.0.1",
    )
    log = work / "server.log"
    process = _start_make_run(env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base, process, log, START_TIMEOUT)
        yield Server(base, f"http://127.0.0.1:{action_port}", action_port, work, log, tracker_db, feedback_db)
    finally:
        _stop(process)


# ---- storage: retention on start, private files ----------------------------------------------------------


def test_what_is_older_than_the_limit_was_deleted_when_the_servers_started(server: Server) -> None:
    deadline = time.monotonic() + 30
    while server.rows("SELECT count(*) FROM events WHERE sender_id = 'seeded-old'") != [(0,)]:
        assert time.monotonic() < deadline, "the old conversation is still there"
        time.sleep(0.5)
    assert server.rows("SELECT count(*) FROM events WHERE sender_id = 'seeded-recent'")[0][0] > 0
    with sqlite3.connect(server.feedback_db) as connection:
        views = [view for (view,) in connection.execute("SELECT view FROM feedback")]
    assert views == ["a view from yesterday"]
    assert "Deleted everything stored before" in server.log_text()


def test_database_files_are_readable_by_their_owner_only(server: Server) -> None:
    server.texts("files", "hello")
    for path in server.work.glob("*.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# ---- the servers' answers -----------------------------------------------------------------------------


def test_no_version_banner_and_security_headers_on_every_response(server: Server) -> None:
    root = requests.get(server.base + "/", timeout=10)
    assert root.status_code == 200 and root.json() == {"status": "ok"} and "Rasa" not in root.text
    replies = [
        root,
        requests.get(server.base + "/no/such/page", timeout=10),
        requests.post(server.base + "/webhooks/rest/webhook", json={}, timeout=10),
        requests.get(server.base + "/webhooks/widget/config", timeout=10),
        requests.get(server.base + "/webhooks/widget/widget.js", timeout=10),
        requests.get(server.base + "/socket.io/?EIO=4&transport=polling", timeout=10),
        requests.get(server.actions + "/health", timeout=10),
        requests.post(server.actions + "/webhook", json={}, timeout=10),
        requests.get(server.actions + "/nothing", timeout=10),
    ]
    for reply in replies:
        assert reply.headers.get("X-Content-Type-Options") == "nosniff", reply.url
        assert reply.headers.get("Referrer-Policy") == "no-referrer", reply.url
        assert reply.status_code < 500, reply.url
        if "transport=polling" in reply.url:  # engine.io's own handshake (long-polling works with any process count)
            assert reply.status_code == 200 and reply.text.startswith("0{"), reply.url
        elif not reply.url.endswith("widget.js"):
            assert reply.headers["Content-Type"].startswith("application/json") or reply.status_code == 400, reply.url


def _listening_addresses(port: int) -> List[str]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_the_action_server_listens_on_loopback_only_and_wants_its_token(server: Server) -> None:
    assert _listening_addresses(server.action_port) == ["0100007F"]  # 127.0.0.1, nothing else
    with sqlite3.connect(server.feedback_db) as connection:
        before = connection.execute("SELECT count(*) FROM feedback").fetchone()[0]
    forged = {
        "next_action": "action_save_feedback",
        "sender_id": "attacker",
        "tracker": {"sender_id": "attacker", "slots": {"feedback_about": "plan", "feedback_view": "spam"},
                    "latest_message": {}, "events": []},
        "domain": {},
        "version": "3.6.21",
    }
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ACTION_TOKEN}"}):
        reply = requests.post(server.actions + "/webhook", json=forged, headers=headers, timeout=10)
        assert reply.status_code == 401 and reply.json()["error"] == "unauthorised"
        assert "spam" not in reply.text
    assert requests.get(server.actions + "/actions", timeout=10).status_code == 401
    with sqlite3.connect(server.feedback_db) as connection:
        assert connection.execute("SELECT count(*) FROM feedback").fetchone()[0] == before
    listed = requests.get(server.actions + "/actions", headers={"Authorization": f"Bearer {ACTION_TOKEN}"}, timeout=10)
    assert {"name": "action_save_feedback"} in listed.json()


# ---- nobody gets into another person's conversation -----------------------------------------------------


def test_rest_needs_the_token_and_its_own_sender(server: Server) -> None:
    assert server.rest("someone", "hello", token=None).status_code == 401
    assert server.rest("someone", "hello", token="guess").status_code == 401
    no_sender = requests.post(
        f"{server.base}/webhooks/rest/webhook",
        json={"message": "hello"},
        headers={"Authorization": f"Bearer {REST_TOKEN}"},
        timeout=30,
    )
    assert no_sender.status_code == 400 and no_sender.json()["error"] == "invalid_sender"
    assert server.rows("SELECT count(*) FROM events WHERE sender_id = 'default'") == [(0,)]


def test_the_id_of_a_widget_token_gets_into_no_widget_conversation(server: Server) -> None:
    token = server.widget_token()
    session_id = token.split(".")[0]
    first = server.widget("message", {"token": token, "text": "any family support in Burnley?"})
    assert first.status_code == 200
    for sender in (f"widget:{session_id}", f"widget%3A{session_id}"):
        assert server.rest(sender, "hello").status_code == 400
    assert server.rest(session_id, f"injected {marker('restinject')}").status_code == 200  # a conversation of its own
    history = server.widget("history", {"token": token}).json()
    assert [turn["text"] for turn in history if turn["sender"] == "user"] == ["any family support in Burnley?"]
    for forged in (session_id, token.rsplit(".", 1)[0], f"{session_id}.{token.split('.')[2]}"):
        assert server.widget("message", {"token": forged, "text": "hi"}).status_code == 401
        assert server.widget("history", {"token": forged}).status_code == 401
    in_url = requests.get(f"{server.base}/webhooks/widget/history", params={"token": token}, timeout=10)
    assert in_url.status_code == 405


def test_a_request_from_another_site_is_refused_by_the_server(server: Server) -> None:
    token = server.widget_token()
    reply = server.widget("message", {"token": token, "text": f"from evil {marker('origin')}"}, Origin="https://evil.example")
    assert reply.status_code == 403 and "Access-Control-Allow-Origin" not in reply.headers
    assert server.widget("history", {"token": token}).json() == []  # it was never processed
    same_site = server.widget("message", {"token": token, "text": "hello"}, Origin=server.base)
    assert same_site.status_code == 200  # the server's own demo page


class Socket:
    """A socket.io client over a websocket, speaking Engine.IO 4 by hand (rasa 3.6's aiohttp is too old)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: List[List[Any]] = []

    @classmethod
    async def open(cls, base: str, origin: Optional[str] = None) -> "Socket":
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        headers = {"Origin": origin} if origin else None
        ws = await websocket_connect(url, open_timeout=30, extra_headers=headers)
        socket = cls(ws)
        assert (await socket._receive()).startswith("0")
        await ws.send("40")
        assert (await socket._receive()).startswith("40")
        return socket

    async def _receive(self) -> str:
        packet = await self.ws.recv()
        return packet if isinstance(packet, str) else packet.decode()

    async def emit(self, event: str, data: Any) -> None:
        await self.ws.send("42" + json.dumps([event, data]))

    async def collect(self, seconds: float) -> List[List[Any]]:
        """The events that arrive within ``seconds``."""
        got: List[List[Any]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                packet = await asyncio.wait_for(self._receive(), max(0.05, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if packet == "2":
                await self.ws.send("3")
            elif packet.startswith("42"):
                got.append(list(json.loads(packet[2:])))
        self.events.extend(got)
        return got

    async def session(self, session_id: Any) -> str:
        await self.emit("session_request", {"session_id": session_id})
        for _ in range(60):
            for event in await self.collect(0.5):
                if event[0] == "session_confirm":
                    return str(event[1])
        raise AssertionError("no session_confirm")

    async def say(self, text: Any, session_id: Any = None, seconds: float = 8.0) -> List[str]:
        await self.emit("user_uttered", {"message": text, "session_id": session_id})
        answers: List[str] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = [str(e[1].get("text")) for e in await self.collect(0.7) if e[0] == "bot_uttered"]
            answers += got
            if answers and not got:
                break
        return answers

    async def close(self) -> None:
        await self.ws.close()


async def test_socketio_a_second_socket_never_hears_or_posts_into_another_conversation(server: Server) -> None:
    alice = await Socket.open(server.base)
    mallory = await Socket.open(server.base)
    try:
        token = await alice.session(None)
        session_id = token.split(".")[0]
        assert await alice.say(f"hello {marker('sioalice')}", session_id=token)
        own = await mallory.session(session_id)  # the id alone: a conversation of Mallory's own
        assert own.split(".")[0] != session_id
        assert await mallory.say(f"hello {marker('siomallory')}", session_id=token)
        assert await alice.collect(1.5) == []  # Alice heard nothing of it
        alices = f"socketio:{session_id}"
        assert server.rows("SELECT count(*) FROM events WHERE sender_id = ? AND type_name = 'user'", alices) == [(1,)]
    finally:
        await alice.close()
        await mallory.close()
    with pytest.raises(Exception):
        await Socket.open(server.base, origin="https://evil.example")


# ---- "delete my chat", quick exit, the whole history ------------------------------------------------------


def test_delete_my_chat_asks_first_then_deletes_everything_on_the_server(server: Server) -> None:
    sender = f"forget-{uuid.uuid4().hex[:8]}"
    server.texts(sender, f"any early help in Chorley? {marker('forget')}")
    asked = server.texts(sender, "please delete my chat")
    assert "delete this chat" in asked.lower()
    assert server.rows("SELECT count(*) FROM events WHERE sender_id = ?", sender)[0][0] > 0  # not before a yes
    done = server.texts(sender, "yes")
    assert "deleted" in done.lower()
    assert server.rows("SELECT count(*) FROM events WHERE sender_id = ?", sender) == [(0,)]
    assert server.rows("SELECT count(*) FROM tracker_checkpoints WHERE sender_id = ?", sender) == [(0,)]
    assert server.texts(sender, "hello").strip()  # a new conversation starts
    kept = f"keep-{uuid.uuid4().hex[:8]}"
    server.texts(kept, "forget everything I told you")
    assert "haven't deleted" in server.texts(kept, "no")
    assert server.rows("SELECT count(*) FROM events WHERE sender_id = ?", kept)[0][0] > 0


def test_quick_exit_deletes_the_widget_conversation(server: Server) -> None:
    token = server.widget_token()
    server.widget("message", {"token": token, "text": f"hello {marker('quickexit')}"})
    conversation = f"widget:{token.split('.')[0]}"
    assert server.rows("SELECT count(*) FROM events WHERE sender_id = ?", conversation)[0][0] > 0
    beacon = server.widget("forget", {"token": token}, **{"Content-Type": "text/plain;charset=UTF-8"})
    assert beacon.status_code == 200
    assert server.rows("SELECT count(*) FROM events WHERE sender_id = ?", conversation) == [(0,)]


def test_a_reloaded_widget_shows_the_whole_conversation_and_keeps_message_ids(server: Server) -> None:
    token = server.widget_token()
    client = new_client()
    questions = ["hello", "what is the plan", "what are the outcomes", "tell me about the trust", "how much money"]
    for number in range(14):  # more than the bounded window the tracker store loads (max_events: 60)
        text = questions[number % len(questions)]
        reply = server.widget(
            "message", {"token": token, "text": text, "message_id": f"m{number}"}, **{"X-Forwarded-For": client}
        )
        assert reply.status_code == 200, reply.text
        time.sleep(1.5)  # a fast typist; the conversation limit allows one message every 2 s after a burst of 7
    history = server.widget("history", {"token": token}).json()
    assert [turn["text"] for turn in history if turn["sender"] == "user"][:2] == ["hello", "what is the plan"]
    assert sum(turn["sender"] == "user" for turn in history) == 14
    conversation = f"widget:{token.split('.')[0]}"
    stored = [json.loads(data)["message_id"] for (data,) in server.rows(
        "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", conversation)]
    assert stored == [f"m{number}" for number in range(14)]


def test_stored_text_is_redacted(server: Server) -> None:
    sender = f"redact-{uuid.uuid4().hex[:8]}"
    word = marker("redact")
    server.texts(sender, f"{word} my number is 07700 900123 and my email is jo dot bloggs at gmail dot com")
    data = " ".join(d for (d,) in server.rows("SELECT data FROM events WHERE sender_id = ?", sender))
    assert word in data and "900123" not in data and "bloggs" not in data


# ---- limits ------------------------------------------------------------------------------------------------


def test_a_burst_of_300_from_one_client_hits_the_limit(server: Server) -> None:
    client = new_client()
    statuses: List[int] = []
    retry_after: List[int] = []
    with requests.Session() as session:
        for number in range(300):
            reply = session.post(
                f"{server.base}/webhooks/rest/webhook",
                json={"sender": f"burst-{number}", "message": "hi"},
                headers={"Authorization": f"Bearer {REST_TOKEN}", "X-Forwarded-For": client},
                timeout=60,
            )
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                retry_after.append(int(reply.headers["Retry-After"]))
    assert set(statuses) <= {200, 429} and statuses.count(429) >= 100, statuses.count(429)
    assert min(retry_after) >= 1
    # Another person is not held back.
    assert server.rest("someone-else", "hello").status_code == 200


def test_one_conversation_sending_too_fast_is_slowed_down(server: Server) -> None:
    client, sender = new_client(), f"flood-{uuid.uuid4().hex[:8]}"
    statuses = [server.rest(sender, "hi", client=client).status_code for _ in range(25)]
    assert statuses[0] == 200 and 429 in statuses


def test_ten_people_at_normal_speed_never_hit_a_limit(server: Server) -> None:
    """Ten people behind one school address, each sending a message every 2.5 seconds."""
    client = new_client()
    statuses: List[int] = []
    lock = threading.Lock()

    def person(number: int) -> None:
        time.sleep(number * 0.25)
        for _ in range(4):
            status = server.rest(f"person-{number}-{client}", "what is the plan", client=client).status_code
            with lock:
                statuses.append(status)
            time.sleep(2.5)

    threads = [threading.Thread(target=person, args=(number,)) for number in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [200] * 40, statuses


# ---- hostile input on every channel ------------------------------------------------------------------------

HOSTILE_TEXTS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 501,
    "x" * 100_000,
    "\u202eevil rtl \u202c مرحبا שלום",
    "😀" * 200,
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "'; DROP TABLE events; --",
    "\" OR 1=1 --",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "\ud800",
    "/restart",
    "/session_start",
    '/greet{"location": "' + "B" * 400 + '"}',
]
HOSTILE_BODIES = [
    b"",
    b"null",
    b"[]",
    b"[1, 2, 3]",
    b'"a string"',
    b"42",
    b"\xff\xfe\xfd",
    b'{"a":' * 20000 + b"1" + b"}" * 20000,
    b'{"sender": "a", "message": "unterminated',
    b"x" * 200_000,
    json.dumps({"sender": ["a"], "message": "hi"}).encode(),
    json.dumps({"sender": "a", "message": {"nested": ["deep"]}}).encode(),
    json.dumps({"sender": "a", "message": True}).encode(),
    json.dumps({"token": None, "text": None, "payload": None}).encode(),
    json.dumps({"token": "a" * 10_000, "text": "hi"}).encode(),
]


def _still_answers(server: Server) -> None:
    assert server.texts(f"probe-{uuid.uuid4().hex[:8]}", "hello").strip()


def test_hostile_input_over_rest(server: Server) -> None:
    url = f"{server.base}/webhooks/rest/webhook"
    headers = {"Authorization": f"Bearer {REST_TOKEN}"}
    for text in HOSTILE_TEXTS:
        reply = server.rest(f"hostile-{uuid.uuid4().hex[:8]}", text)
        assert reply.status_code < 500, (text[:40], reply.status_code, reply.text[:200])
    for body in HOSTILE_BODIES:
        for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            reply = requests.post(url, data=body, headers={**headers, "Content-Type": content_type}, timeout=60)
            assert reply.status_code < 500 and reply.headers["Content-Type"].startswith("application/json"), (
                body[:40], reply.status_code)
    _still_answers(server)


def test_hostile_input_over_the_widget(server: Server) -> None:
    token = server.widget_token()
    for text in HOSTILE_TEXTS:
        for field in ("text", "payload"):
            reply = server.widget("message", {"token": server.widget_token(), field: text})
            assert reply.status_code < 500, (field, text[:40], reply.status_code, reply.text[:200])
    for body in HOSTILE_BODIES:
        for path in ("session", "message", "history", "forget"):
            reply = server.widget(path, body)
            assert reply.status_code < 500 and reply.headers["Content-Type"].startswith("application/json"), (
                path, body[:40], reply.status_code)
    assert server.widget("message", {"token": token, "text": "hello"}).json()
    _still_answers(server)


async def test_hostile_input_over_socketio(server: Server) -> None:
    socket = await Socket.open(server.base)
    try:
        token = await socket.session(None)
        for data in (None, "text", 42, [1, 2], {"session_id": {"$ne": 1}}, {"session_id": "x" * 10_000}):
            await socket.emit("session_request", data)
        token = await socket.session(token)
        for text in HOSTILE_TEXTS:
            answers = await socket.say(text, session_id=token, seconds=8.0)
            # "/restart" and the like are Rasa commands until the safety work treats them as text.
            assert answers or text.startswith("/"), f"no answer to {text[:40]!r}"
        for data in (None, "text", 42, [1, 2], {"message": None}, {"message": {"a": 1}}, {"message": ["x"] * 1000}):
            await socket.emit("user_uttered", data)
        for raw in ("42[", "42[\"user_uttered\"", "4" + "x" * 10_000, "99", "42" + "[" * 5000):
            await socket.ws.send(raw)
        await socket.collect(2.0)
    finally:
        await socket.close()
    again = await Socket.open(server.base)
    try:
        token = await again.session(None)
        assert await again.say("hello", session_id=token)
    finally:
        await again.close()
    _still_answers(server)


def test_hostile_input_to_the_action_server(server: Server) -> None:
    headers = {"Authorization": f"Bearer {ACTION_TOKEN}"}
    for body in HOSTILE_BODIES[:9] + [json.dumps({"next_action": "no_such_action", "tracker": {}}).encode()]:
        for auth in ({}, headers):
            reply = requests.post(server.actions + "/webhook", data=body, headers=auth, timeout=60)
            assert reply.status_code < 500, (body[:40], reply.status_code, reply.text[:200])
            assert "Traceback" not in reply.text
    _still_answers(server)


# ---- what the log holds (these run last) ------------------------------------------------------------------


def test_marker_words_through_every_channel_never_reach_the_log(server: Server) -> None:
    sender = f"markers-{uuid.uuid4().hex[:8]}"
    for shape in ("{m}", "/greet@1 {m}", '/greet{{"location":"Burnley"}} {m}', "/restart {m}", "/{m}", "{m} " * 120):
        server.rest(sender, shape.format(m=marker("restshape")))
    # The feedback form in a conversation of its own: nine quick messages in one conversation can
    # reach its burst limit (7 a process) when the balancer sends most of them to one process.
    feedback = f"markers-feedback-{uuid.uuid4().hex[:8]}"
    server.texts(feedback, "i want to give feedback")
    server.texts(feedback, "the video")
    server.texts(feedback, f"great video {marker('feedback')} call me on 07700 900123")
    token = server.widget_token()
    server.widget("message", {"token": token, "text": f"hi {marker('widgettext')}"})
    server.widget("message", {"token": token, "payload": f"/ask_plan {marker('widgetpayload')}"})
    server.widget("message", {"token": token, "text": "y" * 400 + marker("widgetlong")})

    async def over_socketio() -> None:
        socket = await Socket.open(server.base)
        try:
            session = await socket.session(None)
            await socket.say(f"hello {marker('socketio')}", session_id=session)
            await socket.say(f"/greet@1 {marker('socketioslash')}", session_id=session)
        finally:
            await socket.close()

    asyncio.run(over_socketio())
    time.sleep(1.0)
    text = server.log_text()
    assert "DEBUG" in text and "rasa.core.processor" in text  # the servers did log at DEBUG
    leaked = [word for word in MARKERS if word in text]
    assert not leaked, f"{len(leaked)} of {len(MARKERS)} marker words are in the log: {leaked[:5]}"
    # Rasa's debug lines print objects' memory addresses ("at 0x7f186d207700": a false alarm once);
    # those are left out, every other place is searched for either half of the number.
    without_addresses = re.sub(r"0x[0-9a-fA-F]+", "0x", text)
    assert "07700" not in without_addresses and "900123" not in without_addresses


def test_no_traceback_in_the_log(server: Server) -> None:
    text = server.log_text()
    assert "Traceback" not in text, text[text.find("Traceback") - 2000 : text.find("Traceback") + 3000]
