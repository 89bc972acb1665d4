"""Shared fixtures: trackers for action tests, and the real servers for end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge" / "lancashire.yml"
SEEDS = ROOT.parent / "shared" / "seeds"
START_TIMEOUT = 240.0
# The live servers' REST bearer token (bot/channels/rest.py): REST is for servers that hold it.
REST_TOKEN = "test-rest-token-" + "r" * 32


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """The assistant started with ``make run``: both servers, on spare ports."""

    base_url: str
    action_url: str
    knowledge_file: Path
    feedback_db: Path
    tracker_db: Path
    log: Path
    services_file: Path
    rest_token: str = REST_TOKEN

    def say(self, sender: str, message: str, timeout: float = 30) -> List[Dict[str, Any]]:
        """Sends a message over the REST channel (with its bearer token) and returns the bot's messages."""
        request = urllib.request.Request(
            f"{self.base_url}/webhooks/rest/webhook",
            data=json.dumps({"sender": sender, "message": message}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.rest_token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return list(json.load(response))

    def texts(self, sender: str, message: str) -> str:
        """The bot's reply to one message, all texts joined by newlines."""
        return "\n".join(m.get("text") or "" for m in self.say(sender, message))


def _start_make_run(env: Dict[str, str], log: Path) -> "subprocess.Popen[bytes]":
    """Starts ``make run`` in a session of its own (``_stop`` ends all of it), output into ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            ["make", "-s", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for(url: str, process: "subprocess.Popen[bytes]", log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`make run` exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if "The assistant is running" in log.read_text(errors="replace"):
            return
        time.sleep(1)
    raise RuntimeError(f"`make run` did not answer at {url} in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Starts the real servers with ``make run`` on spare ports, with their own databases and knowledge copy."""
    work = tmp_path_factory.mktemp("live")
    knowledge = work / "lancashire.yml"
    shutil.copy(KNOWLEDGE, knowledge)
    port, action_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        PORT=str(port),
        ACTION_PORT=str(action_port),
        TRACKER_DB_URL=f"sqlite:///{work / 'tracker.db'}",
        FEEDBACK_DB=str(work / "feedback.db"),
        KNOWLEDGE_FILE=str(knowledge),
        SERVICES_FILE=str(work / "services.json"),  # no imported directory until a test imports one
        WIDGET_SECRET="test-secret-" + "x" * 32,
        REST_TOKEN=REST_TOKEN,
        SANIC_WORKERS="2",  # what `make run` starts on a 2-CPU machine: locks shared in the database
        # Every test here talks from 127.0.0.1, far faster than a person: no rate limits on this
        # server. tests/test_security_live.py checks the limits on a server of its own.
        RATE_LIMIT_CLIENT_PER_MINUTE="0",
        RATE_LIMIT_CONVERSATION_PER_MINUTE="0",
    )
    log = work / "server.log"
    process = _start_make_run(env, log)
    server = LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        action_url=f"http://127.0.0.1:{action_port}",
        knowledge_file=knowledge,
        feedback_db=work / "feedback.db",
        tracker_db=work / "tracker.db",
        log=log,
        services_file=work / "services.json",
    )
    try:
        _wait_for(server.base_url, process, log, START_TIMEOUT)
        yield server
    finally:
        _stop(process)


def _stop(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A private PostgreSQL cluster on a loopback port (Debian's ``postgresql``), for the whole run.

    Tests that share a database across processes or replicas run on it. Without PostgreSQL
    installed (``.ci/run`` and ``make scale-test`` install it), those tests fail and say so.
    """
    from scripts.services import PostgresCluster, ServiceMissing

    try:
        cluster = PostgresCluster().start()
    except ServiceMissing as missing:
        pytest.fail(f"{missing} (the multi-replica tests need it)")
    try:
        yield cluster
    finally:
        cluster.stop()
        cluster.remove()


@pytest.fixture()
def fresh_postgres_url(postgres: Any) -> str:
    """A new, empty database in the session's cluster, migrated to the latest schema."""
    import uuid

    import sqlalchemy as sa

    from bot.storage.migrate import upgrade

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url


def tracker_dict(
    intent: str,
    text: str = "",
    slots: Optional[Dict[str, Any]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    extra: Optional[Dict[str, Any]] = None,
    ranking: Optional[List[Dict[str, Any]]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    """A tracker state as the action server receives it, for ``Tracker.from_dict``."""
    latest: Dict[str, Any] = {
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
        "text": text,
        "intent_ranking": ranking or [{"name": intent, "confidence": 0.99}],
    }
    latest.update(extra or {})
    return {
        "sender_id": "test-user",
        "slots": slots or {},
        "latest_message": latest,
        "events": events or [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    }
