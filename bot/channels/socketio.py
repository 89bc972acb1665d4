"""Rasa's socket.io channel, for clients such as rasa-webchat, with signed sessions and limits.

Referenced from ``credentials.yml`` as ``bot.channels.socketio.SocketIOInput`` (the built-in
``socketio:`` key would load Rasa's class). Its ``name()`` stays ``"socketio"``, so the routes
(``/webhooks/socketio/``, the socket.io endpoint ``/socket.io``) are the same as Rasa's. It keeps
Rasa's events and options (``user_message_evt``, ``bot_message_evt``, ``namespace``,
``socketio_path``, ``jwt_key``/``jwt_method``) and changes what protects a conversation:

- **Sessions are made by the server** (``session_request_handler``). The session id a client gets
  in ``session_confirm`` is a signed, expiring token (``bot/channels/signing.py``, context
  ``socketio``, the same secret as the widget). A client that sends a genuine token back (a reload,
  a reconnect) rejoins its conversation and gets a renewed token; anything else (a made-up id, the
  id part of a token, a widget token, an expired token) starts a new conversation. A socket joins
  only the room of the session it was issued, so no second socket can listen in on or post into
  someone else's conversation by naming it.
- **Messages go to the socket's own session** (``message_handler``): the ``session_id`` a client
  puts in ``user_uttered`` is ignored; the conversation is the one bound to the socket. A socket
  with no session gets a short reply saying so (with the helplines), never silence.
- **Origins** (``origin_check``): a browser's ``Origin`` must be the server's own or one of
  ``allowed_origins`` (credentials.yml shares the widget's list); python-engineio refuses any other
  with 400 before a session opens, for long-polling and websockets alike.
- **Limits**: ``max_message_chars`` (500), the rate limits (``bot/channels/guard.py``). A refused
  message is answered with the reason (and the helplines when the person cannot go on).
- **No user text in logs**; ``metadata`` sent by the client is not stored. A malformed packet is
  refused with one line in the log, never a traceback (``packet_guard``, ``OneLineErrors``).
- With ``jwt_key`` set, a client must also connect with ``auth: {token: <JWT signed with it>}``,
  as in Rasa (for a site that signs its own users in).

The conversation is kept in the tracker as ``socketio:<id>``. With ``session_persistence: false``
a conversation lasts as long as its socket (``socketio:<socket id>``) and no token is accepted back.

Why this class also awaits ``enter_room``: rasa 3.6.21 calls ``sio.enter_room(sid, session_id)``
without ``await``. ``AsyncServer.enter_room`` is a coroutine since python-socketio 5.10, so with
``session_persistence: true`` Rasa's socket never joins its room and every ``bot_uttered`` event
reaches nobody (RasaHQ/rasa#13027, fixes proposed in #13148 and #13168, not released). We kept
python-socketio 5.18.1 (with python-engineio 4.15.1, past the heartbeat denial of service fixed in
4.13.2, GHSA-cgwc-pv48-fhj5, and the switch of message-queue payloads from pickle to JSON,
python-socketio PR #1502) rather than pin a 2023 release.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

import rasa.core.channels.channel
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput as RasaSocketIOInput
from rasa.core.channels.socketio import SocketIOOutput
from sanic import Blueprint, Sanic
from socketio import AsyncServer

from bot.channels import guard
from bot.channels.guard import Refused
from bot.channels.signing import DEFAULT_LIFETIME_S, SessionSigner
from bot.privacy import logs

logger = logging.getLogger("rasa.core.channels.socketio")

SECRET_ENV = "WIDGET_SECRET"
CONVERSATION_PREFIX = "socketio:"
_SESSION_KEY = "conversation"
_CLIENT_KEY = "client"

Handler = Callable[..., Awaitable[Any]]
OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class SocketIOConfigError(ValueError):
    """The socket.io channel's settings cannot work."""


class OneLineErrors(logging.Filter):
    """Turns a library's logged traceback into one line naming the error.

    python-engineio and python-socketio log a client's malformed packet (an unknown packet type,
    broken JSON) with a full traceback; what the client sent is no bug of the server.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keeps the record, without its traceback."""
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[0].__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _one_line_library_errors() -> None:
    for name in ("engineio.server", "socketio.server"):
        library_logger = logging.getLogger(name)
        if not any(isinstance(existing, OneLineErrors) for existing in library_logger.filters):
            library_logger.addFilter(OneLineErrors())


class SocketIOInput(RasaSocketIOInput):
    """Rasa's socket.io input channel with server-made signed sessions, an Origin allow-list and limits."""

    signer: Optional[SessionSigner]
    allowed_origins: Tuple[str, ...]

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> "SocketIOInput":
        """Creates the channel from its credentials.yml section.

        Args:
            credentials: Rasa's options, plus ``secret`` (else env ``WIDGET_SECRET``),
                ``allowed_origins``, ``max_message_chars`` (500) and ``session_lifetime_minutes`` (240).

        Raises:
            SocketIOConfigError: if the secret is missing or an option cannot work.
        """
        credentials = credentials or {}
        logs.install()  # this process handles what people type: keep it out of the logs
        channel = cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            credentials.get("session_persistence", False),
            credentials.get("socketio_path", "/socket.io"),
            credentials.get("jwt_key"),
            credentials.get("jwt_method", "HS256"),
            credentials.get("metadata_key", "metadata"),
        )
        channel.configure(
            secret=credentials.get("secret") or os.environ.get(SECRET_ENV, ""),
            allowed_origins=credentials.get("allowed_origins"),
            max_message_chars=credentials.get("max_message_chars", guard.DEFAULT_MAX_MESSAGE_CHARS),
            session_lifetime_minutes=credentials.get("session_lifetime_minutes", DEFAULT_LIFETIME_S / 60),
        )
        return channel

    def configure(
        self,
        secret: str,
        allowed_origins: Any = None,
        max_message_chars: int = guard.DEFAULT_MAX_MESSAGE_CHARS,
        session_lifetime_minutes: float = DEFAULT_LIFETIME_S / 60,
    ) -> None:
        """Sets this project's options (Rasa's ``__init__`` takes only Rasa's).

        Raises:
            SocketIOConfigError: if an option cannot work.
        """
        try:
            self.signer = SessionSigner(secret, "socketio", lifetime_s=60.0 * float(session_lifetime_minutes))
            self.allowed_origins = tuple(guard.allowed_origins_from(allowed_origins))
        except (ValueError, TypeError) as error:
            raise SocketIOConfigError(
                f"socket.io channel: {error}. The secret comes from {SECRET_ENV} (bot/server/serve.py makes "
                "one for local runs) or `secret:` in credentials.yml."
            ) from None
        if isinstance(max_message_chars, bool) or not isinstance(max_message_chars, int) or max_message_chars < 1:
            raise SocketIOConfigError("socket.io max_message_chars must be a whole number of at least 1.")
        self.max_message_chars = max_message_chars

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Rasa's options; this project's get safe defaults until ``configure`` (no secret: refuses to start)."""
        super().__init__(*args, **kwargs)
        self.signer = None
        self.allowed_origins = ()
        self.max_message_chars = guard.DEFAULT_MAX_MESSAGE_CHARS
        self._app: Optional[Sanic] = None

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """Builds Rasa's blueprint, then replaces its connect, session and message handlers.

        Args:
            on_new_message: Rasa's handler for a new user message.

        Raises:
            SocketIOConfigError: if the channel has no signing secret.
        """
        if self.signer is None:
            raise SocketIOConfigError(f"socket.io channel: no signing secret. Set {SECRET_ENV}.")
        socketio_webhook = super().blueprint(on_new_message)
        sio = self.sio
        if sio is None:  # pragma: no cover - Rasa's blueprint() always sets it
            raise RuntimeError("Rasa's SocketIOInput.blueprint() did not set self.sio")
        sio.eio.cors_allowed_origins = self.origin_check
        sio.eio.on("message", self.packet_guard(sio))
        _one_line_library_errors()
        sio.on("connect", handler=self.connect_handler(sio), namespace=self.namespace)
        sio.on("session_request", handler=self.session_request_handler(sio), namespace=self.namespace)
        sio.on(self.user_message_evt, handler=self.message_handler(sio, on_new_message), namespace=self.namespace)
        # Long-polling works with several server processes too: bot/channels/socketio_workers.py
        # takes each request to the process that holds its session.

        @socketio_webhook.listener("before_server_start")
        async def harden(app: Sanic, _: Any) -> None:
            self._app = app
            guard.harden_app(app)

        return socketio_webhook

    # ---- origins, packets and connections ---------------------------------------------------

    @staticmethod
    def packet_guard(sio: AsyncServer) -> Handler:
        """python-socketio's packet handler, refusing a malformed packet with one log line, not a traceback."""
        handle = sio._handle_eio_message

        async def guarded(eio_sid: str, data: Any) -> None:
            try:
                await handle(eio_sid, data)
            except (ValueError, TypeError, KeyError, IndexError, RecursionError) as error:
                logger.warning("socket.io: a malformed packet was refused (%s).", type(error).__name__)

        return guarded


    def origin_check(self, origin: Optional[str], environ: Dict[str, Any]) -> bool:
        """python-engineio's ``cors_allowed_origins``: the server's own origin or an allowed one."""
        return guard.origin_allowed(origin, environ.get("HTTP_HOST"), self.allowed_origins)

    def _client_of(self, environ: Dict[str, Any]) -> str:
        request = environ.get("sanic.request")
        peer = getattr(request, "ip", "") or environ.get("REMOTE_ADDR", "")
        limiter = guard.limiter_for(self._app) if self._app is not None else guard.RateLimiter.from_env()
        return guard.client_address(peer, environ.get("HTTP_X_FORWARDED_FOR"), limiter.proxies)

    def connect_handler(self, sio: AsyncServer) -> Handler:
        """Accepts a socket (Rasa's JWT check when ``jwt_key`` is set) and notes its client address."""

        async def connect(sid: str, environ: Dict[str, Any], auth: Optional[Dict[str, Any]] = None) -> bool:
            if self.jwt_key:
                token = auth.get("token") if isinstance(auth, dict) else None
                if not token or not rasa.core.channels.channel.decode_bearer_token(
                    token, self.jwt_key, self.jwt_algorithm
                ):
                    return False
            await sio.save_session(sid, {_CLIENT_KEY: self._client_of(environ)}, namespace=self.namespace)
            return True

        return connect

    # ---- sessions ---------------------------------------------------------------------------

    def session_request_handler(self, sio: AsyncServer) -> Handler:
        """Issues a session (or renews the genuine one sent back) and joins the socket to it only."""

        async def session_request(sid: str, data: Any = None) -> None:
            assert self.signer is not None
            session = await sio.get_session(sid, namespace=self.namespace)
            previous = session.get(_SESSION_KEY)
            if self.session_persistence:
                claimed = data.get("session_id") if isinstance(data, dict) else None
                session_id = self.signer.verify(claimed)
                token = self.signer.token_for(session_id) if session_id else self.signer.new_token()
                conversation = CONVERSATION_PREFIX + token.split(".", 1)[0]
            else:
                token, conversation = sid, CONVERSATION_PREFIX + sid
            if previous and previous != conversation:
                await sio.leave_room(sid, previous, namespace=self.namespace)
            session[_SESSION_KEY] = conversation
            await sio.save_session(sid, session, namespace=self.namespace)
            if self.session_persistence:
                await sio.enter_room(sid, conversation, namespace=self.namespace)
            await sio.emit("session_confirm", token, room=sid, namespace=self.namespace)

        return session_request

    # ---- messages -----------------------------------------------------------------------------

    def message_handler(self, sio: AsyncServer, on_new_message: OnNewMessage) -> Handler:
        """Checks a message and hands it to Rasa in the socket's own conversation."""

        async def handle_message(sid: str, data: Any = None) -> None:
            session = await sio.get_session(sid, namespace=self.namespace)
            conversation = session.get(_SESSION_KEY)
            try:
                if not conversation:
                    raise Refused(400, "no_session", "This chat has not started. Please reload the page.")
                typed = data.get("message") if isinstance(data, dict) else None
                text = guard.message_text(typed, self.max_message_chars)
                limiter = guard.limiter_for(self._app) if self._app is not None else None
                if limiter is not None:
                    limiter.check(session.get(_CLIENT_KEY) or sid, conversation)
            except Refused as refusal:
                await self._tell(sio, sid, refusal)
                return
            output = SocketIOOutput(sio, self.bot_message_evt)
            message = UserMessage(text, output, conversation, input_channel=self.name())
            try:
                with logs.user_text(text):
                    await on_new_message(message)
            except Exception as error:  # noqa: BLE001 - the person is told, never left in silence
                logger.error("The assistant failed on a socket.io message (%s).", type(error).__name__)
                await self._tell(sio, conversation, Refused(502, "bot_error", "Sorry, something went wrong."))

        return handle_message

    async def _tell(self, sio: AsyncServer, room: str, refusal: Refused) -> None:
        """Sends a refusal to the person as a bot message (with the helplines when they cannot go on)."""
        text = refusal.message
        if refusal.needs_help() or refusal.code == "no_session":
            text = f"{text} {guard.helplines(self._app)}".strip()
        await sio.emit(self.bot_message_evt, {"text": text}, room=room, namespace=self.namespace)
