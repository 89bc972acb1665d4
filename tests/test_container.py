"""The container images (deploy/Containerfile), built with podman on a Debian base made here.

Builds both images (``scripts/container.py``: debootstrap base once, then podman's layer cache),
then checks them as a deployer would: they run as a non-root user, hold no secret, and the two
containers together answer a message from a PostgreSQL database (a private cluster on this
machine's loopback) and stop cleanly on SIGTERM.

Where podman cannot work (not installed, no debootstrap, no runtime), the test is skipped with a
reason that starts with "CONTAINERS NOT TESTED", which ``make test`` prints at its end.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from typing import Any, Iterator, List

import pytest

from scripts import container
from scripts.services import PostgresCluster, free_port, http_ok
from tests.conftest import ROOT

NOT_TESTED = "CONTAINERS NOT TESTED"


@pytest.fixture(scope="module")
def images() -> Iterator[dict]:
    if shutil.which("podman") is None:
        pytest.skip(f"{NOT_TESTED}: podman is not installed (apt-get install podman runc debootstrap)")
    try:
        container.ensure_base()
        probe = container.podman("run", "--rm", container.BASE_IMAGE, "true", check=False)
    except (container.PodmanUnavailable, subprocess.TimeoutExpired) as error:
        pytest.skip(f"{NOT_TESTED}: {error}")
    if probe.returncode != 0:
        pytest.skip(f"{NOT_TESTED}: podman cannot run a container here: {probe.stderr.strip()[-500:]}")
    yield container.build(["actions", "assistant"])


def _run(*args: str) -> str:
    return str(container.podman(*args).stdout).strip()


@pytest.mark.parametrize("target", ["actions", "assistant"])
def test_the_image_runs_as_a_user_and_holds_no_secret(images: dict, target: str) -> None:
    image = images[target]
    assert _run("run", "--rm", image, "id", "-u") != "0"
    config = json.loads(_run("image", "inspect", image))[0]["Config"]
    names = [entry.split("=", 1)[0] for entry in config.get("Env") or []]
    assert not [name for name in names if any(word in name for word in ("SECRET", "TOKEN", "PASSWORD"))], names
    # Nothing made at run time is in the image, and the build machine's TLS authority stayed outside.
    assert _run("run", "--rm", image, "sh", "-c", "ls -A /app/var 2>/dev/null") == ""
    # (the build leaves an empty mount point there: no content)
    assert _run("run", "--rm", image, "sh", "-c", "test -s /run/build-ca.crt || echo empty") == "empty"


@pytest.fixture()
def containers() -> Iterator[List[str]]:
    started: List[str] = []
    yield started
    for name in started:
        container.podman("stop", "-t", "30", name, check=False)
        container.podman("rm", "-f", name, check=False)


def test_the_containers_answer_from_postgresql_and_stop_cleanly(
    images: dict, postgres: PostgresCluster, containers: List[str]
) -> None:
    import sqlalchemy as sa

    from bot.storage.migrate import upgrade

    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text('CREATE DATABASE "containers"'))
    admin.dispose()
    url = postgres.url.rsplit("/", 1)[0] + "/containers"
    upgrade(url)
    port, action_port = free_port(), free_port()
    actions, assistant = f"lancs-test-actions-{uuid.uuid4().hex[:6]}", f"lancs-test-assistant-{uuid.uuid4().hex[:6]}"
    token = uuid.uuid4().hex
    container.podman(
        "run", "-d", "--name", actions, "-p", f"127.0.0.1:{action_port}:5055",
        "-e", f"ACTION_TOKEN={token}", "-e", "ACTION_HOST=0.0.0.0", images["actions"],
    )  # fmt: skip
    containers.append(actions)
    container.podman(
        "run", "-d", "--name", assistant, "--network", "host", "--init",
        "-e", f"PORT={port}", "-e", "RASA_INTERFACE=127.0.0.1", "-e", f"TRACKER_DB_URL={url}",
        "-e", f"ACTION_ENDPOINT_URL=http://127.0.0.1:{action_port}/webhook", "-e", f"ACTION_TOKEN={token}",
        "-e", "SANIC_WORKERS=1", "-e", f"WIDGET_SECRET={uuid.uuid4().hex * 2}", images["assistant"],
    )  # fmt: skip
    containers.append(assistant)
    deadline = time.monotonic() + 300
    while not http_ok(f"http://127.0.0.1:{port}/ready") and time.monotonic() < deadline:
        state = _run("inspect", "--format", "{{.State.Status}}", assistant)
        assert state == "running", container.podman("logs", assistant, check=False).stdout[-3000:]
        time.sleep(1)
    assert http_ok(f"http://127.0.0.1:{port}/ready"), container.podman("logs", assistant, check=False).stdout[-3000:]
    base = f"http://127.0.0.1:{port}/webhooks/widget"
    token_body = _post(f"{base}/session", {})
    answer = _post(f"{base}/message", {"token": token_body["token"], "text": "how much money is there"})
    assert any("£180,000" in str(m.get("text")) for m in answer), answer
    stopped = subprocess.run(
        ["podman", "stop", "-t", "40", assistant], env=container.podman_env(), capture_output=True, text=True
    )
    assert stopped.returncode == 0
    assert _run("inspect", "--format", "{{.State.ExitCode}}", assistant) == "0"
    assert (ROOT / "deploy" / "compose.yaml").exists()


def _post(url: str, body: dict) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        return json.load(response)
