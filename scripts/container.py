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
from pathlib import Path
from typing import Dict, List

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
