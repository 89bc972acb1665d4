"""One replica on PostgreSQL, as deployed, under the faults an operator sees: crashes, a database
restart, a stop. The person always gets an answer or an apology with the helplines (never an
empty reply), the conversation survives, and nothing is left running.

The replica is ``python -m bot.server.serve`` (supervisor, two Rasa processes, action server) on a
private PostgreSQL cluster (``tests/conftest.py``'s ``postgres``), started once for this module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from scripts.services import PostgresCluster, Replica, alive, http_ok

HELPLINE = "Childline: 0800 1111"
APOLOGY = "something went wrong on my side"
REST_TOKEN = "rest-token-" + "r" * 32


def send(replica: Replica, sender: str, text: str, message_id: Optional[str] = None) -> Tuple[int, Any]:
    """One message over REST: (HTTP status, JSON body); status 0 when the connection failed."""
    body: Dict[str, Any] = {"sender": sender, "message": text}
    if message_id:
        body["message_id"] = message_id
    request = urllib.request.Request(
        f"{replica.url}/webhooks/rest/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {REST_TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (urllib.error.URLError, OSError):
        return 0, None


def texts(body: Any) -> str:
    """Every text of an answer (a list of messages, or a refusal with its messages)."""
    messages = body.get("messages", []) if isinstance(body, dict) else body or []
    return "\n".join(str(m.get("text") or "") for m in messages)


def wait_for(condition: Any, timeout: float, what: str) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            return time.monotonic() - began
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


@pytest.fixture(scope="module")
def database(postgres: PostgresCluster) -> str:
    import sqlalchemy as sa

    from bot.storage.migrate import upgrade

    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text('CREATE DATABASE "faults"'))
    admin.dispose()
    url = postgres.url.rsplit("/", 1)[0] + "/faults"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def replica(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    env = {
        "TRACKER_DB_URL": database,
        "SANIC_WORKERS": "2",
        "WIDGET_SECRET": "w" * 48,
        "REST_TOKEN": REST_TOKEN,
        "DB_RETRY_SECONDS": "4",
        # One address sends everything here: the per-client limit would answer 429.
        "RATE_LIMIT_CLIENT_PER_MINUTE": "0",
        "RATE_LIMIT_CONVERSATION_PER_MINUTE": "0",
    }
    running = Replica("faults", env, tmp_path_factory.mktemp("replica")).start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_a_replica_on_postgresql_answers_and_is_ready(replica: Replica) -> None:
    status, body = send(replica, "ready-1", "how much money is there")
    assert status == 200 and "£180,000" in texts(body)
    with urllib.request.urlopen(f"{replica.url}/ready", timeout=5) as response:  # noqa: S310
        assert json.load(response) == {
            "ready": True,
            "checks": {"model": True, "database": True, "action_server": True},
        }


def test_an_action_server_crash_gets_an_apology_with_helplines_then_heals(replica: Replica) -> None:
    actions = replica.child_pid("action_server")
    assert actions is not None
    os.kill(actions, signal.SIGKILL)
    wait_for(lambda: not alive(actions), 10, "the action server's death")
    status, body = send(replica, "crash-1", "how much money is there")
    # Never 200 with nothing: a 503 the widget retries, with words and the helplines in it.
    assert status == 503, (status, body)
    assert APOLOGY in body["message"] and HELPLINE in body["help"]
    assert HELPLINE in texts(body)
    wait_for(lambda: "The actions server was started again" in replica.log_tail(10**8), 30, "a restart")
    healed = wait_for(lambda: http_ok(f"{replica.url}/ready"), 60, "the action server's restart")
    # The failed turn was not kept: the same question now gets its answer, and the follow-up works.
    status, body = send(replica, "crash-1", "how much money is there")
    assert status == 200 and "£180,000" in texts(body)
    status, body = send(replica, "crash-1", "who pays for that?")
    assert status == 200 and "comes from the district councils" in texts(body), texts(body)
    print(f"action server back after {healed:.1f} s")


def test_a_database_restart_keeps_the_conversation(replica: Replica, postgres: PostgresCluster) -> None:
    status, body = send(replica, "db-1", "how much money is there")
    assert status == 200
    down = postgres.restart()  # every pooled connection is now dead
    status, body = send(replica, "db-1", "who pays for that?")
    # Rasa's fail-safe store would have read an empty conversation here ("I don't have that answer").
    assert status == 200 and "comes from the district councils" in texts(body), texts(body)
    print(f"PostgreSQL was down {down:.2f} s")


def test_a_database_down_longer_than_the_retries_gets_an_apology(
    replica: Replica, postgres: PostgresCluster
) -> None:
    status, _ = send(replica, "db-2", "how much money is there")
    assert status == 200
    postgres.stop()
    try:
        began = time.monotonic()
        status, body = send(replica, "db-2", "who pays for that?")
        waited = time.monotonic() - began
    finally:
        postgres.start()
    assert status == 503 and APOLOGY in body["message"] and HELPLINE in body["help"], (status, body)
    assert waited < 30
    # Back up: the conversation is as it was (the failed turn was not half-stored).
    status, body = send(replica, "db-2", "who pays for that?")
    assert status == 200 and "comes from the district councils" in texts(body), texts(body)


def widget(replica: Replica, path: str, body: Dict[str, Any]) -> Tuple[int, Any]:
    """One call to the widget channel: (HTTP status, JSON body)."""
    request = urllib.request.Request(
        f"{replica.url}/webhooks/widget/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_a_message_sent_again_with_its_id_is_answered_once(replica: Replica) -> None:
    status, session = widget(replica, "session", {})
    assert status in (200, 201)
    token, message_id = session["token"], uuid.uuid4().hex
    first = widget(replica, "message", {"token": token, "text": "how much money is there", "message_id": message_id})
    # The widget sends it again (its answer was lost on the way, say): the same answer, no new turn.
    again = widget(replica, "message", {"token": token, "text": "how much money is there", "message_id": message_id})
    assert first[0] == again[0] == 200
    assert texts(first[1]) == texts(again[1]) and "£180,000" in texts(first[1])
    follow = widget(replica, "message", {"token": token, "text": "who pays for that?", "message_id": uuid.uuid4().hex})
    assert "comes from the district councils" in texts(follow[1])
    import sqlalchemy as sa

    engine = sa.create_engine(replica.env["TRACKER_DB_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT data FROM events WHERE type_name = 'user'")).all()
    engine.dispose()
    ids = [json.loads(row[0]).get("message_id") for row in rows]
    assert ids.count(message_id) == 1  # one turn, not two


def test_a_rasa_server_crash_takes_its_workers_and_heals(replica: Replica) -> None:
    rasa = replica.child_pid("patches")
    assert rasa is not None
    from scripts.services import process_tree

    workers = [pid for pid in process_tree(rasa) if pid != rasa]
    assert len(workers) == 2  # SANIC_WORKERS=2
    os.kill(rasa, signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in [rasa, *workers]), 10, "the workers' exit")
    wait_for(lambda: "The rasa server was started again" in replica.log_tail(10**8), 30, "a restart")
    healed = wait_for(lambda: http_ok(f"{replica.url}/ready"), 120, "the Rasa server's restart")
    status, body = send(replica, "after-crash", "how much money is there")
    assert status == 200 and "£180,000" in texts(body)
    print(f"Rasa server back after {healed:.1f} s")


def test_a_stop_drains_without_an_empty_reply(replica: Replica) -> None:
    import requests

    results: List[Tuple[int, str]] = []
    stop = threading.Event()

    def talk(index: int) -> None:
        session = requests.Session()  # kept-alive connections, as a balancer keeps them
        while not stop.is_set():
            try:
                answer = session.post(
                    f"{replica.url}/webhooks/rest/webhook",
                    json={"sender": f"drain-{index}", "message": "how much money is there"},
                    headers={"Authorization": f"Bearer {REST_TOKEN}"},
                    timeout=60,
                )
                results.append((answer.status_code, texts(answer.json())))
            except (requests.RequestException, ValueError):
                results.append((0, ""))
                session = requests.Session()
                time.sleep(0.05)

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    pids = replica.pids()
    began = time.monotonic()
    code = replica.stop()
    took = time.monotonic() - began
    stop.set()
    for thread in threads:
        thread.join(60)
    answered = [text for status, text in results if status == 200]
    assert answered and all("£180,000" in text for text in answered)  # never 200 with nothing
    assert all(status in (0, 200) for status, _ in results), sorted({status for status, _ in results})
    assert code == 0, replica.log_tail()
    assert not any(alive(pid) for pid in pids)
    # Kept-alive connections do not hold the stop up to the 20 s grace: they are closed.
    assert took < 10, f"stopping took {took:.1f} s"
    print(f"{len(answered)} answered, {sum(1 for s, _ in results if s == 0)} refused; stopped in {took:.1f} s")


def test_killing_the_supervisor_with_minus_9_leaves_no_server(database: str, tmp_path: Path) -> None:
    env = {"TRACKER_DB_URL": database, "SANIC_WORKERS": "2", "WIDGET_SECRET": "w" * 48, "REST_TOKEN": REST_TOKEN}
    replica = Replica("orphans", env, tmp_path).start()
    try:
        # While the model loads, a connection is refused (a balancer tries the next replica at
        # once), never accepted and left unanswered.
        while not http_ok(f"{replica.url}/ready", timeout=1):
            assert replica.process is not None and replica.process.poll() is None, replica.log_tail()
            try:
                with socket.create_connection(("127.0.0.1", replica.port), timeout=1) as connection:
                    connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    connection.settimeout(5)
                    assert connection.recv(20).startswith(b"HTTP/1.1"), "accepted but not answered"
            except ConnectionRefusedError:
                pass
            time.sleep(0.2)
        pids = replica.pids()
        assert len(pids) >= 5  # supervisor, action server, Rasa main process and its two workers
        assert replica.process is not None
        os.kill(replica.process.pid, signal.SIGKILL)
        gone = wait_for(lambda: not any(alive(pid) for pid in pids), 30, "every server's exit")
        assert not http_ok(f"{replica.url}/ready")
        print(f"every server gone {gone:.1f} s after the supervisor was killed")
    finally:
        replica.stop()
