"""The REST channel, for other servers only: ``bot.channels.rest.RestInput`` in credentials.yml.

Same address and JSON as Rasa's ``rest`` channel (``POST /webhooks/rest/webhook`` with
``{"sender": "...", "message": "..."}``, answered with the list of bot messages), but:

- **only with a bearer token**: every request carries ``Authorization: Bearer <REST_TOKEN>``
  (the ``token`` option, else the ``REST_TOKEN`` environment variable; ``make run`` makes one in
  ``var/rest_token``). Without a token set, the channel is off: it refuses every message. It is
  meant for a server of the council's that runs its own chat front end and keeps its own users'
  conversation ids; never put the token in a web page. Browsers are refused (a request whose
  ``Origin`` is another site gets 403), as no web page should hold the token.
- **no shared conversation**: ``sender`` is required, 1 to 64 characters of letters, digits,
  ``.``, ``_``, ``-`` and ``@``; ``:`` is not allowed, so a REST caller can never name a widget
  (``widget:...``) or socket.io (``socketio:...``) conversation.
- **limits**: a message of at most ``max_message_chars`` (500) characters, the server's body cap,
  and the rate limits per client and per conversation (``bot/channels/guard.py``).
- **clear errors**: a malformed body is a 400 JSON error, never a 500 or a traceback; a failed
  turn is a 502 (a slow one 504), so the caller can retry; nothing of the message is logged.
- an optional ``message_id`` (1 to 64 of ``[A-Za-z0-9_-]``) is passed to Rasa, for callers that
  retry. ``metadata`` and ``input_channel`` from the body are ignored.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels import guard
from bot.channels.guard import Refused
from bot.privacy import logs

logger = logging.getLogger(__name__)

TOKEN_ENV = "REST_TOKEN"
MIN_TOKEN_CHARS = 32
DEFAULT_RESPONSE_TIMEOUT = 60.0
SENDER_RE = re.compile(r"\A[A-Za-z0-9._@-]{1,64}\Z")
_BEARER_RE = re.compile(r"\ABearer\s+(\S+)\Z", re.IGNORECASE)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class RestConfigError(ValueError):
    """The REST channel's settings cannot work."""


class RestInput(InputChannel):
    """Rasa's REST channel for server-to-server use: bearer token, required sender, limits."""

    @classmethod
    def name(cls) -> str:
        """Name of the channel (also its URL prefix under /webhooks/)."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> "RestInput":
        """Creates the channel from its credentials.yml section.

        Args:
            credentials: ``token`` (else env ``REST_TOKEN``; none: the channel is off),
                ``max_message_chars`` (500) and ``response_timeout`` (seconds, 60).

        Raises:
            RestConfigError: if an option cannot work.
        """
        credentials = credentials or {}
        logs.install()  # this process handles what people type: keep it out of the logs
        return cls(
            token=credentials.get("token") or os.environ.get(TOKEN_ENV, ""),
            max_message_chars=credentials.get("max_message_chars", guard.DEFAULT_MAX_MESSAGE_CHARS),
            response_timeout=credentials.get("response_timeout", DEFAULT_RESPONSE_TIMEOUT),
        )

    def __init__(
        self,
        token: str = "",
        max_message_chars: int = guard.DEFAULT_MAX_MESSAGE_CHARS,
        response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
    ) -> None:
        """Creates the channel.

        Raises:
            RestConfigError: if the token is too short, or a limit is not a positive number.
        """
        if token and len(token) < MIN_TOKEN_CHARS:
            raise RestConfigError(
                f"{TOKEN_ENV} must have at least {MIN_TOKEN_CHARS} characters. Make one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        if isinstance(max_message_chars, bool) or not isinstance(max_message_chars, int) or max_message_chars < 1:
            raise RestConfigError("REST max_message_chars must be a whole number of at least 1.")
        if isinstance(response_timeout, bool) or not isinstance(response_timeout, (int, float)):
            raise RestConfigError("REST response_timeout must be a positive number of seconds.")
        if response_timeout <= 0:
            raise RestConfigError("REST response_timeout must be a positive number of seconds.")
        self._token = token.encode("utf-8") if token else None
        self.max_message_chars = max_message_chars
        self.response_timeout = float(response_timeout)
        if self._token is None:
            logger.warning(f"The REST channel is off: no {TOKEN_ENV} is set, so it refuses every message.")

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The channel's routes: ``GET /`` (health) and ``POST /webhook``."""
        rest = Blueprint(f"custom_webhook_{type(self).__name__}")

        @rest.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @rest.route("/webhook", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                said = await self._receive(request, on_new_message)
                return response.json(said, headers={"Cache-Control": "no-store"})
            except Refused as refusal:
                headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
                return refusal.response(headers, app=request.app)

        @rest.listener("before_server_start")
        async def harden(app: Any, _: Any) -> None:
            guard.harden_app(app)

        return rest

    async def _receive(self, request: Request, on_new_message: OnNewMessage) -> Any:
        if request.method != "POST":
            raise Refused(405, "use_post", "Send messages with POST.")
        if not guard.origin_allowed(request.headers.get("origin"), request.host, ()):
            raise Refused(403, "origin_not_allowed", "The REST channel is for servers, not web pages.")
        self._authorise(request)
        data = self._read_json(request)
        sender = data.get("sender")
        if not isinstance(sender, str) or not SENDER_RE.match(sender):
            raise Refused(
                400,
                "invalid_sender",
                "sender must be 1 to 64 letters, digits, '.', '_', '-' or '@': one id per conversation.",
            )
        text = guard.message_text(data.get("message"), self.max_message_chars)
        message_id = guard.message_id(data.get("message_id"))
        limiter = guard.limiter_for(request.app)
        limiter.check(limiter.client_of(request), sender)
        agent = getattr(request.app.ctx, "agent", None)
        if agent is not None and not agent.is_ready():
            raise Refused(503, "not_ready", "The assistant is starting. Try again in a minute.", retry_after=30)
        message = UserMessage(
            text, CollectingOutputChannel(), sender, input_channel=self.name(), message_id=message_id
        )
        return await guard.answer(on_new_message, message, self.response_timeout)

    def _authorise(self, request: Request) -> None:
        if self._token is None:
            raise Refused(403, "channel_off", f"The REST channel is off: the server has no {TOKEN_ENV}.")
        match = _BEARER_RE.match(request.headers.get("authorization", "").strip())
        given = match.group(1).encode("utf-8", "replace") if match else b""
        if not hmac.compare_digest(given, self._token):
            raise Refused(401, "unauthorised", "A valid bearer token is needed (Authorization: Bearer ...).")

    @staticmethod
    def _read_json(request: Request) -> Dict[str, Any]:
        try:
            data = json.loads((request.body or b"").decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise Refused(400, "invalid_json", 'The body must be a JSON object: {"sender": "...", "message": "..."}.')
        return data
