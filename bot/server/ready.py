"""``GET /ready``: whether this Rasa server can answer messages now, for a load balancer.

``/`` says the process is alive. ``/ready`` answers 200 only when the model is loaded, the
conversation database answers, and the action server answers its health check; else 503, with
which check failed (no other detail). A balancer that polls it (nginx Plus, HAProxy, a
Kubernetes readiness probe, ``deploy/``) sends no message to a replica that would fail it.
Each check's answer is kept for ``CACHE_S`` so frequent probes cost little.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.parse
from typing import Any, Dict, Optional, Tuple

import aiohttp
import sqlalchemy as sa
from sanic import response

CHECK_TIMEOUT_S = 2.0
CACHE_S = 1.0
ROUTE = "/ready"


def action_health_url(endpoint_url: Optional[str]) -> Optional[str]:
    """The action server's health URL, from its webhook URL (``.../webhook`` -> ``.../health``)."""
    if not endpoint_url:
        return None
    parts = urllib.parse.urlsplit(endpoint_url)
    path = parts.path.rsplit("/", 1)[0] + "/health"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Readiness:
    """The checks behind ``/ready`` for one Rasa server process."""

    def __init__(self) -> None:
        """Nothing is checked until the first probe."""
        self._cached: Optional[Tuple[float, Dict[str, bool]]] = None

    async def checks(self, app: Any) -> Dict[str, bool]:
        """Runs (or reuses) the three checks."""
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < CACHE_S:
            return self._cached[1]
        agent = getattr(app.ctx, "agent", None)
        model = bool(agent is not None and agent.is_ready())
        database, actions = await asyncio.gather(self._database(agent), self._actions(agent))
        result = {"model": model, "database": database, "action_server": actions}
        self._cached = (now, result)
        return result

    @staticmethod
    async def _database(agent: Any) -> bool:
        engine = getattr(getattr(agent, "tracker_store", None), "engine", None)
        if engine is None:
            return agent is not None and getattr(agent, "tracker_store", None) is not None

        def ping() -> bool:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True

        try:
            return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, ping), CHECK_TIMEOUT_S)
        except (asyncio.TimeoutError, sa.exc.SQLAlchemyError, OSError):
            return False

    @staticmethod
    async def _actions(agent: Any) -> bool:
        endpoint = getattr(agent, "action_endpoint", None)
        url = action_health_url(getattr(endpoint, "url", None) or os.environ.get("ACTION_ENDPOINT_URL"))
        if url is None:
            return True  # no action server configured: nothing to wait for
        try:
            timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(url) as answer:
                    return answer.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def handle(self, request: Any) -> Any:
        """The route: 200 ``{"ready": true, ...}`` or 503 with the failing checks."""
        checks = await self.checks(request.app)
        ready = all(checks.values())
        return response.json({"ready": ready, "checks": checks}, status=200 if ready else 503)


def install(app: Any) -> None:
    """Adds ``GET /ready`` to a Sanic app."""
    app.add_route(Readiness().handle, ROUTE, methods=["GET"], name="lancs_ready")
