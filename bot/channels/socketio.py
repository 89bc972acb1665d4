"""Rasa's socket.io channel with ``session_persistence`` working again.

Referenced from ``credentials.yml`` as ``bot.channels.socketio.SocketIOInput``
(the built-in ``socketio:`` key would load Rasa's broken class). Its
``name()`` stays ``"socketio"``, so the routes (``/webhooks/socketio/``, the
socket.io endpoint ``/socket.io``) and the tracker's ``input_channel`` are the
same as Rasa's.

The bug: in rasa 3.6.21, the ``session_request`` handler calls
``sio.enter_room(sid, session_id)`` without ``await``. ``AsyncServer.enter_room``
is a coroutine since python-socketio 5.10 (a breaking change in its changelog),
so with ``session_persistence: true`` (what rasa-webchat uses) the socket never
joins the session's room, Python warns "coroutine 'AsyncServer.enter_room' was
never awaited", and every ``bot_uttered`` event, which Rasa emits to that room,
reaches nobody (upstream RasaHQ/rasa#13027, fixes proposed in #13148 and
#13168, not released).

Why a subclass and not an older python-socketio: the lock file pins
python-socketio 5.18.1, which requires python-engineio >= 4.15.1 (locked at
4.15.1, past the fix for GHSA-cgwc-pv48-fhj5, a heartbeat denial of service
fixed in python-engineio 4.13.2). Pinning python-socketio below 5.10 would mean
pairing a 2023 release with an engine.io layer it was never released against,
and giving up the later server fixes, among them the switch of message-queue
payloads from pickle to JSON (python-socketio PR #1502, a remote code
execution risk when a queue is reachable). The fix is one ``await``, so this
subclass re-registers only the ``session_request`` handler, awaiting
``enter_room``, and keeps everything else of Rasa's class as it is (including
its use of the default namespace in this handler).
"""

import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from sanic import Blueprint
from socketio import AsyncServer

logger = logging.getLogger("rasa.core.channels.socketio")

SessionRequestHandler = Callable[[str, Optional[Dict[str, Any]]], Awaitable[None]]


class SocketIOInput(RasaSocketIOInput):
    """Rasa's socket.io input channel, awaiting ``enter_room``."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Builds Rasa's blueprint, then replaces its session_request handler.

        Args:
            on_new_message: Rasa's handler for a new user message.

        Returns:
            The socket.io blueprint.
        """
        socketio_webhook = super().blueprint(on_new_message)
        sio = self.sio
        if sio is None:  # pragma: no cover - Rasa's blueprint() always sets it
            raise RuntimeError("Rasa's SocketIOInput.blueprint() did not set self.sio")
        sio.on(
            "session_request",
            handler=self.session_request_handler(sio),
            namespace=self.namespace,
        )
        return socketio_webhook

    def session_request_handler(self, sio: AsyncServer) -> SessionRequestHandler:
        """Returns Rasa's session_request handler with ``enter_room`` awaited.

        Args:
            sio: The channel's socket.io server.
        """

        async def session_request(sid: str, data: Optional[Dict[str, Any]]) -> None:
            if data is None:
                data = {}
            if "session_id" not in data or data["session_id"] is None:
                data["session_id"] = uuid.uuid4().hex
            if self.session_persistence:
                await sio.enter_room(sid, data["session_id"])
            await sio.emit("session_confirm", data["session_id"], room=sid)
            logger.debug(f"User {sid} connected to socketIO endpoint.")

        return session_request
