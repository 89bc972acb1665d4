"""Runs Rasa's own command line with this project's fixes to Rasa applied first.

``bot/server/serve.py`` starts the Rasa server as ``python -m bot.server.patches run ...`` instead of
``rasa run ...``. The fixes are small, each is measured by ``make bench``, and each keeps Rasa's
behaviour exactly:

- **Action response check, built once.** For every custom action, Rasa 3.6 checks the action
  server's reply against a JSON schema with ``jsonschema.validate``, which builds and checks the
  schema's validator again on every call: about 20 ms of CPU per action, 28% of the server's time
  under load (py-spy, see bench/README.md). Here the validator is built once; a bad reply is still
  refused with the same ``jsonschema.ValidationError`` and the same explanation.
- **One HTTP session per endpoint, kept.** For every call to the action server, Rasa's
  ``EndpointConfig.request`` opens a new ``aiohttp.ClientSession``, so a new TCP connection, and
  closes it again: about a tenth of the server's CPU under load. Here each endpoint keeps one
  session per event loop, with keep-alive connections that are dropped after
  ``KEEPALIVE_S`` idle seconds (shorter than the action server's own 5 s, so the client never
  sends on a connection the server is closing). The sessions are closed when the server stops.
  Headers, basic auth, token and time-out are the endpoint's, as before.
- **Only offered payloads.** A "/..." text is an intent only if it is a button the assistant
  offered in this conversation; any other is read as words, so the safety net sees it
  (``bot/nlp/safety/payloads.py``).
- **Connections spread over the server processes.** With ``SANIC_WORKERS`` above 1, the app
  gets ``bot.server.balance.ConnectionBalancer``: a process holding two or more kept-alive connections
  more than the least busy one closes a connection after its response, so that the client's next
  connection lands on a free process (see ``bot/server/balance.py`` for why Sanic needs this).

And the fixes that make a replica safe to run behind a balancer:

- **Never silent, exactly once** (``bot/server/turns.py``): a message that cannot be answered gets
  an apology and the helplines, and HTTP 503 so it can be sent again; a failed turn is not
  stored; a message sent again with the same id is answered from what was stored; the tracker
  store is never swapped for an in-memory one.
- **``GET /ready``** (``bot/server/ready.py``): model, database and action server, for a balancer.
- **Worker processes die with the server** (``bot/server/orphans.py``): each Sanic worker asks the
  kernel for SIGKILL when the Rasa main process dies, so nothing is left holding the port.
- **A stopping server closes its kept-alive connections.** Sanic stops listening on SIGTERM and
  waits (up to ``GRACEFUL_SHUTDOWN_S``) for its open connections, but a balancer's kept-alive
  connection keeps bringing new requests, so the wait ran out and the request then in flight
  was cut (measured: a 20.8 s stall, ``make scale-test``). Here, once the server is stopping,
  every response says ``Connection: close``.
- **socket.io long-polling with several processes** (``bot/channels/socketio_workers.py``): each
  request reaches the process that holds its session, so rasa-webchat's defaults work.
- **No connection is taken before the model is loaded.** With several processes, Sanic binds
  and listens on the port in the main process, then each worker loads the model (10-30 s)
  before it accepts: meanwhile the kernel accepts connections nobody answers, and a balancer
  waits its whole read time-out (measured: 29.8 s, ``make scale-test``) instead of trying the
  next replica at once. Here the main process only binds; the socket listens when the first
  worker is ready (asyncio's ``create_server`` calls ``listen``), so until then a connection is
  refused, and nginx goes to the next replica.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import signal
import socket
import weakref
from typing import Any, Dict, MutableMapping

import aiohttp
from rasa.utils.endpoints import EndpointConfig

from bot.channels import socketio_workers
from bot.server import ready, turns
from bot.server.balance import ConnectionBalancer
from bot.server.orphans import die_with_parent
from bot.server.quiet import quiet_warnings_if_asked
from bot.server.workers import server_processes

DOCS_HINT = (
    ". Failed to validate Action server response from API, make sure your response from the "
    "Action endpoint is valid. For more information about the format visit "
    "https://rasa.com/docs/rasa/custom-actions"
)


@functools.lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    spec = RemoteAction.action_response_format_spec()
    cls = validator_for(spec)
    cls.check_schema(spec)
    return cls(spec)


def _validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """Rasa's RemoteAction._validate_action_result, with the validator built once."""
    from jsonschema import ValidationError

    try:
        _action_response_validator().validate(result)
    except ValidationError as error:
        error.message += DOCS_HINT
        raise
    return True


KEEPALIVE_S = 2.0
_ORIGINAL_SESSION = EndpointConfig.session
_KEPT_ATTRIBUTE = "_kept_sessions"


class _KeptSession:
    """Stands in for a new ``ClientSession`` in ``async with``, but leaves the kept one open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, *_exc_info: Any) -> None:
        return None


def _kept_session(self: Any) -> Any:
    """``EndpointConfig.session``: this endpoint's session for the running event loop."""
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

    loop = asyncio.get_running_loop()
    kept: MutableMapping[Any, aiohttp.ClientSession] = self.__dict__.setdefault(
        _KEPT_ATTRIBUTE, weakref.WeakKeyDictionary()
    )
    session = kept.get(loop)
    if session is None or session.closed:
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) if self.basic_auth else None
        session = aiohttp.ClientSession(
            headers=self.headers,
            auth=auth,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            # No cap on connections (limit=0), as before, when every request had its own session.
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_S),
        )
        kept[loop] = session
        _OPEN_SESSIONS.add(session)
    return _KeptSession(session)


# Every kept session of this process, to close them when the server stops.
_OPEN_SESSIONS: "weakref.WeakSet[aiohttp.ClientSession]" = weakref.WeakSet()


async def close_kept_sessions() -> None:
    """Closes the kept sessions that belong to the running event loop."""
    loop = asyncio.get_running_loop()
    for session in list(_OPEN_SESSIONS):
        if not session.closed and session._loop is loop:
            await session.close()


def _close_resources_too(original: Any) -> Any:
    @functools.wraps(original)
    async def close_resources(app: Any, loop: Any) -> None:
        try:
            await original(app, loop)
        finally:
            await close_kept_sessions()

    close_resources.__wrapped_by_lancs__ = True  # type: ignore[attr-defined]
    return close_resources


def _configure_app_too(original: Any) -> Any:
    @functools.wraps(original)
    def configure_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        processes = server_processes()
        if processes > 1:
            ConnectionBalancer(processes).install(app)
            channels = kwargs.get("input_channels", args[0] if args else None)
            socketio_workers.install(app, channels, processes)
            app.register_listener(_worker_dies_with_server(os.getpid()), "before_server_start")
        ready.install(app)
        turns.install_http(app)
        _close_connections_when_stopping(app)
        app.config.GRACEFUL_SHUTDOWN_TIMEOUT = GRACEFUL_SHUTDOWN_S
        return app

    configure_app.__wrapped_by_lancs__ = True  # type: ignore[attr-defined]
    return configure_app


# How long a stopping server waits for the messages it is answering (seconds).
GRACEFUL_SHUTDOWN_S = 20.0


def _worker_dies_with_server(server_pid: int) -> Any:
    async def worker_dies_with_server(_app: Any, _loop: Any) -> None:
        if os.getpid() != server_pid:  # a Sanic worker process, forked by the Rasa main process
            die_with_parent(signal.SIGKILL, parent=server_pid)

    return worker_dies_with_server


def _close_connections_when_stopping(app: Any) -> None:
    """Once this server process is stopping, each response closes its connection (see above)."""
    stopping = {"now": False}

    async def mark_stopping(_app: Any, _loop: Any) -> None:
        stopping["now"] = True

    async def close_after_response(request: Any, response: Any) -> None:
        http = getattr(request, "stream", None)
        if stopping["now"] and hasattr(http, "keep_alive"):
            http.keep_alive = False  # type: ignore[union-attr]

    app.register_listener(mark_stopping, "before_server_stop")
    app.register_middleware(close_after_response, "response")


def _custom_tracker_store_or_fail(domain: Any, store: Any, event_broker: Any = None) -> Any:
    """Rasa's loader for a tracker store named by module path, without its in-memory fallback."""
    import rasa.shared.utils.common

    store_class = rasa.shared.utils.common.class_from_module_path(store.type)
    return store_class(host=store.url, domain=domain, event_broker=event_broker, **store.kwargs)


def _bind_without_listening(host: str, port: int, *, backlog: int = 100) -> socket.socket:
    """Sanic's ``bind_socket`` (for several worker processes) without ``listen``: see above."""
    try:  # IP address: family must be specified for IPv6 at least
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name
        family = socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def apply_fixes() -> None:
    """Applies the fixes to the Rasa classes in this process (safe to call more than once)."""
    import rasa.core.run
    import rasa.core.tracker_store
    import sanic.server.runners
    from rasa.core.actions.action import RemoteAction

    from bot.nlp.safety import payloads

    sanic.server.runners.bind_socket = _bind_without_listening  # type: ignore[assignment]
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    turns.install_rasa()
    rasa.core.tracker_store._load_from_module_name_in_endpoint_config = _custom_tracker_store_or_fail
    EndpointConfig.session = _kept_session  # type: ignore[method-assign]
    payloads.install()  # nothing a user types can pick an intent, action or slot
    if not getattr(rasa.core.run.configure_app, "__wrapped_by_lancs__", False):
        rasa.core.run.configure_app = _configure_app_too(rasa.core.run.configure_app)
    if not getattr(rasa.core.run.close_resources, "__wrapped_by_lancs__", False):
        rasa.core.run.close_resources = _close_resources_too(rasa.core.run.close_resources)


def main() -> None:
    """Applies the fixes, then hands over to Rasa's command line (same arguments as ``rasa``)."""
    quiet_warnings_if_asked()
    apply_fixes()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
