"""socket.io long-polling across several Rasa server processes: each request reaches its session.

With ``SANIC_WORKERS`` above 1, the Rasa server processes share one port, and the kernel hands
each new connection to whichever process accepts first. A socket.io (engine.io) session lives
in the process that opened it. A websocket stays on its connection, so it is fine; but
long-polling, which is how socket.io clients start (rasa-webchat with its default settings, and
socket.io-client's default), sends each poll and each message as a separate HTTP request, and
a request that lands on another process gets "Invalid session" (or, when polling is refused,
the client never connects at all: measured with rasa-webchat 1.0.1 in Chromium).

Here, each process:

- names the sessions it opens after itself: the engine.io session id starts with its slot
  number (``3_...``), so any process can tell whose a request is;
- listens on a private loopback port as well (the same Sanic app; the port is published to the
  other processes in a small shared array made before they were forked);
- passes a polling request for another process's session to that process's private port, and
  returns its answer unchanged (the client sees one server);
- refuses a websocket upgrade for another process's session (400): the client keeps polling,
  which works; a client that connects with the websocket transport straight away is never
  affected (its connection stays with the process that took it).

Across replicas, the balancer keeps one client on one replica (``deploy/nginx/assistant.conf``:
``hash $remote_addr``). Installed by ``bot/server/patches.py`` on the socket.io channel of a
server with several processes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import multiprocessing.sharedctypes
import urllib.parse
from typing import Any, Dict, Optional, Tuple

import aiohttp
from sanic import response

logger = logging.getLogger(__name__)

SEPARATOR = "_"
# Headers a proxy does not pass on (RFC 9110 7.6.1), plus the length the client library sets again.
# Host is passed on: the owner checks the Origin against it, as for any request.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "content-length",
}  # fmt: skip
FORWARD_TIMEOUT_S = 70.0  # more than a long poll's wait (engine.io ping interval 25 s + timeout 20 s)


def owner_of(sid: str) -> Optional[int]:
    """The slot of the process that opened the session ``sid`` (None if it carries none)."""
    head, separator, _ = sid.partition(SEPARATOR)
    return int(head) if separator and head.isdigit() else None


class SessionRouter:
    """Sends each socket.io request to the server process that holds its session."""

    def __init__(self, processes: int, socketio_path: str) -> None:
        """Makes the shared table of private ports. Call it in the parent, before the processes start.

        Args:
            processes: the number of server processes.
            socketio_path: where socket.io is served (``/socket.io``).
        """
        self.ports = multiprocessing.sharedctypes.RawArray("i", processes)
        self.next_slot = multiprocessing.Value("i", 0)
        self.path = "/" + socketio_path.strip("/")
        self.slot: Optional[int] = None
        self.session: Optional[aiohttp.ClientSession] = None
        self._server: Any = None

    def install(self, app: Any, sio: Any) -> None:
        """Adds the hooks to the Sanic app and the channel's socket.io server (in the parent)."""
        original = sio.eio.generate_id

        def generate_id() -> str:
            return f"{self.slot if self.slot is not None else 0}{SEPARATOR}{original()}"

        sio.eio.generate_id = generate_id
        app.register_listener(self._open_private_port, "after_server_start")
        app.register_listener(self._close, "before_server_stop")
        app.register_middleware(self._route, "request")

    async def _open_private_port(self, app: Any, loop: Any) -> None:
        from sanic.models.server_types import Signal
        from sanic.server.protocols.http_protocol import HttpProtocol

        with self.next_slot.get_lock():
            self.slot = self.next_slot.value % len(self.ports)
            self.next_slot.value += 1
        protocol = functools.partial(
            HttpProtocol, loop=loop, app=app, signal=Signal(), connections=set(), state={"requests_count": 0}
        )
        self._server = await loop.create_server(protocol, "127.0.0.1", 0)
        self.ports[self.slot] = int(self._server.sockets[0].getsockname()[1])
        logger.debug(f"socket.io sessions of process {self.slot} also served on a private port")

    async def _close(self, _app: Any, _loop: Any) -> None:
        if self.session is not None:
            await self.session.close()
        if self._server is not None:
            self._server.close()

    def _target(self, request: Any) -> Optional[Tuple[int, int]]:
        """(slot, private port) of the process that holds the request's session, if not this one."""
        if not request.path.rstrip("/").startswith(self.path) or self.slot is None:
            return None
        sid = request.args.get("sid")
        owner = owner_of(sid) if isinstance(sid, str) else None
        if owner is None or owner == self.slot or owner >= len(self.ports):
            return None
        port = int(self.ports[owner])
        return (owner, port) if port else None

    async def _route(self, request: Any) -> Any:
        target = self._target(request)
        if target is None:
            return None
        if request.headers.get("upgrade", "").lower() == "websocket":
            # The client keeps long-polling (which works through here) instead of upgrading.
            return response.text("This session's websocket must reach another process.", status=400)
        return await self._forward(request, target[1])

    async def _forward(self, request: Any, port: int) -> Any:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S), auto_decompress=False
            )
        query = urllib.parse.urlencode(list(request.query_args))
        url = f"http://127.0.0.1:{port}{request.path}" + (f"?{query}" if query else "")
        headers = {name: value for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP}
        try:
            async with self.session.request(request.method, url, data=request.body, headers=headers) as answer:
                body = await answer.read()
                passed: Dict[str, str] = {
                    name: value
                    for name, value in answer.headers.items()
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-type"
                }
                kind = answer.headers.get("Content-Type", "application/octet-stream")
                return response.raw(body, status=answer.status, headers=passed, content_type=kind)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            logger.warning(f"A socket.io request could not reach the process of its session: {type(error).__name__}")
            return response.text("The session's server process is not reachable.", status=400)


def install(app: Any, channels: Any, processes: int) -> None:
    """Routes socket.io sessions between the server processes, for each socket.io channel."""
    if processes < 2:
        return
    for channel in channels or []:
        sio = getattr(channel, "sio", None)
        path = getattr(channel, "socketio_path", None)
        if sio is not None and path and hasattr(sio, "eio"):
            SessionRouter(processes, path).install(app, sio)
