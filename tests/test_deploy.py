"""The deployment files: what they ship, what they hold, and that nginx accepts its site file."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Set

import pytest
import yaml

from scripts.services import Nginx, ServiceMissing
from tests.conftest import ROOT

SECRET_NAMES = re.compile(r"SECRET|TOKEN|PASSWORD")


def _requirement_names(path: Path) -> List[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[<>=!\[ ;]", line, 1)[0])
    return names


def _closure(names: Iterable[str]) -> Set[str]:
    """The distributions ``names`` need, with everything they need in turn (as installed here)."""
    seen: Set[str] = set()
    todo = [name.lower().replace("_", "-") for name in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            todo.append(re.split(r"[<>=!\[ ;(]", requirement, 1)[0].lower().replace("_", "-"))
    return seen


def _imports_of(module_file: Path) -> Set[str]:
    """What importing the module imports: its module-level imports (not TYPE_CHECKING, not in functions)."""
    found: Set[str] = set()
    todo = list(ast.parse(module_file.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.If) and not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
            todo.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend(node.body + node.orelse + node.finalbody + [n for h in node.handlers for n in h.body])
    return found


def _third_party_imports_of_the_actions() -> Dict[str, str]:
    """Top-level third-party module -> the project file importing it, for actions/ and what it imports."""
    todo = sorted((ROOT / "actions").glob("*.py")) + [ROOT / "bot" / "server" / "action_server.py"]
    done: Set[Path] = set()
    third_party: Dict[str, str] = {}
    while todo:
        current = todo.pop()
        if current in done:
            continue
        done.add(current)
        for name in _imports_of(current):
            top = name.split(".")[0]
            if top in ("actions", "bot"):
                path = ROOT / Path(*name.split("."))
                todo.extend(p for p in (path.with_suffix(".py"), path / "__init__.py") if p.exists())
                parts = name.split(".")
                for depth in range(1, len(parts)):  # the packages on the way run their __init__ too
                    package = ROOT / Path(*parts[:depth]) / "__init__.py"
                    if package.exists():
                        todo.append(package)
            elif top not in sys.stdlib_module_names:
                third_party.setdefault(top, str(current.relative_to(ROOT)))
    return third_party


def test_the_action_server_needs_nothing_beyond_its_own_requirements() -> None:
    allowed = _closure(_requirement_names(ROOT / "requirements-actions.txt"))
    owners = importlib.metadata.packages_distributions()
    missing = {
        module: where
        for module, where in _third_party_imports_of_the_actions().items()
        if not any(d.lower().replace("_", "-") in allowed for d in owners.get(module, [module]))
    }
    assert not missing, f"imported by the actions but not in requirements-actions.txt: {missing}"


def test_the_images_run_as_a_user_and_take_their_base_as_an_argument() -> None:
    text = (ROOT / "deploy" / "Containerfile").read_text()
    assert "ARG BASE=debian:bullseye-slim" in text and "FROM ${BASE} AS python" in text
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    finals = {stage.split()[2]: stage for stage in stages if " AS " in stage.splitlines()[0]}
    for name in ("actions", "assistant"):
        users = re.findall(r"^USER (\S+)", finals[name], flags=re.M)
        assert users and users[-1] not in ("root", "0"), f"the {name} image runs as root"
    for copied in re.findall(r"^COPY (.+) /app", text, flags=re.M):
        assert not re.search(r"\bvar\b|\.env|secret", copied), copied
    ignored = (ROOT / ".containerignore").read_text().split()
    assert {"var", ".venv", ".git"} <= set(ignored)


def test_the_compose_file_holds_no_secret_and_runs_this_topology() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"db", "migrate", "actions", "assistant", "nginx"} <= set(services)
    assert services["assistant"]["deploy"]["replicas"] >= 2
    assert services["assistant"]["image"] == "localhost/lancs-assistant:latest"
    assert services["actions"]["image"] == "localhost/lancs-actions:latest"
    assert services["migrate"]["command"] == ["python", "-m", "bot.storage.migrate"]
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAMES.search(key):
                assert str(value).startswith("${") or "${" in str(value), f"{name}: {key} is written in the file"


def test_nginx_accepts_the_site_file(tmp_path: Path) -> None:
    try:
        balancer = Nginx(tmp_path, ["127.0.0.1:5005", "127.0.0.1:5006"])
    except ServiceMissing as missing:
        pytest.fail(str(missing))
    conf = tmp_path / "nginx.conf"
    (tmp_path / "tmp").mkdir()
    conf.write_text(balancer.config())
    checked = subprocess.run(
        [balancer.program, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    site = (ROOT / "deploy" / "nginx" / "assistant.conf").read_text()
    assert "least_conn" in site and "proxy_set_header Upgrade $http_upgrade" in site


def test_the_images_pin_every_requirement_for_their_python() -> None:
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "deploy" / "constraints-py39.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    wanted = _requirement_names(ROOT / "requirements.txt") + _requirement_names(ROOT / "requirements-actions.txt")
    missing = sorted({name.lower().replace("_", "-") for name in wanted} - pinned)
    assert not missing, f"add them to deploy/constraints-py39.txt (resolved on Python 3.9): {missing}"
