"""Starts the action server and the Rasa server, keeps them running, and stops them in order.

``make run`` calls ``python -m bot.server.serve``; ``make shell`` calls it with ``--shell``
(the staff command-line shell instead of the HTTP server). It:

- fills in the settings that have defaults (ports, the SQLite tracker store, the
  widget's signing secret, the REST channel's and the action server's tokens) so that
  ``endpoints.yml`` and ``credentials.yml`` resolve;
- makes sure the database has this release's tables: a local SQLite file is migrated here; a
  shared database (PostgreSQL) must have been migrated with ``make migrate``, or nothing starts;
- runs one Rasa server process per CPU (``SANIC_WORKERS``, at most 4 by default), sharing
  their conversation locks in the tracker database (bot/storage/lock_store.py), and refuses
  a setting that cannot work;
- starts the action server (``bot/server/action_server.py``: on ``ACTION_HOST``, 127.0.0.1 by
  default, every call authenticated) and ``rasa run`` (or ``rasa shell``) with every channel in
  ``credentials.yml``, and prints where to reach them once ``/ready`` says they can answer;
- **heals**: once running, a server that stops is started again after a pause that doubles
  with each crash (1 s up to 30 s; back to 1 s after a minute of running), and says so. While
  the action server is down, messages get an apology and the helplines with HTTP 503 (see
  bot/server/turns.py), never an empty reply;
- **drains** on Ctrl-C or SIGTERM: the Rasa server stops taking messages and finishes those it
  has (up to 20 s), and only then is the action server stopped;
- **takes its servers with it**: each asks the kernel to be stopped when this process dies,
  even by ``kill -9`` (bot/server/orphans.py), so no orphan keeps holding a port.
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Deque, Dict, List, Optional

from bot.server import orphans
from bot.server.workers import MEMORY, SQL, LockStoreSettingsError, lock_backend
from bot.server.workers import workers, workers_to_start

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"
MODEL = ROOT / "models" / "assistant.tar.gz"
# The Rasa server finishes the messages it has for up to 20 s (bot/server/patches.py); then a margin.
STOP_GRACE_SECONDS = 25.0
LOCK_PLACES = {MEMORY: "memory", SQL: "the tracker database"}
START_TIMEOUT_SECONDS = 180.0
# Restarts: the first pause, its cap, and how long a server must run for the pause to reset.
RESTART_FIRST_PAUSE_S = 1.0
RESTART_MAX_PAUSE_S = 30.0
HEALTHY_AFTER_S = 60.0


def settings(environ: Dict[str, str], shell: bool = False) -> Dict[str, str]:
    """Returns the environment for both servers, with every default filled in.

    Args:
        environ: the environment this process was started with.
        shell: for the command-line shell, which always runs as one process (each Rasa server
            process would read the terminal).

    Returns:
        A new environment. The caller's values always win over the defaults.
    """
    env = dict(environ)
    env.setdefault("PORT", "5005")
    env.setdefault("ACTION_PORT", "5055")
    env.setdefault("ACTION_ENDPOINT_URL", f"http://127.0.0.1:{env['ACTION_PORT']}/webhook")
    env.setdefault("TRACKER_DB_URL", f"sqlite:///{VAR / 'tracker.db'}")
    env.setdefault("FEEDBACK_DB", str(VAR / "feedback.db"))
    env.setdefault("KNOWLEDGE_FILE", str(ROOT / "knowledge" / "lancashire.yml"))
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    if shell:
        env["SANIC_WORKERS"] = "1"
        # Staff read answers in the terminal: only warnings and errors, no library deprecation notes.
        env.setdefault("LOG_LEVEL", "WARNING")
        env.setdefault("PYTHONWARNINGS", "ignore")
    else:
        env["SANIC_WORKERS"] = workers_to_start(env)
    for name, filename in LOCAL_SECRETS.items():
        if not env.get(name):
            env[name] = local_secret(VAR / filename)
    return env


# Secrets `make run` makes once in var/ (mode 600) when the environment does not set them.
LOCAL_SECRETS = {"WIDGET_SECRET": "widget_secret", "REST_TOKEN": "rest_token", "ACTION_TOKEN": "action_token"}


def local_secret(path: Path) -> str:
    """Returns a secret for local runs, creating it (mode 600) on first use.

    A deployment sets ``WIDGET_SECRET``, ``REST_TOKEN`` and ``ACTION_TOKEN`` itself, the same on
    every replica.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def prepare_database(env: Dict[str, str]) -> Optional[str]:
    """Migrates a local SQLite file; checks that a shared database was migrated.

    Returns:
        None when the database is ready, else what is wrong and what to run.
    """
    from bot.storage.migrate import SchemaNotCurrentError, ensure_schema

    for url in [env["TRACKER_DB_URL"]]:
        try:
            ensure_schema(url)
        except SchemaNotCurrentError as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - reported, and nothing starts
            return f"could not prepare the database: {type(error).__name__}: {error}"
    return None


class Child:
    """A server process whose output is passed through with a prefix, keeping its last lines."""

    def __init__(self, label: str, command: List[str], env: Dict[str, str], interactive: bool = False) -> None:
        """Remembers how to start the process; ``start`` starts it.

        Args:
            label: a short name shown before each line of its output.
            command: the command line.
            env: its environment.
            interactive: leave stdin/stdout to the terminal (the shell).
        """
        self.label = label
        self.command = command
        self.env = env
        self.interactive = interactive
        self.tail: Deque[str] = collections.deque(maxlen=15)
        self.process: Optional["subprocess.Popen[str]"] = None
        self.started_at = 0.0
        self.restarts = 0
        self.pause = RESTART_FIRST_PAUSE_S
        self.restart_at: Optional[float] = None

    def start(self) -> None:
        """Starts the process; it is stopped by the kernel if this supervisor dies."""
        supervisor = os.getpid()
        orphans.load()

        def die_with_supervisor() -> None:
            # SIGKILL: a supervisor that is gone without draining them has crashed; its servers
            # could not even print any more (their output went to it).
            orphans.die_with_parent(signal.SIGKILL, parent=supervisor)

        self.started_at = time.monotonic()
        self.restart_at = None
        if self.interactive:
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=ROOT, text=True, preexec_fn=die_with_supervisor
            )
            return
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
            preexec_fn=die_with_supervisor,
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()

    def _pump(self, process: "subprocess.Popen[str]") -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.tail.append(line.rstrip())
            sys.stdout.write(f"[{self.label}] {line}")
            sys.stdout.flush()

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Asks the process to stop (it finishes what it is doing), and kills it after ``grace`` s."""
        if self.process is None or not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def why_it_stopped(self) -> str:
        """Describes the exit status and the last lines of output."""
        code = self.process.returncode if self.process is not None else None
        status = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        lines = "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
        return f"The {self.label} server {status}. Its last lines:\n{lines}"

    def look_after(self, now: float) -> Optional[str]:
        """Restarts the process if it stopped, after its pause. Returns what to tell the operator."""
        if self.alive():
            if now - self.started_at > HEALTHY_AFTER_S:
                self.pause = RESTART_FIRST_PAUSE_S
            return None
        if self.restart_at is None:
            self.restart_at = now + self.pause
            message = f"{self.why_it_stopped()}\nStarting it again in {self.pause:.0f} s."
            self.pause = min(self.pause * 2, RESTART_MAX_PAUSE_S)
            return message
        if now >= self.restart_at:
            self.restarts += 1
            self.start()
            return f"The {self.label} server was started again (restart {self.restarts})."
        return None


def answers(url: str) -> bool:
    """Whether an HTTP GET on ``url`` returns 200."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(
    children: List[Child], urls: List[str], timeout: float, stopping: threading.Event
) -> Optional[Child]:
    """Waits for every URL to answer. Returns the child that died meanwhile, if any."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline and not stopping.is_set():
        for child in children:
            if not child.alive():
                return child
        pending = [url for url in pending if not answers(url)]
        if pending:
            stopping.wait(0.5)
    if pending and not stopping.is_set():
        raise TimeoutError(f"no answer from {', '.join(pending)} after {timeout:.0f} s")
    return None


def banner(env: Dict[str, str]) -> str:
    """The lines printed once both servers answer."""
    base = f"http://localhost:{env['PORT']}"
    processes = workers(env)
    return "\n".join(
        [
            "",
            "The assistant is running. Press Ctrl-C to stop it.",
            f"  Rasa server:       {processes} process(es), conversation locks in {LOCK_PLACES[lock_backend(env)]}",
            f"  REST channel:      POST {base}/webhooks/rest/webhook",
            f"  socket.io channel: {base}/socket.io/",
            f"  Widget demo page:  {base}/webhooks/widget/demo",
            f"  Widget script:     {base}/webhooks/widget/widget.js",
            f"  Ready check:       {base}/ready",
            f"  Action server:     http://localhost:{env['ACTION_PORT']}/health",
            "",
        ]
    )


def action_server_command(env: Dict[str, str]) -> List[str]:
    """The action server's command line (bot/server/action_server.py: ACTION_HOST, every call authenticated)."""
    return [sys.executable, "-m", "bot.server.action_server", "--port", env["ACTION_PORT"]]


def action_health_url(env: Dict[str, str]) -> str:
    """Where the action server says it is alive."""
    return f"http://{env.get('ACTION_HOST') or '127.0.0.1'}:{env['ACTION_PORT']}/health"


def rasa_command(env: Dict[str, str], model: Path, shell: bool = False) -> List[str]:
    """The Rasa server's command line, with this project's fixes applied (bot/server/patches.py)."""
    common = ["--model", str(model), "--endpoints", "endpoints.yml"]
    if shell:
        return [sys.executable, "-m", "bot.server.patches", "shell", *common]
    http = ["--port", env["PORT"], "--credentials", "credentials.yml"]
    if env.get("RASA_INTERFACE"):  # e.g. 127.0.0.1 when nginx runs on the same machine
        http += ["--interface", env["RASA_INTERFACE"]]
    return [sys.executable, "-m", "bot.server.patches", "run", *common, *http]


def run_shell(env: Dict[str, str], model: Path, stopping: threading.Event) -> int:
    """The staff shell: the action server in the background, ``rasa shell`` on the terminal."""
    actions = Child("actions", action_server_command(env), env)
    actions.start()
    try:
        died = wait_until_ready(
            [actions], [action_health_url(env)], START_TIMEOUT_SECONDS, stopping
        )
    except TimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        actions.stop()
        return 1
    if died:
        print(died.why_it_stopped(), file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    shell = Child("shell", rasa_command(env, model, shell=True), env, interactive=True)
    shell.start()
    assert shell.process is not None
    code = shell.process.wait()
    actions.stop()
    return code


def supervise(env: Dict[str, str], model: Path, stopping: threading.Event, rasa_only: bool = False) -> int:
    """Starts both servers, restarts either if it stops, and drains both when asked to stop.

    Args:
        env: the servers' environment.
        model: the trained model.
        stopping: set when the servers must stop.
        rasa_only: the action server runs elsewhere (``ACTION_ENDPOINT_URL``; a container of its own).
    """
    actions = Child("actions", action_server_command(env), env)
    server = Child("rasa", rasa_command(env, model), env)
    children = [server] if rasa_only else [actions, server]
    ready_urls = [f"http://127.0.0.1:{env['PORT']}/ready"]
    if not rasa_only:
        ready_urls.insert(0, action_health_url(env))
    for child in children:
        child.start()
    try:
        died = wait_until_ready(children, ready_urls, START_TIMEOUT_SECONDS, stopping)
    except TimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        died, code = None, 1
        stopping.set()
    else:
        code = 0
    if died is not None:  # a server that cannot start is not restarted: the setting needs fixing
        print(f"\nerror: {died.why_it_stopped()}", file=sys.stderr)
        stopping.set()
        code = 1
    if not stopping.is_set():
        print(banner(env), flush=True)
    while not stopping.is_set():
        for child in children:
            news = child.look_after(time.monotonic())
            if news:
                print(f"\n{news}", file=sys.stderr, flush=True)
        stopping.wait(0.5)
    # Drain: the Rasa server stops taking messages and answers those it has, using the action
    # server; only then does the action server stop.
    server.stop()
    actions.stop()
    if code == 0:
        print("Both servers stopped.")
    return code


def main(argv: List[str]) -> int:
    """Runs both servers until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description="Start the action server and the Rasa server.")
    parser.add_argument("--shell", action="store_true", help="the staff command-line shell instead of HTTP")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument(
        "--rasa-only", action="store_true", help="the action server runs elsewhere (ACTION_ENDPOINT_URL)"
    )
    args = parser.parse_args(argv)
    if not args.model.exists():
        print(f"error: no trained model at {args.model}. Run `make train` first.", file=sys.stderr)
        return 2
    env = settings(dict(os.environ), shell=args.shell)
    try:
        lock_backend(env)
    except LockStoreSettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problem = prepare_database(env)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args.shell:
        return run_shell(env, args.model, stopping)
    return supervise(env, args.model, stopping, rasa_only=args.rasa_only)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
