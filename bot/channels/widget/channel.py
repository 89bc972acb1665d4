"""Embeddable web chat widget channel (``bot.channels.widget.WidgetInput``).

Plain HTTP + JSON with no cookies and no server state apart from Rasa's tracker
store, so it works behind any load balancer and against several Rasa replicas.

Routes, under ``/webhooks/widget/``:

- ``GET /``: health check.
- ``GET /widget.js`` and ``GET /widget.css``: the widget; one ``<script>`` tag
  embeds it.
- ``GET /demo``: a demo host page with the embed snippet and a live widget.
- ``GET /config``: title, greeting, exit URL and message limit for the widget.
- ``POST /session``: a new conversation token ``id.issued.signature``
  (``bot/channels/signing.py``): made by the server, signed, good for
  ``session_lifetime_minutes`` (default 240) and renewed while the talk goes on.
- ``POST /message``: ``{"token", "text"}`` (or ``{"token", "payload"}`` for a
  button, and an optional ``"message_id"`` the widget repeats when it retries)
  gives a JSON list of bot messages ``{"text", "buttons"}``. A token older than a
  minute comes back renewed in the ``X-Chat-Token`` header.
- ``POST /history`` with ``{"token"}``: the whole retained conversation, rebuilt
  from the tracker store. Tokens never go in a URL: ``GET`` is refused.
- ``POST /forget`` with ``{"token"}``: deletes the conversation on the server
  (the widget's quick exit and "close and forget" send it with ``sendBeacon``).
  A genuine token that has expired may still delete its conversation.

Every refused request gets a JSON error (``{"error", "message"}``) with its
status: 400 malformed, 401 bad token, 403 origin not allowed, 405 wrong method,
413 too big, 429 too fast (with ``Retry-After``), 502/503/504 when the assistant
fails, is starting or is slow. Limits and origins: ``bot/channels/guard.py``.

CORS and origins: a browser request whose ``Origin`` is neither this server nor
one of ``allowed_origins`` is refused with 403 (not just hidden by the browser);
only allowed origins are reflected, never ``*``. Request bodies are parsed as
JSON whatever their ``Content-Type``; the widget sends ``text/plain`` so that its
cross-origin calls are CORS "simple requests" that need no preflight. Preflights
from other clients are answered from the same allow-list by a request middleware
placed before Rasa's app-wide Sanic-CORS, which would otherwise answer every
``OPTIONS`` request with Rasa's ``--cors``.

The tracker keeps a widget conversation as ``widget:<id>``, so no other channel
can name it (REST ids may not contain ":").
"""

import base64
import gzip
import hashlib
import html
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)
from urllib.parse import urlsplit

from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    UserMessage,
)
from rasa.shared.core.events import BotUttered, Event, UserUttered
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels import guard
from bot.channels.guard import Refused
from bot.channels.signing import MIN_SECRET_CHARS, SessionSigner
from bot.channels.stores import forget_conversation, visible_events
from bot.privacy import logs

logger = logging.getLogger(__name__)

SECRET_ENV = "WIDGET_SECRET"
DEFAULT_EXIT_URL = "https://www.bbc.co.uk/weather"
DEFAULT_TITLE = "Chat with us"
DEFAULT_GREETING = "Hi! Type your question below and I will try to help."
DEFAULT_MAX_MESSAGE_CHARS = 500
DEFAULT_RESPONSE_TIMEOUT = 60.0
DEFAULT_SESSION_MINUTES = 240
HISTORY_LIMIT = 200
STATIC_DIR = Path(__file__).resolve().parent / "static"
CONVERSATION_PREFIX = "widget:"
TOKEN_HEADER = "X-Chat-Token"
# A token older than this comes back renewed with an answer.
RENEW_AFTER_S = 60.0
_STYLE_RE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
# Sanic-CORS skips a response whose request carries this marker
# (sanic_cors.core.SANIC_CORS_EVALUATED), so Rasa's `--cors` option can never
# add a second Access-Control-Allow-Origin (or `*`) to the widget's routes.
_SANIC_CORS_EVALUATED = "_sanic_cors_e"
_STATIC_TYPES = {
    "widget.js": "application/javascript; charset=utf-8",
    "widget.css": "text/css; charset=utf-8",
}

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
JsonResult = Tuple[Any, int]


class WidgetConfigError(RasaException):
    """The widget channel's settings are missing or unsafe."""


# The widget's refusals are the channels' shared JSON errors (kept under this name for callers).
WidgetRequestError = Refused


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    etag: str


def normalise_origin(origin: object) -> str:
    """Returns ``scheme://host[:port]`` for an allow-list entry.

    Args:
        origin: One entry of ``allowed_origins``.

    Raises:
        WidgetConfigError: For ``*``, ``null`` or anything but an http(s) origin.
    """
    try:
        return guard.allowed_origins_from([origin])[0]
    except guard.SettingsError as error:
        raise WidgetConfigError(f"Widget {error}") from None


def _as_list(value: Any) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [item for item in re.split(r"[\s,]+", value) if item]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise WidgetConfigError("Widget allowed_origins must be a list of origins.")


def _clean_buttons(buttons: Any) -> List[Dict[str, str]]:
    """Keeps only the title and payload of well-formed buttons."""
    cleaned: List[Dict[str, str]] = []
    for button in buttons if isinstance(buttons, list) else []:
        if not isinstance(button, Mapping):
            continue
        title, payload = button.get("title"), button.get("payload")
        if title is None or payload is None:
            continue
        cleaned.append({"title": str(title), "payload": str(payload)})
    return cleaned


_TEL_HREF = re.compile(r"\Atel:\+?[0-9]{3,15}\Z")
_LINK_TEXT_CHARS = 200


def clean_links(custom: Any) -> List[Dict[str, str]]:
    """The well-formed links of a message's custom data (``{"links": [...]}``), others dropped.

    A link is ``{"type": "tel" | "url", "href", "text", "label"}``. Its ``href`` must be a phone
    number (``tel:`` and digits) or an https address: the actions build them from the knowledge
    file or an imported directory, never from what a user typed, and this checks it again.
    """
    links = custom.get("links") if isinstance(custom, Mapping) else None
    cleaned: List[Dict[str, str]] = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, Mapping):
            continue
        kind, href = link.get("type"), link.get("href")
        text, label = link.get("text"), link.get("label") or link.get("text")
        if not all(isinstance(v, str) and 0 < len(v) <= _LINK_TEXT_CHARS for v in (text, label)):
            continue
        if kind == "tel" and isinstance(href, str) and _TEL_HREF.match(href):
            cleaned.append({"type": "tel", "href": href, "text": str(text), "label": str(label)})
        elif kind == "url" and isinstance(href, str) and len(href) <= 500:
            parts = urlsplit(href)
            if parts.scheme == "https" and parts.hostname and not parts.username:
                cleaned.append({"type": "url", "href": href, "text": str(text), "label": str(label)})
    return cleaned


def public_messages(collected: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The widget's view of a reply: texts and buttons, with each message's links folded into it.

    Rasa's collecting channel sends a message's custom data (the links) as a message of its own
    right after its text: here the links go back with that text.
    """
    out: List[Dict[str, Any]] = []
    for message in collected:
        links = clean_links(message.get("custom"))
        shown = public_message(message)
        if shown is None and links and out:
            out[-1].setdefault("links", []).extend(links)
            continue
        if links:
            shown = {**(shown or {}), "links": links}
        if shown:
            out.append(shown)
    return out


def public_message(message: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """Returns the widget's view of a collected bot message, or ``None``.

    Args:
        message: A message from ``CollectingOutputChannel.messages``.
    """
    result: Dict[str, Any] = {}
    text = message.get("text")
    if isinstance(text, str) and text:
        result["text"] = text
    buttons = _clean_buttons(message.get("buttons"))
    if buttons:
        result["buttons"] = buttons
    return result or None


def history_turns(events: Iterable[Event]) -> List[Dict[str, Any]]:
    """Rebuilds the visible conversation (user and bot turns only).

    Bot texts without buttons are split on blank lines, as Rasa's collecting
    output channel does for live answers. A user turn that repeats the payload
    of a button the bot just offered shows that button's title instead.

    Args:
        events: The tracker's events.

    Returns:
        At most ``HISTORY_LIMIT`` turns ``{"sender", "text", "buttons"?}``.
    """
    turns: List[Dict[str, Any]] = []
    offered: Dict[str, str] = {}
    for event in events:
        if isinstance(event, UserUttered):
            if isinstance(event.text, str) and event.text:
                text = offered.get(event.text, event.text)
                turns.append({"sender": "user", "text": text})
            offered = {}
        elif isinstance(event, BotUttered):
            data = event.data or {}
            buttons = _clean_buttons(data.get("buttons") or data.get("quick_replies"))
            links = clean_links(data.get("custom"))
            text = event.text if isinstance(event.text, str) else ""
            if buttons:
                turns.append({"sender": "bot", "text": text, "buttons": buttons})
                offered.update({b["payload"]: b["title"] for b in buttons})
            else:
                for part in text.strip().split("\n\n"):
                    if part:
                        turns.append({"sender": "bot", "text": part})
            if links and turns and turns[-1]["sender"] == "bot":
                turns[-1]["links"] = links
    return turns[-HISTORY_LIMIT:]


class WidgetInput(InputChannel):
    """Rasa input channel for the embeddable web chat widget."""

    @classmethod
    def name(cls) -> str:
        """Name of the channel (also its URL prefix under /webhooks/)."""
        return "widget"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> "WidgetInput":
        """Creates the channel from its credentials.yml section.

        Args:
            credentials: Options ``secret`` (else env ``WIDGET_SECRET``),
                ``allowed_origins``, ``max_message_chars``, ``exit_url``,
                ``title``, ``greeting``, ``response_timeout`` (seconds) and
                ``session_lifetime_minutes``.

        Raises:
            WidgetConfigError: If the secret is missing or an option is unsafe.
        """
        credentials = credentials or {}
        logs.install()  # this process handles what people type: keep it out of the logs
        return cls(
            secret=credentials.get("secret") or os.environ.get(SECRET_ENV, ""),
            allowed_origins=_as_list(credentials.get("allowed_origins")),
            max_message_chars=credentials.get("max_message_chars", DEFAULT_MAX_MESSAGE_CHARS),
            exit_url=credentials.get("exit_url") or DEFAULT_EXIT_URL,
            title=credentials.get("title") or DEFAULT_TITLE,
            greeting=credentials.get("greeting") or DEFAULT_GREETING,
            response_timeout=credentials.get("response_timeout", DEFAULT_RESPONSE_TIMEOUT),
            session_lifetime_minutes=credentials.get("session_lifetime_minutes", DEFAULT_SESSION_MINUTES),
        )

    def __init__(
        self,
        secret: str,
        allowed_origins: Sequence[str] = (),
        max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS,
        exit_url: str = DEFAULT_EXIT_URL,
        title: str = DEFAULT_TITLE,
        greeting: str = DEFAULT_GREETING,
        response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
        session_lifetime_minutes: float = DEFAULT_SESSION_MINUTES,
    ) -> None:
        """Creates the channel, checking every option.

        Raises:
            WidgetConfigError: If the secret is missing or an option is unsafe.
        """
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise WidgetConfigError(
                "The widget channel needs a secret of at least "
                f"{MIN_SECRET_CHARS} characters to sign conversation tokens. Set "
                f"the {SECRET_ENV} environment variable (bot/server/serve.py does this "
                "for local runs) or `secret:` under bot.channels.widget.WidgetInput "
                'in credentials.yml. Make one with: python -c "import secrets; '
                'print(secrets.token_urlsafe(32))"'
            )
        if (
            isinstance(max_message_chars, bool)
            or not isinstance(max_message_chars, int)
            or not 1 <= max_message_chars <= 5000
        ):
            raise WidgetConfigError("Widget max_message_chars must be a whole number from 1 to 5000.")
        exit_parts = urlsplit(exit_url) if isinstance(exit_url, str) else None
        if exit_parts is None or exit_parts.scheme != "https" or not exit_parts.netloc:
            raise WidgetConfigError("Widget exit_url must be an https:// address of a neutral site.")
        for option, value, limit in (("title", title, 80), ("greeting", greeting, 500)):
            if not isinstance(value, str) or not value.strip() or len(value) > limit:
                raise WidgetConfigError(f"Widget {option} must be text of 1 to {limit} characters.")
        if (
            isinstance(response_timeout, bool)
            or not isinstance(response_timeout, (int, float))
            or response_timeout <= 0
        ):
            raise WidgetConfigError("Widget response_timeout must be a positive number.")
        if (
            isinstance(session_lifetime_minutes, bool)
            or not isinstance(session_lifetime_minutes, (int, float))
            or not 1 <= session_lifetime_minutes <= 24 * 60
        ):
            raise WidgetConfigError("Widget session_lifetime_minutes must be a number from 1 to 1440.")
        self.allowed_origins = frozenset(normalise_origin(o) for o in allowed_origins)
        self.max_message_chars = max_message_chars
        self.exit_url = exit_url
        self.title = title.strip()
        self.greeting = greeting.strip()
        self.response_timeout = float(response_timeout)
        self.signer = SessionSigner(secret, "widget", lifetime_s=60.0 * session_lifetime_minutes)
        # JSON may escape one character as up to 12 bytes ("\ud83d\ude00").
        self.max_body_bytes = 1024 + 12 * max_message_chars
        self._assets: Dict[str, _Asset] = {}

    # ---- routes ----------------------------------------------------------------

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """Groups the widget's endpoints.

        Args:
            on_new_message: Rasa's handler for a new user message.

        Raises:
            WidgetConfigError: If a static file of the widget is missing.
        """
        for filename in (*_STATIC_TYPES, "demo.html"):
            if not (STATIC_DIR / filename).is_file():
                raise WidgetConfigError(f"Widget file missing: {STATIC_DIR / filename}")
        widget = Blueprint(f"widget_webhook_{type(self).__name__}")

        @widget.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @widget.route("/widget.js", methods=["GET"])
        async def widget_js(request: Request) -> HTTPResponse:
            return self._static_response(request, "widget.js")

        @widget.route("/widget.css", methods=["GET"])
        async def widget_css(request: Request) -> HTTPResponse:
            return self._static_response(request, "widget.css")

        @widget.route("/demo", methods=["GET"])
        async def demo(request: Request) -> HTTPResponse:
            return self._demo_response(request)

        @widget.route("/config", methods=["GET", "OPTIONS"])
        async def config(request: Request) -> HTTPResponse:
            return await self._api(request, self._handle_config)

        @widget.route("/session", methods=["POST", "OPTIONS"])
        async def session(request: Request) -> HTTPResponse:
            return await self._api(request, self._handle_session)

        async def handle_message(request: Request) -> JsonResult:
            return await self._handle_message(request, on_new_message)

        @widget.route("/message", methods=["POST", "OPTIONS"])
        async def message(request: Request) -> HTTPResponse:
            return await self._api(request, handle_message)

        @widget.route("/history", methods=["GET", "POST", "OPTIONS"])
        async def history(request: Request) -> HTTPResponse:
            return await self._api(request, self._handle_history)

        @widget.route("/forget", methods=["POST", "OPTIONS"])
        async def forget(request: Request) -> HTTPResponse:
            return await self._api(request, self._handle_forget)

        @widget.listener("before_server_start")
        async def answer_preflight_first(app: Sanic, _: Any) -> None:
            # In a Rasa server, the app-wide Sanic-CORS request middleware answers
            # every OPTIONS request itself (with Rasa's --cors origins). Answer the
            # widget's preflights before it, from the widget's own allow-list.
            routes = f"{app.name}.{widget.name}."

            async def widget_preflight(request: Request) -> Optional[HTTPResponse]:
                if request.method == "OPTIONS" and (request.name or "").startswith(routes):
                    return self._preflight(request, self._cors_headers(request))
                return None

            app.request_middleware.appendleft(widget_preflight)
            guard.harden_app(app)

        return widget

    # ---- API handlers ------------------------------------------------------------

    async def _handle_config(self, request: Request) -> JsonResult:
        return {
            "title": self.title,
            "greeting": self.greeting,
            "exit_url": self.exit_url,
            "max_message_chars": self.max_message_chars,
        }, 200

    async def _handle_session(self, request: Request) -> JsonResult:
        self._require_post(request)
        if len(request.body or b"") > self.max_body_bytes:
            raise Refused(413, "body_too_large", "The request is too big.")
        limiter = guard.limiter_for(request.app)
        limiter.check(limiter.client_of(request), None)
        return {"token": self.signer.new_token()}, 201

    async def _handle_message(self, request: Request, on_new_message: OnNewMessage) -> JsonResult:
        self._require_post(request)
        data = self._read_json(request)
        token = data.get("token")
        session_id = self._session_id(token)
        text = self._user_text(data)
        message_id = guard.message_id(data.get("message_id"))
        conversation_id = CONVERSATION_PREFIX + session_id
        limiter = guard.limiter_for(request.app)
        limiter.check(limiter.client_of(request), conversation_id)
        agent = getattr(request.app.ctx, "agent", None)
        if agent is not None and not agent.is_ready():
            raise Refused(503, "not_ready", "The assistant is starting. Try again in a minute.", retry_after=30)
        logger.debug("Widget message received (%d characters).", len(text))
        collector = CollectingOutputChannel()
        message = UserMessage(text, collector, conversation_id, input_channel=self.name(), message_id=message_id)
        said = await guard.answer(on_new_message, message, self.response_timeout)
        self._renew(request, token)
        return public_messages(said), 200

    async def _handle_history(self, request: Request) -> JsonResult:
        if request.method != "POST":
            raise Refused(405, "use_post", "Send the token in the body of a POST, never in the address.")
        token = self._read_json(request).get("token")
        session_id = self._session_id(token)
        agent = getattr(request.app.ctx, "agent", None)
        if getattr(agent, "tracker_store", None) is None:
            raise Refused(503, "not_ready", "The assistant is starting. Try again in a minute.", retry_after=30)
        try:
            events = await visible_events(agent, CONVERSATION_PREFIX + session_id, 2 * HISTORY_LIMIT)
        except Exception as exc:
            logger.error("Could not read a widget conversation (%s).", type(exc).__name__)
            raise Refused(503, "history_unavailable", "We could not load your chat. Try again.", retry_after=5)
        self._renew(request, token)
        return history_turns(events), 200

    async def _handle_forget(self, request: Request) -> JsonResult:
        self._require_post(request)
        token = self._read_json(request).get("token")
        if not isinstance(token, str) or not token:
            raise Refused(400, "invalid_field", "The token must be a non-empty string.")
        # An expired token still proves whose conversation it was: deleting it is always allowed.
        verified = self.signer.check(token, ignore_expiry=True)
        if verified is None:
            raise Refused(401, "invalid_token", "This chat has ended. Please start a new one.")
        agent = getattr(request.app.ctx, "agent", None)
        if getattr(agent, "tracker_store", None) is None:
            raise Refused(503, "not_ready", "The assistant is starting. Try again in a minute.", retry_after=30)
        try:
            await forget_conversation(agent, CONVERSATION_PREFIX + verified.session_id)
        except Exception as exc:
            logger.error("Could not delete a widget conversation (%s).", type(exc).__name__)
            raise Refused(503, "forget_failed", "We could not delete your chat just now. Try again.", retry_after=5)
        return {"deleted": True}, 200

    # ---- request checks ------------------------------------------------------------

    @staticmethod
    def _require_post(request: Request) -> None:
        if request.method != "POST":
            raise Refused(405, "use_post", "This address only takes POST requests.")

    def _read_json(self, request: Request) -> Dict[str, Any]:
        body = request.body or b""
        if len(body) > self.max_body_bytes:
            raise Refused(413, "body_too_large", "The request is too big.")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise Refused(400, "invalid_json", "The request must be a JSON object.")
        return data

    def _session_id(self, token: object) -> str:
        if not isinstance(token, str) or not token:
            raise Refused(400, "invalid_field", "The token must be a non-empty string.")
        session_id = self.signer.verify(token)
        if session_id is None:
            raise Refused(401, "invalid_token", "This chat has ended. Please start a new one.")
        return session_id

    def _renew(self, request: Request, token: object) -> None:
        """Sends a renewed token with the answer when the one used is over a minute old."""
        renewed = self.signer.renew(token, min_age_s=RENEW_AFTER_S)
        if renewed:
            request.ctx.widget_headers = {TOKEN_HEADER: renewed}

    def _user_text(self, data: Mapping[str, Any]) -> str:
        text, payload = data.get("text"), data.get("payload")
        if text is not None and payload is not None:
            raise Refused(400, "invalid_field", "Send either text or payload, not both.")
        return guard.message_text(text if text is not None else payload, self.max_message_chars)

    # ---- responses -------------------------------------------------------------------

    def _origin_allowed(self, origin: Optional[str]) -> bool:
        if not origin:
            return False
        try:
            return normalise_origin(origin) in self.allowed_origins
        except WidgetConfigError:
            return False

    def _cors_headers(self, request: Request) -> Dict[str, str]:
        setattr(request.ctx, _SANIC_CORS_EVALUATED, "1")
        headers = {"Vary": "Origin", "X-Content-Type-Options": "nosniff"}
        origin = request.headers.get("origin")
        if self._origin_allowed(origin):
            headers["Access-Control-Allow-Origin"] = str(origin)
            headers["Access-Control-Expose-Headers"] = TOKEN_HEADER
        return headers

    async def _api(self, request: Request, handler: Callable[[Request], Awaitable[JsonResult]]) -> HTTPResponse:
        headers = self._cors_headers(request)
        if request.method == "OPTIONS":
            return self._preflight(request, headers)
        try:
            if not guard.origin_allowed(request.headers.get("origin"), request.host, self.allowed_origins):
                raise Refused(403, "origin_not_allowed", "This site may not use the chat.")
            body, status = await handler(request)
        except Refused as error:
            return error.response(headers, app=request.app)
        headers.update(getattr(request.ctx, "widget_headers", None) or {})
        headers["Cache-Control"] = "no-store"
        return response.json(body, status=status, headers=headers)

    def _preflight(self, request: Request, headers: Dict[str, str]) -> HTTPResponse:
        if "Access-Control-Allow-Origin" not in headers:
            return response.json(
                {"error": "origin_not_allowed", "message": "This site may not use the chat."},
                status=403,
                headers=headers,
            )
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600",
            }
        )
        return response.empty(status=204, headers=headers)

    def _asset(self, filename: str) -> _Asset:
        asset = self._assets.get(filename)
        if asset is None:
            body = (STATIC_DIR / filename).read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            asset = _Asset(body, gzip.compress(body, 9, mtime=0), etag)
            self._assets[filename] = asset
        return asset

    def _static_response(self, request: Request, filename: str) -> HTTPResponse:
        asset = self._asset(filename)
        headers = self._cors_headers(request)
        headers.update(
            {
                "Cache-Control": "public, max-age=300",
                "ETag": asset.etag,
                "Vary": "Origin, Accept-Encoding",
                "Cross-Origin-Resource-Policy": "cross-origin",
            }
        )
        if request.headers.get("if-none-match") == asset.etag:
            return response.empty(status=304, headers=headers)
        body = asset.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped
            headers["Content-Encoding"] = "gzip"
        return response.raw(body, headers=headers, content_type=_STATIC_TYPES[filename])

    def _demo_response(self, request: Request) -> HTTPResponse:
        template = self._asset("demo.html").body.decode("utf-8")
        base = f"{request.scheme}://{request.host}{request.path.rsplit('/demo', 1)[0]}/"
        snippet = (
            f'<script src="{html.escape(base)}widget.js" '
            f'data-title="{html.escape(self.title)}" data-primary-color="#1d70b8" '
            'data-position="right" defer></script>'
        )
        page = template.replace("{{EMBED_SNIPPET}}", html.escape(snippet))
        style_hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode() + "'"
            for css in _STYLE_RE.findall(page)
        )
        csp = (
            "default-src 'none'; script-src 'self'; connect-src 'self'; "
            f"style-src 'self' {style_hashes}; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        headers = self._cors_headers(request)
        headers.update(
            {
                "Content-Security-Policy": csp,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            }
        )
        return response.html(page, headers=headers)
