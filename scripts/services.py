"""Private PostgreSQL and nginx instances on loopback ports, for tests and ``make scale-test``.

Each instance lives in its own temporary folder, listens on 127.0.0.1 only, and is stopped by
its own process id. PostgreSQL comes from Debian's packages (``postgresql``: its binaries are in
``/usr/lib/postgresql/<version>/bin``), nginx from ``nginx-light`` (or ``nginx``). PostgreSQL
refuses to run as root: as root, the cluster belongs to the ``postgres`` user the package made.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import tempfile
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "assistant.conf"


class ServiceMissing(RuntimeError):
    """A server program is not installed; the message says which Debian package brings it."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path:
    """The folder of the newest installed PostgreSQL's server programs."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise ServiceMissing("PostgreSQL is not installed: apt-get install postgresql")
    return Path(found[-1]).parent


def nginx_bin() -> str:
    """The nginx program."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise ServiceMissing("nginx is not installed: apt-get install nginx-light")
    return found


def _as_owner(user: Optional[str]) -> List[str]:
    return ["runuser", "-u", user, "--"] if user else []


class PostgresCluster:
    """A throw-away PostgreSQL cluster with one database, ``assistant``."""

    def __init__(self, port: Optional[int] = None) -> None:
        """Makes the cluster's folder (in /tmp, which the ``postgres`` user can reach); ``start`` starts it."""
        self.folder = Path(tempfile.mkdtemp(prefix="lancs-postgres-"))
        os.chmod(self.folder, 0o711)
        self.data = self.folder / "data"
        self.port = port or free_port()
        self.bin = postgres_bin()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.log = self.folder / "postgres.log"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its database."""
        return f"postgresql://assistant:assistant@127.0.0.1:{self.port}/assistant"

    def _run(self, *command: str) -> None:
        # Output to a file: the server that pg_ctl starts would hold a pipe open for ever.
        output = self.folder / "commands.log"
        with output.open("a") as log:
            done = subprocess.run(
                [*_as_owner(self.user), *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd="/",
                env={**os.environ, "PGPASSWORD": "assistant"},
                timeout=60,
            )
        if done.returncode != 0:
            tail = output.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {tail}")

    def start(self) -> "PostgresCluster":
        """Makes the cluster (the first time) and starts it; returns self."""
        if not self.data.exists():
            if self.user:
                record = pwd.getpwnam(self.user)
                os.chown(self.folder, record.pw_uid, record.pw_gid)
            password = self.folder / "pw"
            password.write_text("assistant\n")
            if self.user:
                os.chown(password, pwd.getpwnam(self.user).pw_uid, -1)
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", "assistant", "--pwfile", str(password),
                "-A", "scram-sha-256", "--no-sync",
            )  # fmt: skip
            self._start()
            host = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "assistant"]
            self._run(str(self.bin / "createdb"), *host, "assistant")
            return self
        self._start()
        return self

    def _start(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder} -c fsync=off -c max_connections=200"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (``fast``: ends every session at once)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> float:
        """Stops and starts the server; returns how long it was unreachable (seconds)."""
        began = time.monotonic()
        self.stop()
        self._start()
        return time.monotonic() - began

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.remove()

    def remove(self) -> None:
        """Deletes the stopped cluster's folder."""
        shutil.rmtree(self.folder, ignore_errors=True)


class Nginx:
    """nginx in front of some replicas, with ``deploy/nginx/assistant.conf`` as its site."""

    def __init__(self, folder: Path, upstreams: Sequence[str], port: Optional[int] = None) -> None:
        """Writes its configuration; ``start`` starts it.

        Args:
            folder: its own folder (configuration, logs, temp files, pid).
            upstreams: ``host:port`` of each replica's Rasa server.
            port: where it listens (127.0.0.1).
        """
        self.folder = folder
        self.port = port or free_port()
        self.program = nginx_bin()
        self.upstreams = list(upstreams)
        self.process: Optional["subprocess.Popen[bytes]"] = None

    def config(self) -> str:
        """The whole nginx.conf: a minimal main part, then the deployment's site file."""
        line = "    server {} max_fails=1 fail_timeout=5s;  # replica\n"
        servers = "".join(line.format(upstream) for upstream in self.upstreams)
        site = re.sub(r"(?:[ \t]*server [^\n]*# replica\n)+", lambda _match: servers, NGINX_TEMPLATE.read_text())
        site = site.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{self.port};")
        temp = self.folder / "tmp"
        return (
            "worker_processes 1;\n"
            f"pid {self.folder / 'nginx.pid'};\n"
            f"error_log {self.folder / 'error.log'} warn;\n"
            "daemon off;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            "  log_format upstreams '$request_method $uri $status [$upstream_addr] [$upstream_status]';\n"
            f"  access_log {self.folder / 'access.log'} upstreams;\n"
            f"  client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy;\n"
            f"  fastcgi_temp_path {temp}/fastcgi; uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;\n"
            f"{site}\n"
            "}\n"
        )

    def start(self) -> "Nginx":
        """Starts nginx in the foreground of its own process; returns self once it listens."""
        (self.folder / "tmp").mkdir(parents=True, exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config())
        command = [self.program, "-c", str(conf), "-p", str(self.folder)]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration:\n{check.stderr}")
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"nginx did not listen on {self.port}: {(self.folder / 'error.log').read_text()[-2000:]}")

    def retried(self) -> int:
        """How many requests nginx sent to more than one replica (its access log)."""
        log = self.folder / "access.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return sum(1 for line in lines if "," in line.rsplit("[", 2)[-2])

    def stop(self) -> None:
        """Stops nginx (by its process id)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Nginx":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def process_tree(pid: int) -> List[int]:
    """``pid`` and every process descended from it (read from /proc)."""
    children: dict = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Replica:
    """One replica as a deployer runs it: ``python -m bot.server.serve`` (supervisor, Rasa, actions)."""

    def __init__(self, name: str, env: Dict[str, str], folder: Path, model: Optional[Path] = None) -> None:
        """Remembers how to start it on free ports; ``start`` starts it.

        Args:
            name: a short name for logs.
            env: settings on top of this process's environment (``TRACKER_DB_URL``, ...).
            folder: where its log goes.
            model: the trained model (default: ``models/assistant.tar.gz``).
        """
        self.name = name
        self.port, self.action_port = free_port(), free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port), "ACTION_PORT": str(self.action_port)}
        self.env.pop("ACTION_ENDPOINT_URL", None)
        self.folder = folder
        self.model = model or ROOT / "models" / "assistant.tar.gz"
        self.log = folder / f"{name}.log"
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.seen: List[int] = []
        self.log_start = 0

    @property
    def url(self) -> str:
        """The Rasa server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Replica":
        """Starts the supervisor in its own session; returns self (not waiting)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.server.serve", "--model", str(self.model)],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 240) -> float:
        """Waits until ``/ready`` answers 200 and the supervisor says so; returns the seconds it took."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited:\n{self.log_tail()}")
            if http_ok(f"{self.url}/ready") and self._supervisor_says_running():
                return time.monotonic() - began
            time.sleep(0.25)
        raise RuntimeError(f"replica {self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _supervisor_says_running(self) -> bool:
        """Whether this start's supervisor has printed its banner (it restarts crashed servers after that)."""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return b"The assistant is running" in log.read()

    def log_tail(self, size: int = 3000) -> str:
        """The end of its log."""
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else "(no log)"

    def pids(self) -> List[int]:
        """Its live processes (and remembers them, to make sure they are gone later)."""
        if self.process is None:
            return []
        found = [pid for pid in process_tree(self.process.pid) if alive(pid)]
        self.seen = sorted(set(self.seen) | set(found))
        return found

    def child_pid(self, marker: str) -> Optional[int]:
        """The supervisor's child whose command line contains ``marker`` (``patches``, ``actions``)."""
        for pid in self.pids():
            if self.process is not None and pid == self.process.pid:
                continue
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if marker in command and self.process is not None and parent == self.process.pid:
                return pid
        return None

    def crash(self) -> None:
        """Kills every process of the replica with SIGKILL at once, as a machine that dies."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self, timeout: float = 60) -> Optional[int]:
        """SIGTERM to the supervisor (it drains); then anything left is killed. Returns its exit code."""
        if self.process is None:
            return None
        self.pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.seen:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait(10)


def http_ok(url: str, timeout: float = 3) -> bool:
    """Whether a GET on ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
