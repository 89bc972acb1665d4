"""Starts the action server and the Rasa server together, and stops both together.

``make run`` calls ``python -m bot.server.serve``; ``make shell`` calls it with ``--shell``
(the staff command-line shell instead of the HTTP server). It:

- fills in the settings that have defaults (ports, the SQLite tracker store, the
  widget's signing secret, the REST channel's and the action server's tokens) so that
  ``endpoints.yml`` and ``credentials.yml`` resolve;
- runs one Rasa server process per CPU (``SANIC_WORKERS``, at most 4 by default), sharing
  their conversation locks in the tracker database or Redis (bot/storage/lock_store.py), and refuses
  a setting that cannot work;
- starts the action server (``bot/server/action_server.py``: on ``ACTION_HOST``, 127.0.0.1 by
  default, every call authenticated) and ``rasa run`` (or ``rasa shell``) with every channel
  in ``credentials.yml``;
- prints where to reach them once they answer;
- on Ctrl-C (or SIGTERM) stops both; if either dies, stops the other and says why.
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

from bot.server.workers import MEMORY, REDIS, SQL, LockStoreSettingsError, lock_backend, workers, workers_to_start

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"
MODEL = ROOT / "models" / "assistant.tar.gz"
STOP_GRACE_SECONDS = 10.0
LOCK_PLACES = {MEMORY: "memory", SQL: "the tracker database", REDIS: "Redis"}
START_TIMEOUT_SECONDS = 180.0


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


class Child:
    """A server process whose output is passed through with a prefix, keeping its last lines."""

    def __init__(self, label: str, command: List[str], env: Dict[str, str], interactive: bool = False) -> None:
        """Starts the process.

        Args:
            label: a short name shown before each line of its output.
            command: the command line.
            env: its environment.
            interactive: leave stdin/stdout to the terminal (the shell).
        """
        self.label = label
        self.tail: Deque[str] = collections.deque(maxlen=15)
        self.process: "subprocess.Popen[str]"
        if interactive:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, text=True)
            return
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.tail.append(line.rstrip())
            sys.stdout.write(f"[{self.label}] {line}")
            sys.stdout.flush()

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Asks the process to stop, and kills it if it has not after a grace period."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def why_it_stopped(self) -> str:
        """Describes the exit status and the last lines of output."""
        code = self.process.returncode
        status = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        lines = "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
        return f"The {self.label} server {status}. Its last lines:\n{lines}"


def answers(url: str) -> bool:
    """Whether an HTTP GET on ``url`` returns 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(children: List[Child], urls: List[str], timeout: float) -> Optional[Child]:
    """Waits for every URL to answer. Returns the child that died meanwhile, if any."""
    deadline = time.monotonic() + timeout
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        for child in children:
            if not child.alive():
                return child
        pending = [url for url in pending if not answers(url)]
        if pending:
            time.sleep(0.5)
    if pending:
        raise TimeoutError(f"no answer from {', '.join(pending)} after {timeout:.0f} s")
    return None


def banner(env: Dict[str, str]) -> str:
    """The lines printed once both servers answer."""
    base = f"http://localhost:{env['PORT']}"
    processes = workers(env)
    socketio_note = " (websocket transport only)" if processes > 1 else ""
    return "\n".join(
        [
            "",
            "The assistant is running. Press Ctrl-C to stop it.",
            f"  Rasa server:       {processes} process(es), conversation locks in {LOCK_PLACES[lock_backend(env)]}",
            f"  REST channel:      POST {base}/webhooks/rest/webhook",
            f"  socket.io channel: {base}/socket.io/{socketio_note}",
            f"  Widget demo page:  {base}/webhooks/widget/demo",
            f"  Widget script:     {base}/webhooks/widget/widget.js",
            f"  Action server:     http://localhost:{env['ACTION_PORT']}/health",
            "",
        ]
    )


def main(argv: List[str]) -> int:
    """Runs both servers until Ctrl-C or until one of them stops."""
    parser = argparse.ArgumentParser(description="Start the action server and the Rasa server.")
    parser.add_argument("--shell", action="store_true", help="the staff command-line shell instead of HTTP")
    parser.add_argument("--model", type=Path, default=MODEL)
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
    # The Rasa server runs with this project's measured fixes applied (bot/server/patches.py).
    rasa_fixed = [sys.executable, "-m", "bot.server.patches"]
    actions = Child("actions", [sys.executable, "-m", "bot.server.action_server", "--port", env["ACTION_PORT"]], env)
    action_health = f"http://{env.get('ACTION_HOST') or '127.0.0.1'}:{env['ACTION_PORT']}/health"
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    common = ["--model", str(args.model), "--endpoints", "endpoints.yml"]
    if args.shell:
        died = wait_until_ready([actions], [action_health], START_TIMEOUT_SECONDS)
        if died:
            print(died.why_it_stopped(), file=sys.stderr)
            return 1
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        shell = Child("shell", [*rasa_fixed, "shell", *common], env, interactive=True)
        code = shell.process.wait()
        actions.stop()
        return code

    server = Child(
        "rasa",
        [*rasa_fixed, "run", *common, "--port", env["PORT"], "--credentials", "credentials.yml"],
        env,
    )
    children = [actions, server]
    try:
        died = wait_until_ready(
            children,
            [action_health, f"http://127.0.0.1:{env['PORT']}/"],
            START_TIMEOUT_SECONDS,
        )
    except TimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        died = None
        stopping.set()
    if died is None and not stopping.is_set():
        print(banner(env), flush=True)
    while died is None and not stopping.is_set():
        died = next((child for child in children if not child.alive()), None)
        stopping.wait(0.5)
    for child in children:
        child.stop()
    if died is not None:
        print(f"\nerror: {died.why_it_stopped()}", file=sys.stderr)
        print("The other server was stopped too.", file=sys.stderr)
        return 1
    print("Both servers stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
