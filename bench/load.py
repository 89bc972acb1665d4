"""The load generator: replays conversation scripts against a server over loopback.

It runs in its own process (``python -m bench.load JOB.json OUT.json``, started by
``bench.run``) so that its CPU time is not counted as the servers'. A job is JSON::

    {"kind": "conversations" | "long", "channel": "rest" | "widget",
     "base_url": "http://127.0.0.1:5005", "turns": ["hi", ...],
     "concurrency": 10, "conversations": 40, "duration_s": 60,
     "total_turns": 300, "repeats": 1, "timeout_s": 30, "sender_prefix": "bench-x"}

``conversations``: ``concurrency`` workers share ``conversations`` conversations, each
one the whole script under a new sender id; no new conversation starts after
``duration_s``. ``long``: ``repeats`` conversations, one after another, of
``total_turns`` turns each (the script repeated). Every loop is bounded in count
and in time, and only loopback addresses are accepted.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlparse

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
REST_PATH = "/webhooks/rest/webhook"
WIDGET_SESSION_PATH = "/webhooks/widget/session"
WIDGET_MESSAGE_PATH = "/webhooks/widget/message"
ANSWER_KEYS = ("text", "image", "buttons", "custom", "attachment")
HARD_LIMIT_S = 900.0


class LoadError(Exception):
    """The job is malformed or targets something other than this machine."""


def check_loopback(base_url: str) -> None:
    """Refuses any address that is not this machine's loopback.

    Raises:
        LoadError: if the URL's host is not 127.0.0.1, localhost or ::1.
    """
    host = urlparse(base_url).hostname
    if host not in LOOPBACK_HOSTS:
        raise LoadError(f"refusing to send load to {host!r}: loopback only")


def rest_headers() -> Dict[str, str]:
    """The REST channel's bearer token (``REST_TOKEN``, set by bench/run.py); other bots ignore it."""
    token = os.environ.get("REST_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def is_answer(payload: Any) -> bool:
    """Returns whether a channel's reply holds at least one non-empty message."""
    if not isinstance(payload, list):
        return False
    return any(isinstance(item, dict) and any(item.get(key) for key in ANSWER_KEYS) for item in payload)


class Client:
    """Sends one user message and times the whole answer, over REST or the widget channel."""

    def __init__(self, session: Any, base_url: str, channel: str, timeout_s: float) -> None:
        """Creates the client.

        Args:
            session: an ``aiohttp.ClientSession``.
            base_url: e.g. ``http://127.0.0.1:5005``.
            channel: ``rest`` or ``widget``.
            timeout_s: the time-out of one request.
        """
        import aiohttp

        self.session = session
        self.base_url = base_url.rstrip("/")
        self.channel = channel
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def start(self, sender: str) -> Optional[str]:
        """Starts a conversation; returns the id to send with (None if the widget refused)."""
        if self.channel == "rest":
            return sender
        try:
            async with self.session.post(
                self.base_url + WIDGET_SESSION_PATH, json={}, timeout=self.timeout
            ) as response:
                if not 200 <= response.status < 300:  # the widget answers 201 Created
                    return None
                body = await response.json(content_type=None)
        except Exception:  # noqa: BLE001 - any failure is one counted error
            return None
        token = body.get("token") if isinstance(body, dict) else None
        return str(token) if token else None

    async def send(self, conversation: str, text: str) -> Tuple[Optional[float], Optional[str]]:
        """Sends one message.

        Returns:
            ``(latency_ms, None)`` for a non-empty answer, else ``(None, error_kind)``.
        """
        if self.channel == "rest":
            url, body = self.base_url + REST_PATH, {"sender": conversation, "message": text}
        else:
            url, body = self.base_url + WIDGET_MESSAGE_PATH, {"token": conversation, "text": text}
        started = time.perf_counter()
        try:
            async with self.session.post(url, json=body, timeout=self.timeout, headers=rest_headers()) as response:
                status = response.status
                payload = await response.json(content_type=None) if status == 200 else None
        except asyncio.TimeoutError:
            return None, "timeout"
        except Exception as error:  # noqa: BLE001 - any failure is one counted error
            return None, type(error).__name__
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if status != 200:
            return None, f"http_{status}"
        if not is_answer(payload):
            return None, "empty_answer"
        return elapsed_ms, None


async def run_conversations(job: Dict[str, Any]) -> Dict[str, Any]:
    """Runs many scripted conversations with a fixed number in flight at once."""
    import aiohttp

    turns: List[str] = list(job["turns"])
    concurrency = int(job["concurrency"])
    total = int(job["conversations"])
    deadline = time.monotonic() + float(job["duration_s"])
    prefix = str(job["sender_prefix"])
    latencies: List[float] = []
    errors: Counter[str] = Counter()
    error_turns: Counter[str] = Counter()
    done = 0
    next_index = 0

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(session, job["base_url"], job["channel"], float(job["timeout_s"]))

        async def worker() -> None:
            nonlocal done, next_index
            while next_index < total and time.monotonic() < deadline:
                index = next_index
                next_index += 1
                conversation = await client.start(f"{prefix}-{index}")
                if conversation is None:
                    errors["session"] += len(turns)
                    continue
                for text in turns:
                    latency, error = await client.send(conversation, text)
                    if error:
                        errors[error] += 1
                        error_turns[text] += 1
                    else:
                        latencies.append(latency or 0.0)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {
        "latencies_ms": latencies,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_turns": dict(error_turns),
        "conversations": done,
        "wall_s": wall,
    }


async def run_long(job: Dict[str, Any]) -> Dict[str, Any]:
    """Runs long conversations (the script repeated) one after another, timing each turn."""
    import aiohttp

    turns: List[str] = list(job["turns"])
    total_turns = int(job["total_turns"])
    deadline = time.monotonic() + float(job["duration_s"])
    series: List[List[Optional[float]]] = []
    errors: Counter[str] = Counter()
    error_turns: Counter[str] = Counter()
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        client = Client(session, job["base_url"], job["channel"], float(job["timeout_s"]))
        for repeat in range(int(job.get("repeats", 1))):
            if time.monotonic() >= deadline:
                break
            conversation = await client.start(f"{job['sender_prefix']}-long-{repeat}")
            if conversation is None:
                errors["session"] += 1
                continue
            latencies: List[Optional[float]] = []
            for turn in range(total_turns):
                if time.monotonic() >= deadline:
                    errors["deadline"] += 1
                    break
                text = turns[turn % len(turns)]
                latency, error = await client.send(conversation, text)
                if error:
                    errors[error] += 1
                    error_turns[text] += 1
                latencies.append(latency)
            series.append(latencies)
    wall = time.perf_counter() - started
    return {
        "series": series,
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "error_turns": dict(error_turns),
        "wall_s": wall,
    }


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Validates and runs one job; adds the CPU seconds this process used.

    Raises:
        LoadError: if the job is malformed or not aimed at loopback.
    """
    check_loopback(str(job.get("base_url", "")))
    if job.get("channel") not in ("rest", "widget"):
        raise LoadError(f"unknown channel {job.get('channel')!r}")
    if not job.get("turns"):
        raise LoadError("a job needs turns")
    runner = {"conversations": run_conversations, "long": run_long}.get(str(job.get("kind")))
    if runner is None:
        raise LoadError(f"unknown kind {job.get('kind')!r}")
    before = resource.getrusage(resource.RUSAGE_SELF)
    limit = min(HARD_LIMIT_S, float(job["duration_s"]) + float(job["timeout_s"]) * len(job["turns"]) + 30.0)
    result = asyncio.run(asyncio.wait_for(runner(job), timeout=limit))
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def main(argv: List[str]) -> int:
    """Entry point: ``python -m bench.load JOB.json OUT.json``."""
    if len(argv) != 2:
        print("usage: python -m bench.load JOB.json OUT.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        result = run_job(job)
    except LoadError as error:
        print(f"bench.load: {error}", file=sys.stderr)
        return 2
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
