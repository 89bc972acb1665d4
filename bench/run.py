"""Runs the benchmark: our assistant and a stock ``rasa init`` bot, in one run.

``python -m bench.run [--quick]`` (``make bench``). For each bot it starts the
servers, times the first correct answer, replays ``bench/scripts.yml`` at several
concurrency levels and in long conversations from a separate load process
(``bench.load``) over 127.0.0.1, records peak memory, and (for ours) times a
knowledge-file edit until it shows in an answer. The full mode also times a
training from clean for both. It writes ``bench/results/<stamp>.json``,
``bench/results/latest.md`` and two plots, and prints one PASS/FAIL/SKIP line per
target. The exit code is 0 when the benchmark ran, whatever the targets say, and
non-zero when the benchmark itself broke.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from bench import report
from bench.load import rest_headers
from bot.server.workers import workers_to_start

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
SCRIPTS_FILE = BENCH_DIR / "scripts.yml"
RESULTS_DIR = BENCH_DIR / "results"
OUR_MODEL = REPO / "models" / "assistant.tar.gz"
OUR_KNOWLEDGE = REPO / "knowledge" / "lancashire.yml"
REST_PATH = "/webhooks/rest/webhook"
WIDGET_SESSION_PATH = "/webhooks/widget/session"

START_TIMEOUT_S = 240.0
STOP_GRACE_S = 30.0
TRAIN_TIMEOUT_S = 1500.0
KNOWLEDGE_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
RSS_SAMPLE_EVERY_S = 0.5


class BenchError(Exception):
    """The benchmark itself could not run (a server did not start, a training failed...)."""


@dataclass(frozen=True)
class Plan:
    """How much load each mode sends."""

    quick: bool
    levels: Tuple[int, ...]
    conversations: Dict[int, int]
    level_duration_s: float
    long_length: int
    long_repeats: int
    report_turns: Tuple[int, ...]
    long_duration_s: float
    widget_levels: Tuple[int, ...]

    @classmethod
    def for_mode(cls, quick: bool) -> "Plan":
        """Returns the plan for quick (under 3 minutes) or full mode."""
        if quick:
            return cls(True, (1, 10), {1: 3, 10: 20}, 20.0, 50, 1, (1, 50), 40.0, (10,))
        return cls(False, (1, 10, 50), {1: 8, 10: 40, 50: 100}, 60.0, 300, 2, (1, 100, 300), 300.0, (1, 10, 50))


# ---- processes and /proc -------------------------------------------------------------------------


def free_port() -> int:
    """Returns a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _all_pids() -> List[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat_fields(pid: int) -> Optional[List[str]]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; everything after its ')' is split safely.
    return text[text.rfind(")") + 2 :].split()


def descendants(root: int) -> Set[int]:
    """Returns ``root`` and every live process below it."""
    children: Dict[int, List[int]] = {}
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    found: Set[int] = set()
    stack = [root]
    while stack and len(found) < 10_000:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return {pid for pid in found if Path(f"/proc/{pid}").exists()}


def cpu_seconds(pids: Set[int]) -> float:
    """Returns the user + system CPU seconds used so far by the given processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def memory_kb(pid: int) -> Tuple[int, int]:
    """Returns ``(VmRSS, VmHWM)`` of a process in kB (0 when it is gone)."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def listening_pid(port: int, candidates: Set[int]) -> Optional[int]:
    """Returns which of ``candidates`` listens on TCP ``port``, from /proc/net/tcp{,6}."""
    inodes: Set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    for pid in sorted(candidates):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return pid
    return None


class Server:
    """One benchmarked server process tree, started in its own session and stopped by its id."""

    def __init__(self, label: str, command: List[str], cwd: Path, env: Dict[str, str], log: Path, port: int) -> None:
        """Remembers how to start it; ``start`` launches it. ``port`` is its Rasa server's port."""
        self.label = label
        self.port = port
        self.command = command
        self.cwd = cwd
        self.env = env
        self.log_path = log
        self.process: Optional[subprocess.Popen] = None  # type: ignore[type-arg]
        self.started_at = 0.0
        self.seen: Set[int] = set()

    def start(self) -> None:
        """Launches the process and notes the time."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("w", encoding="utf-8")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def alive(self) -> bool:
        """Whether the launched process is still running."""
        return self.process is not None and self.process.poll() is None

    def pids(self) -> Set[int]:
        """Returns the live processes of the tree (and remembers them for ``stop``)."""
        if self.process is None:
            return set()
        found = descendants(self.process.pid) if self.alive() else set()
        self.seen |= found
        return found

    def log_tail(self, lines: int = 25) -> str:
        """Returns the last lines of the server's output."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        """Sends SIGTERM to the launched process, then kills what is left of its tree, by id."""
        if self.process is None:
            return
        self.pids()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_GRACE_S)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [pid for pid in self.seen if Path(f"/proc/{pid}").exists() and _is_ours(pid)]
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(2.0)
        if self.alive():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def _is_ours(pid: int) -> bool:
    """Whether a pid still belongs to a process that is not a zombie (pids can be reused)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"  # type: ignore[index]


class MemoryWatch:
    """Samples the memory of a server's roles (Rasa, actions) in a background thread."""

    def __init__(self, server: Server) -> None:
        """Creates the watcher; call ``assign`` once the ports answer, then ``start``."""
        self.server = server
        self.roles: Dict[str, int] = {}
        self.peak_rss_kb: Dict[str, int] = {}
        self.hwm_kb: Dict[int, int] = {}
        self.role_pids: Dict[str, Set[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def assign(self, ports: Dict[str, int]) -> None:
        """Finds which process listens on each role's port."""
        pids = self.server.pids()
        for role, port in ports.items():
            pid = listening_pid(port, pids)
            if pid is not None:
                self.roles[role] = pid

    def start(self) -> None:
        """Starts sampling."""
        self._thread.start()

    def _split(self) -> Dict[str, Set[int]]:
        everything = self.server.pids()
        trees = {role: descendants(pid) for role, pid in self.roles.items()}
        split: Dict[str, Set[int]] = {}
        if "actions" in trees:
            split["actions"] = trees["actions"]
        rasa = trees.get("rasa", everything) - split.get("actions", set())
        split["rasa"] = rasa
        split["launcher"] = everything - rasa - split.get("actions", set())
        return split

    def sample(self) -> None:
        """Takes one sample."""
        split = self._split()
        for role, pids in split.items():
            self.role_pids.setdefault(role, set()).update(pids)
            total = 0
            for pid in pids:
                rss, hwm = memory_kb(pid)
                total += rss
                if hwm:
                    self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), hwm)
            self.peak_rss_kb[role] = max(self.peak_rss_kb.get(role, 0), total)

    def _loop(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_EVERY_S):
            with contextlib.suppress(Exception):
                self.sample()

    def finish(self) -> Dict[str, Optional[float]]:
        """Stops sampling; returns each role's peak in MB (sum of VmHWM, or the sampled peak)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        with contextlib.suppress(Exception):
            self.sample()
        out: Dict[str, Optional[float]] = {}
        for role, pids in self.role_pids.items():
            hwm = sum(self.hwm_kb.get(pid, 0) for pid in pids)
            best = max(hwm, self.peak_rss_kb.get(role, 0))
            out[role] = round(best / 1024.0, 1) if best else None
            out[f"{role}_sampled_peak"] = round(self.peak_rss_kb.get(role, 0) / 1024.0, 1)
        return out


# ---- HTTP probes (the load itself is in bench.load) -----------------------------------------------


def post_json(url: str, body: Dict[str, Any], timeout: float = 10.0) -> Tuple[int, Any]:
    """POSTs JSON to a loopback URL; returns (status, parsed body or None)."""
    import requests

    response = requests.post(url, json=body, timeout=timeout, headers=rest_headers())
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return response.status_code, payload


def answer_texts(payload: Any) -> List[str]:
    """Returns the texts of a channel's reply (a list of messages)."""
    if not isinstance(payload, list):
        return []
    return [str(item.get("text")) for item in payload if isinstance(item, dict) and item.get("text")]


def wait_for_answer(server: Server, base_url: str, text: str, timeout: float) -> float:
    """Polls the REST channel until ``text`` gets a non-empty answer.

    Returns:
        Seconds from the server's launch to that answer.

    Raises:
        BenchError: if the server dies or does not answer in time.
    """
    import requests

    deadline = time.monotonic() + timeout
    attempt = 0
    while time.monotonic() < deadline and attempt < 10_000:
        attempt += 1
        if not server.alive():
            raise BenchError(f"{server.label} stopped while starting:\n{server.log_tail()}")
        try:
            status, payload = post_json(
                base_url + REST_PATH, {"sender": f"bench-cold-{attempt}", "message": text}, 10.0
            )
            if status == 200 and answer_texts(payload):
                return time.monotonic() - server.started_at
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise BenchError(f"{server.label} gave no answer within {timeout:.0f} s:\n{server.log_tail()}")


# ---- the load process ---------------------------------------------------------------------------


def run_load(job: Dict[str, Any], workdir: Path, nice_load: bool) -> Dict[str, Any]:
    """Runs one load job in a separate process and returns its result.

    Raises:
        BenchError: if the load process fails.
    """
    name = uuid.uuid4().hex[:8]
    job_path, out_path = workdir / f"job-{name}.json", workdir / f"out-{name}.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    command = [sys.executable, "-m", "bench.load", str(job_path), str(out_path)]
    if nice_load:
        command = ["nice", "-n", "5", *command]
    limit = float(job["duration_s"]) + REQUEST_TIMEOUT_S * len(job["turns"]) + 120.0
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"load process did not finish within {limit:.0f} s") from error
    if done.returncode != 0 or not out_path.exists():
        raise BenchError(f"load process failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return dict(json.loads(out_path.read_text(encoding="utf-8")))


# ---- knowledge edit ---------------------------------------------------------------------------------

_ANSWER_LINE = re.compile(r"^(\s*)(-\s+)?answer:\s*(.*?)\s*$")
_BLOCK_INDICATORS = {"", "|", ">", "|-", ">-", "|+", ">+"}


def mark_answer(text: str, topic: str, marker: str) -> str:
    """Appends ``marker`` to the first answer line of a topic in the knowledge YAML text.

    The topic is found as a mapping key (``topic:``) or an id (``id: topic``); its
    first ``answer:`` line is changed if it holds the text, otherwise the first line
    below it (a list item or a block scalar's first line). Quotes are kept.

    Args:
        text: the knowledge file's text.
        topic: the topic's key, e.g. ``children_count``.
        marker: the text to append.

    Returns:
        The new text.

    Raises:
        ValueError: if the topic or its answer line is not found.
    """
    lines = text.splitlines(keepends=True)
    key = re.compile(rf"^\s*(-\s+)?({re.escape(topic)}:|id:\s*['\"]?{re.escape(topic)}['\"]?)\s*(#.*)?$")
    start = next((index for index, line in enumerate(lines) if key.match(line.rstrip("\n"))), None)
    if start is None:
        raise ValueError(f"topic {topic!r} not found")
    answer_at = next((index for index in range(start + 1, len(lines)) if _ANSWER_LINE.match(lines[index])), None)
    if answer_at is None:
        raise ValueError(f"no answer line under topic {topic!r}")
    match = _ANSWER_LINE.match(lines[answer_at])
    assert match is not None
    target = answer_at
    if match.group(3) in _BLOCK_INDICATORS:
        target = next(
            (i for i in range(answer_at + 1, len(lines)) if lines[i].strip() and not lines[i].lstrip().startswith("#")),
            -1,
        )
        if target < 0:
            raise ValueError(f"the answer of topic {topic!r} is empty")
    line = lines[target]
    ending = line[len(line.rstrip("\r\n")) :]
    body = line.rstrip("\r\n").rstrip()
    if body and body[-1] in "\"'" and re.search(r"(:\s*|-\s+)" + re.escape(body[-1]), body):
        body = f"{body[:-1]} {marker}{body[-1]}"
    else:
        body = f"{body} {marker}"
    lines[target] = body + ending
    return "".join(lines)


def _contains(data: Any, marker: str) -> bool:
    if isinstance(data, str):
        return marker in data
    if isinstance(data, dict):
        return any(_contains(value, marker) for value in data.values())
    if isinstance(data, list):
        return any(_contains(value, marker) for value in data)
    return False


def time_knowledge_edit(base_url: str, path: Path, topic: str, question: str) -> Tuple[Optional[float], str]:
    """Edits one answer line in the knowledge file in use and times until an answer shows it.

    Returns:
        ``(seconds or None, note)``.
    """
    import requests
    import yaml

    before_status, before = post_json(
        base_url + REST_PATH, {"sender": f"bench-kb-{uuid.uuid4().hex}", "message": question}
    )
    if before_status != 200 or not answer_texts(before):
        return None, f"no answer to {question!r} before the edit (HTTP {before_status})"
    marker = f"Marker{uuid.uuid4().hex[:6]}."
    original = path.read_text(encoding="utf-8")
    try:
        changed = mark_answer(original, topic, marker)
    except ValueError as error:
        return None, f"could not edit the knowledge file: {error}"
    if not _contains(yaml.safe_load(changed), marker):
        return None, "the edit did not reach an answer in the YAML"
    with path.open("w", encoding="utf-8") as handle:  # in place, as an editor saving the file
        handle.write(changed)
    edited_at = time.monotonic()
    deadline = edited_at + KNOWLEDGE_TIMEOUT_S
    attempt = 0
    while time.monotonic() < deadline and attempt < 1_000:
        attempt += 1
        try:
            status, payload = post_json(
                base_url + REST_PATH, {"sender": f"bench-kb-{attempt}-{marker}", "message": question}
            )
        except requests.RequestException:
            status, payload = 0, None
        if status == 200 and any(marker in text for text in answer_texts(payload)):
            seconds = time.monotonic() - edited_at
            return seconds, f"{seconds:.2f} s ({attempt} polls)"
        time.sleep(0.1)
    return None, f"the edit did not show within {KNOWLEDGE_TIMEOUT_S:.0f} s"


# ---- one bot -------------------------------------------------------------------------------------------


@dataclass
class Bot:
    """What differs between our assistant and the baseline."""

    name: str
    command: List[str]
    cwd: Path
    env: Dict[str, str]
    port: int
    action_port: Optional[int]
    turns: List[str]
    probe: str
    long_turns: List[str] = field(default_factory=list)
    knowledge_file: Optional[Path] = None
    training_s: Optional[float] = None
    training_note: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def measure_bot(
    bot: Bot, plan: Plan, workdir: Path, scripts: Dict[str, Any], options: argparse.Namespace
) -> Dict[str, Any]:
    """Starts one bot, measures everything, stops it, and returns its BOT result."""
    base_url = f"http://127.0.0.1:{bot.port}"
    server = Server(bot.name, bot.command, bot.cwd, bot.env, workdir / f"{bot.name}-server.log", bot.port)
    run_id = uuid.uuid4().hex[:6]
    result: Dict[str, Any] = {
        "available": True,
        "note": "",
        "training_s": bot.training_s,
        "training_note": bot.training_note,
        "levels": {},
        "turn_window": len(bot.long_turns or bot.turns),
    }
    watch = MemoryWatch(server)
    print(f"[{bot.name}] starting: {' '.join(bot.command)}", flush=True)
    server.start()
    try:
        result["cold_start_s"] = wait_for_answer(server, base_url, bot.probe, START_TIMEOUT_S)
        print(f"[{bot.name}] first correct answer after {result['cold_start_s']:.1f} s", flush=True)
        ports = {"rasa": bot.port}
        if bot.action_port:
            ports["actions"] = bot.action_port
        watch.assign(ports)
        watch.start()
        base_job = {"channel": "rest", "base_url": base_url, "turns": bot.turns, "timeout_s": REQUEST_TIMEOUT_S}
        warm = run_load(
            {
                **base_job,
                "kind": "conversations",
                "concurrency": 1,
                "conversations": 1,
                "duration_s": 30.0,
                "sender_prefix": f"bench-{bot.name}-warm-{run_id}",
            },
            workdir,
            options.nice_load,
        )
        if warm["errors"]:
            bot.notes.append(f"{bot.name}: warm-up conversation had {warm['errors']} errors {warm['error_kinds']}")
        for level in plan.levels:
            result["levels"][str(level)] = run_level(
                server, base_job, level, plan, f"bench-{bot.name}-c{level}-{run_id}", workdir, options, bot.name
            )
        long_job = {
            **base_job,
            "turns": bot.long_turns or bot.turns,
            "kind": "long",
            "total_turns": plan.long_length,
            "repeats": plan.long_repeats,
            "duration_s": plan.long_duration_s,
            "sender_prefix": f"bench-{bot.name}-{run_id}",
        }
        long = run_load(long_job, workdir, options.nice_load)
        result["turn_series"] = long["series"]
        result["turns"] = report.p50_at_turns(long["series"], plan.report_turns, result["turn_window"])
        result["long_errors"] = long["errors"]
        result["long_error_turns"] = long.get("error_turns", {})
        print(
            f"[{bot.name}] long conversation p50 by turn: {_fmt(result['turns'])} ms; "
            f"errors {long['errors']} {result['long_error_turns'] or ''}",
            flush=True,
        )
        if bot.name == "ours":
            result["widget"] = measure_widget(server, base_url, bot, plan, workdir, options, run_id)
            if bot.knowledge_file is not None:
                knowledge = scripts.get("knowledge", {})
                seconds, note = time_knowledge_edit(
                    base_url, bot.knowledge_file, knowledge["topic"], knowledge["question"]
                )
                result["knowledge_live_s"], result["knowledge_note"] = seconds, note
                print(f"[{bot.name}] knowledge edit to live: {note}", flush=True)
        if not server.alive():
            raise BenchError(f"{bot.name} stopped during the run:\n{server.log_tail()}")
    finally:
        result["rss_mb"] = watch.finish()
        server.stop()
    peaks = {role: value for role, value in result["rss_mb"].items() if value and not role.endswith("_sampled_peak")}
    print(f"[{bot.name}] peak RSS MB: {peaks}", flush=True)
    return result


def _fmt(turns: Dict[str, Optional[float]]) -> str:
    return ", ".join(
        f"turn {key}: {value:.0f}" if value is not None else f"turn {key}: n/a" for key, value in turns.items()
    )


def run_level(
    server: Server,
    base_job: Dict[str, Any],
    level: int,
    plan: Plan,
    prefix: str,
    workdir: Path,
    options: argparse.Namespace,
    label: str,
) -> Dict[str, Any]:
    """Runs one concurrency level and returns its LEVEL figures."""
    job = {
        **base_job,
        "kind": "conversations",
        "concurrency": level,
        "conversations": plan.conversations.get(level, level),
        "duration_s": plan.level_duration_s,
        "sender_prefix": prefix,
    }
    pids = server.pids()
    cpu_before = cpu_seconds(pids)
    profiler = start_profiler(server, label, level, workdir, options)
    out = run_load(job, workdir, options.nice_load)
    finish_profiler(profiler, label, level)
    cpu_used = cpu_seconds(server.pids() | pids) - cpu_before
    stats = report.level_stats(
        level,
        int(out["conversations"]),
        out["latencies_ms"],
        int(out["errors"]),
        float(out["wall_s"]),
        round(cpu_used, 2),
        round(float(out["cpu_s"]), 2),
    )
    stats["error_kinds"] = out["error_kinds"]
    stats["error_turns"] = out.get("error_turns", {})
    print(
        f"[{label}] {job['channel']} c={level}: {stats['messages']} msgs in {stats['wall_s']:.1f} s = "
        f"{stats['throughput']:.1f} msgs/s, p50 {_ms(stats['p50'])}, p95 {_ms(stats['p95'])}, "
        f"p99 {_ms(stats['p99'])}, errors {stats['errors']} {out['error_kinds'] or ''} {stats['error_turns'] or ''}",
        flush=True,
    )
    return stats


def _ms(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def measure_widget(
    server: Server, base_url: str, bot: Bot, plan: Plan, workdir: Path, options: argparse.Namespace, run_id: str
) -> Dict[str, Any]:
    """Probes the widget channel and, when it answers, runs the same load through it."""
    import requests

    try:
        status, payload = post_json(base_url + WIDGET_SESSION_PATH, {})
    except requests.RequestException as error:
        return {"available": False, "note": f"{WIDGET_SESSION_PATH} failed: {type(error).__name__}"}
    if not 200 <= status < 300 or not isinstance(payload, dict) or not payload.get("token"):
        note = f"POST {WIDGET_SESSION_PATH} answered HTTP {status}"
        print(f"[{bot.name}] widget channel not available: {note}", flush=True)
        return {"available": False, "note": note}
    base_job = {"channel": "widget", "base_url": base_url, "turns": bot.turns, "timeout_s": REQUEST_TIMEOUT_S}
    levels = {
        str(level): run_level(
            server, base_job, level, plan, f"bench-widget-c{level}-{run_id}", workdir, options, f"{bot.name}/widget"
        )
        for level in plan.widget_levels
    }
    return {"available": True, "note": "", "levels": levels}


# ---- py-spy (optional) -------------------------------------------------------------------------------


def start_profiler(
    server: Server, label: str, level: int, workdir: Path, options: argparse.Namespace
) -> Optional[Tuple[subprocess.Popen, Path]]:  # type: ignore[type-arg]
    """With ``--profile``, records the Rasa server with py-spy during the 10-conversation level."""
    spy = Path(sys.executable).parent / "py-spy"
    if not options.profile or level != 10 or "/" in label:
        return None
    if not spy.exists():
        print(f"[{label}] --profile: no py-spy in {spy.parent} (pip install py-spy)", flush=True)
        return None
    pids = server.pids()
    target = listening_pid(server.port, pids) if pids else None
    if target is None:
        return None
    out = Path(options.results_dir) / f"profile-{label}-c{level}.txt"
    process = subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(target),
            "--format",
            "raw",
            "--rate",
            "200",
            "--duration",
            "600",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / f"py-spy-{label}.log").open("w"),
    )
    return process, out


def finish_profiler(profiler: Optional[Tuple[subprocess.Popen, Path]], label: str, level: int) -> None:  # type: ignore[type-arg]
    """Stops py-spy (SIGINT makes it write its output) and prints the hottest frames."""
    if profiler is None:
        return
    process, out = profiler
    process.send_signal(signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(30)
    if process.poll() is None:
        process.kill()
    if out.exists():
        print(f"[{label}] py-spy profile at c={level}: {out}", flush=True)
        for line in summarise_profile(out.read_text(encoding="utf-8", errors="replace")):
            print(f"[{label}]   {line}", flush=True)


def summarise_profile(raw: str, top: int = 12) -> List[str]:
    """Summarises py-spy's raw output: the frames with most self time, then the busiest call paths.

    Frames on almost every stack (the event loop, above 80 %) and rare ones (below 3 %) are left
    out of the second list, which leaves the work done per message.
    """
    own: Dict[str, int] = {}
    inclusive: Dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack:
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + samples
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    if not total:
        return ["(no samples)"]

    def share(count: int) -> float:
        return 100.0 * count / total

    lines = [f"{total} samples; self time:"]
    lines += [f"{share(n):5.1f}%  {frame}" for frame, n in sorted(own.items(), key=lambda item: -item[1])[:top]]
    lines.append("inclusive (3-80 %):")
    busy = [(frame, n) for frame, n in sorted(inclusive.items(), key=lambda item: -item[1]) if 3 <= share(n) <= 80]
    lines += [f"{share(n):5.1f}%  {frame}" for frame, n in busy[: top * 2]]
    return lines


# ---- preparing the bots ---------------------------------------------------------------------------


def base_env() -> Dict[str, str]:
    """The environment every command of the benchmark runs with.

    The load is one client sending far faster than a person, so the rate limits are off; our REST
    channel needs its bearer token, which the load process (and ``post_json``) read from
    ``REST_TOKEN`` in this process's environment.
    """
    os.environ.setdefault("REST_TOKEN", secrets.token_urlsafe(32))
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "PYTHONUNBUFFERED": "1",
            "RATE_LIMIT_CLIENT_PER_MINUTE": "0",
            "RATE_LIMIT_CONVERSATION_PER_MINUTE": "0",
        }
    )
    return env


def rasa_bin() -> str:
    """The ``rasa`` of this interpreter's virtual environment."""
    return str(Path(sys.executable).parent / "rasa")


def rasa_version() -> str:
    """The installed Rasa version."""
    from importlib.metadata import version

    return version("rasa")


def timed(command: Sequence[str], cwd: Path, env: Dict[str, str], log: Path, timeout: float) -> float:
    """Runs a command to completion and returns its wall-clock seconds.

    Raises:
        BenchError: if it fails or times out.
    """
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as handle:
        try:
            done = subprocess.run(
                list(command),
                cwd=cwd,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise BenchError(f"{' '.join(command)} took more than {timeout:.0f} s") from error
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
    return time.monotonic() - started


def baseline_cache() -> Path:
    """Where the ``rasa init`` project and its model are kept between runs (outside the repo)."""
    return Path(tempfile.gettempdir()) / "lancs-bench-cache" / f"rasa-init-{rasa_version()}"


def ensure_baseline_project(workdir: Path) -> Path:
    """Returns a trained ``rasa init`` project, creating it with ``rasa init --no-prompt`` if needed."""
    cache = baseline_cache()
    if list((cache / "models").glob("*.tar.gz")):
        return cache
    fresh = workdir / "rasa-init"
    fresh.mkdir(parents=True)
    print(f"[baseline] rasa init --no-prompt --init-dir {fresh} (creates and trains the stock bot)", flush=True)
    seconds = timed(
        [rasa_bin(), "init", "--no-prompt", "--init-dir", str(fresh)],
        fresh,
        base_env(),
        workdir / "baseline-init.log",
        TRAIN_TIMEOUT_S,
    )
    print(f"[baseline] rasa init took {seconds:.1f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    if cache.exists():
        shutil.rmtree(cache)
    shutil.copytree(fresh, cache, ignore=shutil.ignore_patterns(".rasa"))
    return cache


def needs_action_server(project: Path) -> bool:
    """Whether a project's endpoints.yml sets an action endpoint."""
    import yaml

    with contextlib.suppress(OSError, yaml.YAMLError):
        data = yaml.safe_load((project / "endpoints.yml").read_text(encoding="utf-8")) or {}
        return bool(data.get("action_endpoint"))
    return False


def prepare_baseline(plan: Plan, workdir: Path, scripts: Dict[str, Any]) -> Bot:
    """Creates (or reuses) the stock bot; in full mode, trains it from clean and times that."""
    project = ensure_baseline_project(workdir)
    env = base_env()
    training_s: Optional[float] = None
    note: Optional[str] = "skipped in quick mode" if plan.quick else None
    model = sorted((project / "models").glob("*.tar.gz"))[-1]
    if not plan.quick:
        copy = workdir / "baseline"
        shutil.copytree(project, copy, ignore=shutil.ignore_patterns("models", ".rasa", "results"))
        out = workdir / "baseline-models"
        train_env = {**env, "RASA_CACHE_DIRECTORY": str(workdir / "baseline-train-cache")}
        print("[baseline] timing `rasa train` from clean", flush=True)
        training_s = timed(
            [rasa_bin(), "train", "--out", str(out), "--fixed-model-name", "baseline"],
            copy,
            train_env,
            workdir / "baseline-train.log",
            TRAIN_TIMEOUT_S,
        )
        print(f"[baseline] training took {training_s:.1f} s", flush=True)
        project, model = copy, out / "baseline.tar.gz"
    if needs_action_server(project):
        # The stock `rasa init` bot of Rasa 3.6 has its action endpoint commented out; if a
        # later scaffold sets it, this benchmark would have to start `rasa run actions` too.
        raise BenchError(f"{project / 'endpoints.yml'} sets an action endpoint; the benchmark does not start one")
    port = free_port()
    command = [rasa_bin(), "run", "--model", str(model), "--port", str(port), "--interface", "127.0.0.1"]
    return Bot(
        "baseline",
        command,
        project,
        env,
        port,
        None,
        list(scripts["baseline"]["turns"]),
        str(scripts["baseline"]["probe"]),
        long_turns=list(scripts["baseline"].get("long_turns") or []),
        training_s=training_s,
        training_note=note,
    )


def prepare_ours(plan: Plan, workdir: Path, scripts: Dict[str, Any]) -> Bot:
    """Checks our assistant can run; in full mode, trains it from clean into a temp folder and times that.

    Raises:
        BenchError: if ``bot/server/serve.py`` or the trained model is missing.
    """
    if not (REPO / "bot" / "server" / "serve.py").exists():
        raise BenchError("bot/server/serve.py does not exist yet")
    env = base_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    model = OUR_MODEL
    training_s: Optional[float] = None
    note: Optional[str] = "skipped in quick mode" if plan.quick else None
    if not plan.quick:
        out = workdir / "ours-models"
        train_env = {**env, "RASA_CACHE_DIRECTORY": str(workdir / "ours-train-cache")}
        print("[ours] timing `rasa train` from clean (into a temp folder; models/ is not touched)", flush=True)
        training_s = timed(
            [
                rasa_bin(),
                "train",
                "--config",
                "config.yml",
                "--domain",
                "domain.yml",
                "--data",
                "data",
                "--out",
                str(out),
                "--fixed-model-name",
                "assistant",
            ],
            REPO,
            train_env,
            workdir / "ours-train.log",
            TRAIN_TIMEOUT_S,
        )
        print(f"[ours] training took {training_s:.1f} s", flush=True)
        model = out / "assistant.tar.gz"
    if not model.exists():
        raise BenchError(f"no trained model at {model}: run `make train` first")
    if plan.quick:  # a copy, so that a `make train` meanwhile cannot swap it mid-run
        model = Path(shutil.copy2(model, workdir / "assistant.tar.gz"))
    knowledge = workdir / "knowledge.yml"
    shutil.copyfile(OUR_KNOWLEDGE, knowledge)
    port, action_port = free_port(), free_port()
    env.update(
        {
            "PORT": str(port),
            "ACTION_PORT": str(action_port),
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{action_port}/webhook",
            "TRACKER_DB_URL": f"sqlite:///{workdir / 'tracker.db'}",
            "KNOWLEDGE_FILE": str(knowledge),
            "WIDGET_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        }
    )
    command = [sys.executable, "-m", "bot.server.serve", "--model", str(model)]
    return Bot(
        "ours",
        command,
        REPO,
        env,
        port,
        action_port,
        list(scripts["ours"]["turns"]),
        str(scripts["ours"]["probe"]),
        long_turns=list(scripts["ours"].get("long_turns") or []),
        knowledge_file=knowledge,
        training_s=training_s,
        training_note=note,
    )


# ---- the run ---------------------------------------------------------------------------------------


def machine_facts() -> Dict[str, Any]:
    """Date, CPU count (as ``nproc``), CPU model, versions and load average."""
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "rasa_version": rasa_version(),
        "python": platform.python_version(),
        "loadavg": " ".join(f"{value:.2f}" for value in os.getloadavg()),
    }


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turns SIGTERM into SystemExit so that every started server is stopped on the way out."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="under 3 minutes: no training, fewer levels and turns")
    parser.add_argument("--only", choices=("both", "ours", "baseline"), default="both")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--nice-load", action="store_true", help="run the load process under `nice -n 5`")
    parser.add_argument("--profile", action="store_true", help="record the Rasa server with py-spy at 10 concurrent")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp folder (logs, trackers, models)")
    return parser.parse_args(list(argv))


def main(argv: Sequence[str]) -> int:
    """Runs the benchmark; returns 0 when it ran (whatever the targets say), 2 when it broke."""
    import yaml

    args = parse_args(argv)
    plan = Plan.for_mode(args.quick)
    scripts = yaml.safe_load(SCRIPTS_FILE.read_text(encoding="utf-8"))
    started = time.monotonic()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir = Path(tempfile.mkdtemp(prefix="lancs-bench-"))
    meta = machine_facts()
    meta.update({"quick": plan.quick, "notes": [], "workdir": str(workdir) if args.keep_tmp else None})
    if meta["loadavg"].split()[0] and float(meta["loadavg"].split()[0]) > 0.5:
        meta["notes"].append(
            f"the machine was not idle at the start (load average {meta['loadavg']}): "
            "other work shares the CPUs, so figures are noisier"
        )
    ours_processes = workers_to_start(os.environ)
    meta["ours_server_processes"] = ours_processes
    meta["notes"].append(
        "the baseline runs as shipped by `rasa init` and served by `rasa run`: in-memory tracker and "
        "lock stores, so one server process (Rasa allows no more with in-memory locks), default "
        f"pipeline and policies; ours runs as `make run` starts it: {ours_processes} Rasa server "
        "process(es) (SANIC_WORKERS, one per CPU by default) sharing trackers and conversation locks "
        "in SQLite, and its action server"
    )
    if args.nice_load:
        meta["notes"].append("the load process ran under `nice -n 5`")
    result: Dict[str, Any] = {"meta": meta, "bots": {}}
    broken: List[str] = []
    print(
        f"bench: {'quick' if plan.quick else 'full'} mode, {meta['nproc']} CPUs ({meta['cpu_model']}), "
        f"load average {meta['loadavg']}, temp folder {workdir}",
        flush=True,
    )
    with sigterm_as_exit():
        try:
            for name, prepare in (("baseline", prepare_baseline), ("ours", prepare_ours)):
                if args.only not in ("both", name):
                    result["bots"][name] = {"available": False, "note": f"not run (--only {args.only})"}
                    continue
                try:
                    bot = prepare(plan, workdir, scripts)
                    result["bots"][name] = measure_bot(bot, plan, workdir, scripts, args)
                    meta["notes"].extend(bot.notes)
                except BenchError as error:
                    print(f"[{name}] BROKEN: {error}", file=sys.stderr, flush=True)
                    broken.append(name)
                    result["bots"][name] = {"available": False, "note": str(error).splitlines()[0]}
        finally:
            if not args.keep_tmp:
                shutil.rmtree(workdir, ignore_errors=True)
    meta["duration_s"] = round(time.monotonic() - started, 1)
    paths = report.write_report(result, args.results_dir, stamp)
    print(f"\nbench: finished in {meta['duration_s']:.0f} s; wrote {paths['json']} and {paths['markdown']}")
    for line in report.target_lines(report.evaluate_targets(result)):
        print(line)
    if broken:
        print(f"bench: BROKEN for {', '.join(broken)} (see above)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
