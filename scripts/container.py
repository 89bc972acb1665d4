"""Builds (and checks) the container images of ``deploy/Containerfile`` with podman, offline.

No image registry is reachable here, so the base image is made locally: ``debootstrap`` puts a
minimal Debian bullseye in a folder, and ``podman import`` turns it into
``localhost/debian:bullseye-slim`` (once; later builds reuse it). ``deploy/podman/containers.conf``
gives podman the runtime and limits that work on these machines.

Command line: ``python -m scripts.container build`` (``make image``) builds ``lancs-assistant`` and
``lancs-actions``; ``python -m scripts.container base`` only makes the base.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "localhost/debian:bullseye-slim"
IMAGES = {"assistant": "localhost/lancs-assistant:latest", "actions": "localhost/lancs-actions:latest"}
DEFAULT_MIRROR = "http://deb.debian.org/debian"


class PodmanUnavailable(RuntimeError):
    """podman, runc or debootstrap is missing or does not work here; the message says what."""


def podman_env() -> Dict[str, str]:
    """The environment for podman: this project's containers.conf."""
    return {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "podman" / "containers.conf")}


def podman(
    *args: str, check: bool = True, capture: bool = True, timeout: float = 3600
) -> "subprocess.CompletedProcess[str]":
    """Runs ``podman ARGS``."""
    if shutil.which("podman") is None:
        raise PodmanUnavailable("podman is not installed (apt-get install podman runc)")
    done = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=capture, text=True, timeout=timeout, cwd=ROOT
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed ({done.returncode}):\n{(done.stderr or '')[-3000:]}")
    return done


def debian_mirror() -> str:
    """The Debian mirror apt is configured with here (debootstrap fetches from it)."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = source.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?:^URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(https?://\S+/debian)\s*$", text, re.M):
            return match.group(1)
    return DEFAULT_MIRROR


def ensure_base() -> str:
    """Makes ``localhost/debian:bullseye-slim`` with debootstrap unless it exists; returns its name."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None and Path("/usr/sbin/debootstrap").exists():
        debootstrap = "/usr/sbin/debootstrap"
    if debootstrap is None:
        raise PodmanUnavailable("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="lancs-rootfs-") as folder:
        rootfs = Path(folder) / "rootfs"
        made = subprocess.run(
            [debootstrap, "--variant=minbase", "bullseye", str(rootfs), debian_mirror()],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        if made.returncode != 0:
            raise PodmanUnavailable(f"debootstrap failed: {made.stderr[-2000:]}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "-", BASE_IMAGE], stdin=tar.stdout, env=podman_env(), capture_output=True, text=True
        )
        tar.wait()
        if imported.returncode != 0:
            raise PodmanUnavailable(f"podman import failed: {imported.stderr[-2000:]}")
    return BASE_IMAGE


def build(targets: List[str]) -> Dict[str, str]:
    """Builds the images (after ``make train``: the model is copied in). Returns target -> image."""
    if not (ROOT / "models" / "assistant.tar.gz").exists() or not (ROOT / "build" / "spacy_en").exists():
        raise RuntimeError("no trained model: run `make train` first")
    base = ensure_base()
    extra: List[str] = []
    host_ca = os.environ.get("PIP_CERT")
    if host_ca and Path(host_ca).is_file():  # this machine's own TLS authority, for pip during the build
        extra = ["-v", f"{host_ca}:/run/build-ca.crt:ro", "--build-arg", "PIP_CERT=/run/build-ca.crt"]
    built = {}
    for target in targets:
        print(f"podman build --target {target} ...", flush=True)
        podman(
            "build", "-f", "deploy/Containerfile", "--build-arg", f"BASE={base}", *extra, "--target", target,
            "-t", IMAGES[target], ".", capture=False,
        )  # fmt: skip
        built[target] = IMAGES[target]
    return built


def main(argv: List[str]) -> int:
    """``build`` (both images) or ``base``."""
    if argv not in (["build"], ["base"]):
        print("usage: python -m scripts.container build|base", file=sys.stderr)
        return 2
    try:
        if argv == ["base"]:
            print(ensure_base())
        else:
            for target, image in build(["actions", "assistant"]).items():
                print(f"{target}: {image}")
    except PodmanUnavailable as error:
        print(f"error: podman cannot build here: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


class ContainerReplica:
    """One replica as containers: the assistant image and the actions image, run with podman.

    The same interface as :class:`scripts.services.Replica`, for ``make scale-test CONTAINERS=1``.
    The assistant container shares the host's network (it reaches PostgreSQL on loopback and
    listens on its own port there); the actions container publishes its port on 127.0.0.1.
    """

    def __init__(self, name: str, env: Dict[str, str], folder: Path, images: Dict[str, str]) -> None:
        """Remembers how to start it on free ports; ``start`` starts it.

        Args:
            name: a short name for logs.
            env: settings for the assistant (``TRACKER_DB_URL``, ``WIDGET_SECRET``, ``ACTION_TOKEN``, ...).
            folder: where its logs go.
            images: target -> image, from :func:`build`.
        """
        from scripts.services import free_port

        self.name = name
        self.port, self.action_port = free_port(), free_port()
        self.env = dict(env)
        self.folder = folder
        self.images = images
        suffix = os.urandom(3).hex()
        self.assistant = f"lancs-scale-{name.lower()}-assistant-{suffix}"
        self.actions = f"lancs-scale-{name.lower()}-actions-{suffix}"
        self.log = folder / f"{name}.log"

    @property
    def url(self) -> str:
        """The Rasa server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def _settings(self, names: List[str]) -> List[str]:
        return [part for name in names if name in self.env for part in ("-e", f"{name}={self.env[name]}")]

    def start(self) -> "ContainerReplica":
        """Starts both containers (new ones, under the same names); returns self (not waiting)."""
        self._remove()
        podman(
            "run", "-d", "--name", self.actions, "-p", f"127.0.0.1:{self.action_port}:5055",
            "-e", "ACTION_HOST=0.0.0.0", *self._settings(["ACTION_TOKEN"]), self.images["actions"],
        )  # fmt: skip
        podman(
            "run", "-d", "--name", self.assistant, "--network", "host", "--init",
            "-e", f"PORT={self.port}", "-e", "RASA_INTERFACE=127.0.0.1",
            "-e", f"ACTION_ENDPOINT_URL=http://127.0.0.1:{self.action_port}/webhook",
            *self._settings(sorted(set(self.env) - {"PORT", "ACTION_ENDPOINT_URL"})), self.images["assistant"],
        )  # fmt: skip
        return self

    def wait_ready(self, timeout: float = 300) -> float:
        """Waits until ``/ready`` answers 200; returns the seconds it took."""
        from scripts.services import http_ok

        began = time.monotonic()
        while time.monotonic() - began < timeout:
            state = podman("inspect", "--format", "{{.State.Status}}", self.assistant, check=False).stdout.strip()
            if state not in ("running", "created", "configured"):
                raise RuntimeError(f"replica {self.name}'s assistant container is {state}:\n{self.log_tail()}")
            if http_ok(f"{self.url}/ready"):
                return time.monotonic() - began
            time.sleep(0.25)
        raise RuntimeError(f"replica {self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        """The end of the assistant container's log."""
        return str(podman("logs", self.assistant, check=False).stdout or "")[-size:]

    def crash(self) -> None:
        """Kills both containers with SIGKILL at once, as a machine that dies."""
        for name in (self.assistant, self.actions):
            podman("kill", "--signal", "KILL", name, check=False)
        self._save_logs()

    def stop(self, timeout: float = 60) -> Optional[int]:
        """Stops the assistant with ``podman stop`` (SIGTERM: it drains), then the actions.

        Returns the assistant's exit code (None if podman could not stop it).
        """
        done = podman("stop", "-t", str(int(timeout)), self.assistant, check=False)
        code: Optional[int] = None
        if done.returncode == 0:
            raw = podman("inspect", "--format", "{{.State.ExitCode}}", self.assistant, check=False).stdout.strip()
            code = int(raw) if raw.lstrip("-").isdigit() else None
        podman("stop", "-t", "10", self.actions, check=False)
        self._save_logs()
        self._remove()
        return code

    def _save_logs(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as out:
            out.write(self.log_tail(200_000))

    def _remove(self) -> None:
        for name in (self.assistant, self.actions):
            podman("rm", "-f", name, check=False)
