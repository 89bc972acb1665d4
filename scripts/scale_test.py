"""``make scale-test``: two replicas behind nginx on one PostgreSQL, under load, through faults.

What it starts, all on loopback ports of this machine, all stopped at the end by process id:
a private PostgreSQL cluster (migrated with ``bot/storage/migrate.py``), two replicas (each
``python -m bot.server.serve``: supervisor, Rasa server, action server), and nginx with
``deploy/nginx/assistant.conf`` in front of them.

The load: ``--conversations`` people talk to the widget channel through nginx, one message at a
time with a short pause, each conversation a fixed cycle of questions and follow-ups whose right
answers are known ("how much money is there" -> "who pays for that?" -> "what are the outcomes"
-> "tell me more about the third one" -> ...). Each client behaves like ``widget.js``: a message
id per message, sent again with the same id after a network error, 502 or 503 (after 0.4, 0.8
and 1.6 s); a message still unanswered after that is shown to the person as an error.

The faults, one after the other while the load runs:

1. ``crash``: every process of replica A killed with SIGKILL at once (a machine dying), then
   started again (as a process manager would);
2. ``stop``: replica B stopped with SIGTERM (a deploy, a scale-down), then started again;
3. ``database``: PostgreSQL restarted (every pooled connection dies).

It then counts, from the answers and from the database:

- **lost**: messages the person never got an answer to (all tries failed);
- **duplicated**: messages whose turn was handled more than once (their id is stored twice);
- **wrong**: answers that are not the right one for that turn (a follow-up that lost its context);
- **stalled**: messages answered more than ``--max-stall`` seconds after they were first sent;

and, for each fault, what it cost: the slowest answer to a message sent around it, how many
messages had to be sent again, and how long the replica took to be ready again. It prints a
table, writes ``bench/results/scale-<time>.json`` and ``bench/results/scale-latest.md``, and exits 1
when anything was lost, duplicated, wrong or stalled.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import requests
import sqlalchemy as sa

from scripts.container import PodmanUnavailable
from scripts.services import Nginx, PostgresCluster, Replica

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# The widget's own retry pauses (bot/channels/widget/static/widget.js) and request time-out.
RETRY_DELAYS_S = (0.4, 0.8, 1.6)
REQUEST_TIMEOUT_S = 70.0
ORDINALS = ["first", "second", "third", "fourth", "fifth"]


@dataclass
class Turn:
    """One message of a conversation and the words its right answer contains."""

    text: str
    expect: str


def script(cycle: int) -> List[Turn]:
    """The turns of one cycle of a conversation; the follow-ups depend on the turn before."""
    outcome = cycle % 5
    return [
        Turn("how much money is there", "£180,000"),
        Turn("who pays for that?", "comes from the district councils"),
        Turn("what are the outcomes", "five key outcomes"),
        Turn(f"tell me more about the {ORDINALS[outcome]} one", f"is outcome {outcome + 1}"),
        Turn("tell me about the trust", "main partnership"),
    ]


@dataclass
class Sent:
    """What happened to one message."""

    conversation: int
    index: int
    message_id: str
    text: str
    expect: str
    first_sent: float
    answered: Optional[float] = None
    status: int = 0
    attempts: int = 0
    reply: str = ""
    statuses: List[int] = field(default_factory=list)

    @property
    def latency(self) -> Optional[float]:
        """Seconds from the first try to the answer (None if never answered)."""
        return None if self.answered is None else self.answered - self.first_sent


class Person(threading.Thread):
    """One conversation through the widget channel, retrying as ``widget.js`` does."""

    def __init__(self, number: int, base: str, stop: threading.Event, started: float, seed: int) -> None:
        super().__init__(name=f"person-{number}", daemon=True)
        self.number = number
        self.base = base
        self.stop_event = stop
        self.started = started
        self.random = random.Random(seed)
        self.session = requests.Session()
        self.token: Optional[str] = None
        self.sent: List[Sent] = []
        self.error: Optional[str] = None

    def run(self) -> None:
        """Talks until told to stop; an unexpected error is kept for the report."""
        try:
            self._talk()
        except Exception as error:  # noqa: BLE001 - reported in the results
            self.error = f"{type(error).__name__}: {error}"

    def _post(self, path: str, body: Dict[str, Any]) -> Tuple[int, Any, Dict[str, str]]:
        try:
            response = self.session.post(f"{self.base}/webhooks/widget/{path}", json=body, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException:
            self.session = requests.Session()  # a broken kept connection: start afresh
            return 0, None, {}
        try:
            data = response.json()
        except ValueError:
            data = None
        return response.status_code, data, dict(response.headers)

    def _token(self) -> str:
        for delay in (*RETRY_DELAYS_S, 2.0, 4.0):
            status, data, _ = self._post("session", {})
            if status in (200, 201) and isinstance(data, dict) and data.get("token"):
                return str(data["token"])
            time.sleep(delay)
        raise RuntimeError(f"no widget session (last status {status})")

    def _talk(self) -> None:
        self.token = self._token()
        index = 0
        while not self.stop_event.is_set():
            for turn in script(index // 5):
                if self.stop_event.is_set():
                    return
                self._say(index, turn)
                index += 1
                time.sleep(self.random.uniform(0.2, 0.8))

    def _say(self, index: int, turn: Turn) -> None:
        sent = Sent(self.number, index, uuid.uuid4().hex, turn.text, turn.expect, time.monotonic() - self.started)
        self.sent.append(sent)
        for attempt in range(len(RETRY_DELAYS_S) + 1):
            sent.attempts = attempt + 1
            body = {"token": self.token, "text": turn.text, "message_id": sent.message_id}
            status, data, headers = self._post("message", body)
            sent.statuses.append(status)
            if status == 200 and isinstance(data, list):
                sent.status = 200
                sent.answered = time.monotonic() - self.started
                sent.reply = "\n".join(str(m.get("text") or "") for m in data if isinstance(m, dict))
                renewed = headers.get("X-Chat-Token")
                if renewed:
                    self.token = renewed
                return
            sent.status = status
            if status not in (0, 502, 503) or attempt == len(RETRY_DELAYS_S):
                sent.reply = json.dumps(data)[:300] if data is not None else ""
                return
            time.sleep(RETRY_DELAYS_S[attempt] * self.random.uniform(0.75, 1.25))


@dataclass
class Fault:
    """One fault: when it began (seconds into the run), and what it cost."""

    name: str
    began: float
    ended: float = 0.0  # when the replica (or database) was back
    recovered_s: Optional[float] = None
    slowest_answer_s: Optional[float] = None
    messages_sent_again: int = 0
    messages_around: int = 0
    note: str = ""


def stored_message_ids(url: str) -> Dict[str, int]:
    """How many times each message id is stored as a user message."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    counts: Dict[str, int] = {}
    with engine.connect() as connection:
        for (data,) in connection.execute(sa.text("SELECT data FROM events WHERE type_name = 'user'")):
            message_id = json.loads(data).get("message_id")
            if message_id:
                counts[message_id] = counts.get(message_id, 0) + 1
    engine.dispose()
    return counts


def percentile(values: List[float], share: float) -> Optional[float]:
    """The value below which ``share`` of ``values`` lie (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def cost_of(fault: Fault, everything: List[Sent], window_s: float) -> None:
    """Fills in what a fault cost, from the messages first sent within ``window_s`` of it."""
    around = [s for s in everything if fault.began - 1 <= s.first_sent <= fault.ended + window_s]
    fault.messages_around = len(around)
    fault.messages_sent_again = sum(1 for s in around if s.attempts > 1)
    latencies = [s.latency for s in around if s.latency is not None]
    fault.slowest_answer_s = round(max(latencies), 2) if latencies else None


class ScaleTest:
    """Starts everything, runs the load and the faults, and stops everything."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.folder = Path(tempfile.mkdtemp(prefix="lancs-scale-"))
        self.postgres: Optional[PostgresCluster] = None
        self.replicas: List[Any] = []  # Replica, or ContainerReplica with --containers
        self.nginx: Optional[Nginx] = None
        self.started = time.monotonic()

    def now(self) -> float:
        """Seconds since the test began."""
        return time.monotonic() - self.started

    def say(self, line: str) -> None:
        """Prints a progress line."""
        print(f"[scale-test {self.now():6.1f}s] {line}", flush=True)

    def start(self) -> None:
        """Starts PostgreSQL (migrated), both replicas (until ready) and nginx."""
        from bot.storage.migrate import upgrade

        self.postgres = PostgresCluster().start()
        upgrade(self.postgres.url)
        self.say(f"PostgreSQL on port {self.postgres.port}, migrated")
        shared = {
            "TRACKER_DB_URL": self.postgres.url,
            "WIDGET_SECRET": secrets.token_urlsafe(48),
            "REST_TOKEN": secrets.token_urlsafe(32),
            "ACTION_TOKEN": secrets.token_urlsafe(32),
            "SANIC_WORKERS": str(self.options.workers),
            # One address sends every conversation here: the per-client limit would stop the load.
            "RATE_LIMIT_CLIENT_PER_MINUTE": "1000000",
            "RATE_LIMIT_CONVERSATION_PER_MINUTE": "1000000",
        }
        if self.options.containers:
            from scripts import container

            images = container.build(["actions", "assistant"])
            self.say("container images built")
            self.replicas = [container.ContainerReplica(name, shared, self.folder, images) for name in ("A", "B")]
        else:
            self.replicas = [Replica(name, shared, self.folder) for name in ("A", "B")]
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            took = replica.wait_ready()
            self.say(f"replica {replica.name} ready on port {replica.port} ({took:.1f} s)")
        self.nginx = Nginx(self.folder / "nginx", [f"127.0.0.1:{r.port}" for r in self.replicas]).start()
        self.say(f"nginx on port {self.nginx.port}")

    def stop(self) -> None:
        """Stops everything it started."""
        for replica in self.replicas:
            replica.stop()
        if self.nginx is not None:
            self.nginx.stop()
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres.remove()

    def run_faults(self) -> List[Fault]:
        """The three faults, one after the other, with plain load before, between and after."""
        assert self.postgres is not None
        a, b = self.replicas
        faults: List[Fault] = []
        time.sleep(self.options.settle)

        what = "both containers killed with SIGKILL" if self.options.containers else "every process killed with -9"
        fault = Fault(f"crash: replica A, {what}", self.now())
        a.crash()
        fault.ended = self.now()
        self.say("replica A killed with -9; starting it again")
        a.start()
        fault.recovered_s = round(a.wait_ready(), 1)
        fault.ended = self.now()
        fault.note = f"replica A ready again {fault.recovered_s} s after its restart began"
        self.say(fault.note)
        faults.append(fault)
        time.sleep(self.options.settle)

        fault = Fault("stop: replica B, SIGTERM (drain)", self.now())
        began = time.monotonic()
        code = b.stop()
        drained = time.monotonic() - began
        fault.ended = self.now()
        self.say(f"replica B stopped (exit {code}) in {drained:.1f} s; starting it again")
        b.start()
        fault.recovered_s = round(b.wait_ready(), 1)
        fault.ended = self.now()
        fault.note = f"drained and stopped in {drained:.1f} s (exit {code}); ready again {fault.recovered_s} s after"
        self.say(fault.note)
        faults.append(fault)
        time.sleep(self.options.settle)

        fault = Fault("database: PostgreSQL restarted", self.now())
        down = self.postgres.restart()
        fault.ended = self.now()
        fault.recovered_s = round(down, 2)
        fault.note = f"PostgreSQL unreachable {down:.2f} s"
        self.say(fault.note)
        faults.append(fault)
        time.sleep(self.options.settle)
        return faults

    def run(self) -> Dict[str, Any]:
        """Starts everything, runs the load through the faults, and returns the figures."""
        self.start()
        assert self.nginx is not None and self.postgres is not None
        stop = threading.Event()
        base = f"http://127.0.0.1:{self.nginx.port}"
        people = [Person(i, base, stop, self.started, seed=i) for i in range(self.options.conversations)]
        load_began = self.now()
        for person in people:
            person.start()
        self.say(f"{len(people)} conversations talking through nginx")
        deadline = threading.Timer(self.options.max_seconds, stop.set)
        deadline.start()
        try:
            faults = self.run_faults()
        finally:
            stop.set()
            deadline.cancel()
            for person in people:
                person.join(REQUEST_TIMEOUT_S + 10)
        load_ended = self.now()
        everything = [sent for person in people for sent in person.sent]
        stored = stored_message_ids(self.postgres.url)
        for fault in faults:
            cost_of(fault, everything, self.options.settle)
        figures = self.figures(everything, stored, faults, people, load_ended - load_began)
        figures["sent_to_another_replica_by_nginx"] = self.nginx.retried()
        return figures

    def figures(
        self, everything: List[Sent], stored: Dict[str, int], faults: List[Fault], people: List[Person], seconds: float
    ) -> Dict[str, Any]:
        """Counts what was lost, duplicated, wrong and stalled."""
        lost = [s for s in everything if s.answered is None]
        wrong = [s for s in everything if s.answered is not None and s.expect not in s.reply]
        duplicated = [s for s in everything if stored.get(s.message_id, 0) > 1]
        answered_not_stored = [s for s in everything if s.answered is not None and stored.get(s.message_id, 0) == 0]
        latencies = [s.latency for s in everything if s.latency is not None]
        stalled = [s for s in everything if s.latency is not None and s.latency > self.options.max_stall]
        return {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "settings": {
                "replicas": 2,
                "containers": bool(self.options.containers),
                "sanic_workers": self.options.workers,
                "conversations": self.options.conversations,
                "max_stall_s": self.options.max_stall,
            },
            "messages": len(everything),
            "seconds_of_load": round(seconds, 1),
            "lost": len(lost),
            "duplicated": len(duplicated),
            "wrong": len(wrong),
            "stalled": len(stalled),
            "answered_but_not_stored": len(answered_not_stored),
            "sent_again": sum(1 for s in everything if s.attempts > 1),
            "client_errors": [p.error for p in people if p.error],
            "latency_s": {
                "p50": round(statistics.median(latencies), 3) if latencies else None,
                "p95": round(percentile(latencies, 0.95) or 0, 3),
                "max": round(max(latencies), 3) if latencies else None,
            },
            "faults": [asdict(fault) for fault in faults],
            "examples": {
                "lost": [asdict(s) for s in lost[:5]],
                "wrong": [asdict(s) for s in wrong[:5]],
                "duplicated": [asdict(s) for s in duplicated[:5]],
                "stalled": [asdict(s) for s in stalled[:5]],
            },
        }


def report(figures: Dict[str, Any]) -> str:
    """The figures as Markdown."""
    passed = not (figures["lost"] or figures["duplicated"] or figures["wrong"] or figures["stalled"])
    latency = figures["latency_s"]
    lines = [
        f"# Scale test {figures['when']}: {'PASS' if passed else 'FAIL'}",
        "",
        f"Two replicas{' in containers (podman)' if figures['settings'].get('containers') else ''} "
        f"(each {figures['settings']['sanic_workers']} Rasa process(es) and an action server) behind "
        f"nginx (`deploy/nginx/assistant.conf`), one PostgreSQL; {figures['settings']['conversations']} conversations "
        f"through the widget channel for {figures['seconds_of_load']} s; {figures['machine']['cpus']} CPUs.",
        "",
        "| count | value | goal |",
        "| --- | ---: | ---: |",
        f"| messages | {figures['messages']} | |",
        f"| lost (no answer after the widget's retries) | {figures['lost']} | 0 |",
        f"| duplicated turns (an id stored twice) | {figures['duplicated']} | 0 |",
        f"| wrong answers (a follow-up out of context) | {figures['wrong']} | 0 |",
        f"| stalled (answered after more than {figures['settings']['max_stall_s']:.0f} s) | {figures['stalled']} | 0 |",
        f"| sent again by the client (retries) | {figures['sent_again']} | |",
        f"| passed on to the other replica by nginx | {figures.get('sent_to_another_replica_by_nginx')} | |",
        f"| answered but not stored | {figures['answered_but_not_stored']} | |",
        f"| latency p50 / p95 / max (s) | {latency['p50']} / {latency['p95']} / {latency['max']} | |",
        "",
        "| fault | slowest answer around it (s) | messages sent again | messages around it | recovery |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for fault in figures["faults"]:
        lines.append(
            f"| {fault['name']} | {fault['slowest_answer_s']} | {fault['messages_sent_again']} | "
            f"{fault['messages_around']} | {fault['note']} |"
        )
    if figures["client_errors"]:
        lines += ["", "Client errors: " + "; ".join(figures["client_errors"])]
    return "\n".join(lines) + "\n"


def main(argv: List[str]) -> int:
    """Runs the scale test; exit 1 if anything was lost, duplicated, wrong or stalled."""
    parser = argparse.ArgumentParser(description="Two replicas behind nginx on PostgreSQL, through faults.")
    parser.add_argument("--conversations", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="Rasa server processes per replica")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds of plain load around each fault")
    parser.add_argument("--max-stall", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="the load stops after this, whatever")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--containers", action="store_true", help="each replica as the assistant and actions images, run with podman"
    )
    options = parser.parse_args(argv)
    test = ScaleTest(options)
    try:
        figures = test.run()
    except PodmanUnavailable as error:
        print(f"\nCONTAINERS NOT TESTED: {error}\n", flush=True)
        return 0
    finally:
        test.stop()
    text = report(figures)
    print("\n" + text)
    options.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    kind = "scale-containers" if options.containers else "scale"
    (options.results / f"{kind}-{stamp}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (options.results / f"{kind}-latest.md").write_text(text)
    print(f"Written: {options.results / f'{kind}-{stamp}.json'} and {options.results / f'{kind}-latest.md'}")
    failed = figures["lost"] or figures["duplicated"] or figures["wrong"] or figures["stalled"]
    return 1 if failed or figures["client_errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
