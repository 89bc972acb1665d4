"""What every public channel checks before a message reaches Rasa, and what every response carries.

- **Who is asking** (``client_address``): the socket's peer address; behind a reverse proxy, the
  address in ``X-Forwarded-For`` — but only when the peer is one of ``TRUSTED_PROXIES`` (a comma
  separated list of addresses or networks, e.g. ``127.0.0.1,10.0.0.0/8``). Anyone else could
  write any address there.
- **How fast** (``RateLimiter``): a token bucket per client and one per conversation, refilled at
  ``RATE_LIMIT_CLIENT_PER_MINUTE`` (default 240) and ``RATE_LIMIT_CONVERSATION_PER_MINUTE``
  (default 30) messages a minute, holding a quarter of a minute's worth (at least 5) for bursts. 0
  turns a limit off. A refused message gets 429 and ``Retry-After``. Each server process counts on
  its own, so with N processes a client can get up to N times the burst before the first 429.
- **From where** (``origin_allowed``): a browser's ``Origin`` must be the server's own or one of
  the allowed origins; requests without one (servers, command-line tools) are not browsers.
- **What every response carries** (``harden_app``, once per Sanic app): ``X-Content-Type-Options:
  nosniff`` and ``Referrer-Policy: no-referrer``; ``/`` answers ``{"status": "ok"}`` instead of
  Rasa's version banner; the body of any request is capped at ``MAX_BODY_BYTES`` (Sanic answers a
  bigger one with 413 before reading it) and Sanic's own errors are JSON.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from sanic import Sanic, response
from sanic.exceptions import SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.privacy import logs

if TYPE_CHECKING:  # Rasa is imported only where a message is handed to it (the action server needs none)
    from rasa.core.channels.channel import UserMessage

logger = logging.getLogger(__name__)

CLIENT_LIMIT_ENV = "RATE_LIMIT_CLIENT_PER_MINUTE"
CONVERSATION_LIMIT_ENV = "RATE_LIMIT_CONVERSATION_PER_MINUTE"
TRUSTED_PROXIES_ENV = "TRUSTED_PROXIES"
DEFAULT_CLIENT_PER_MINUTE = 240
DEFAULT_CONVERSATION_PER_MINUTE = 30
MIN_BURST = 5
# Buckets not touched for this long are full again, so they are forgotten.
IDLE_FORGET_S = 120.0
MAX_BUCKETS = 100_000
# The largest request body the server reads at all (any route). A message is capped far below.
MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_MESSAGE_CHARS = 500
_ERROR_CODES = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthorised", "This request needs a valid token."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not take that kind of request."),
    408: ("request_timeout", "The request took too long to arrive."),
    413: ("body_too_large", "The request is too big."),
    416: ("bad_range", "That part of the file does not exist."),
    503: ("unavailable", "The assistant is not available just now. Try again in a minute."),
}
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_HARDENED = "_lancs_hardened"
_LIMITER = "lancs_rate_limiter"
_MESSAGE_ID = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class SettingsError(ValueError):
    """A limit or proxy setting that cannot work."""


class Refused(Exception):
    """A request a channel refuses, answered as a JSON error with ``status``."""

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[int] = None) -> None:
        """Creates the refusal.

        Args:
            status: the HTTP status (400, 401, 403, 405, 413, 429, 503, ...).
            code: a short machine-readable code.
            message: plain English a person may read.
            retry_after: seconds to wait (429, 503), sent as ``Retry-After``.
        """
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def body(self, help_text: str = "") -> Dict[str, Any]:
        """The JSON body of the refusal (with ``help``: the helplines, when given)."""
        body = {"error": self.code, "message": self.message}
        if help_text:
            body["help"] = help_text
        return body

    def needs_help(self) -> bool:
        """Whether the person is left without an answer (too fast, or the assistant failed)."""
        return self.status == 429 or self.status >= 500

    def headers(self) -> Dict[str, str]:
        """The headers of the refusal."""
        headers = {"Cache-Control": "no-store"}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def response(self, extra_headers: Optional[Mapping[str, str]] = None, app: Optional[Sanic] = None) -> HTTPResponse:
        """The refusal as a Sanic response; with the helplines when ``needs_help`` and ``app`` is given."""
        headers = {**(extra_headers or {}), **self.headers()}
        help_text = helplines(app) if app is not None and self.needs_help() else ""
        return response.json(self.body(help_text), status=self.status, headers=headers)


# ---- the helplines, for a person the assistant cannot answer --------------------------------------

HELPLINES_RESPONSE = "utter_safety_fallback_helplines"
DOMAIN_FILE = Path(__file__).resolve().parents[2] / "domain.yml"


@functools.lru_cache(maxsize=1)
def _helplines_in_domain_file() -> str:
    import yaml

    try:
        domain = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))
        return str(domain["responses"][HELPLINES_RESPONSE][0]["text"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        logger.error("The helplines response %s is missing from %s.", HELPLINES_RESPONSE, DOMAIN_FILE)
        return ""


def helplines(app: Optional[Sanic]) -> str:
    """The national helplines line (domain.yml ``utter_safety_fallback_helplines``), never an error.

    From the loaded model's domain when there is one, else from domain.yml itself.
    """
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    try:
        return str(agent.domain.responses[HELPLINES_RESPONSE][0]["text"])  # type: ignore[union-attr]
    except (AttributeError, KeyError, IndexError, TypeError):
        return _helplines_in_domain_file()


# ---- settings -----------------------------------------------------------------------------------


def per_minute(environ: Mapping[str, str], name: str, default: int) -> int:
    """Reads a whole number of messages a minute (0 = no limit) from the environment."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number of messages a minute (0 = no limit), not {raw!r}")
    if value < 0:
        raise SettingsError(f"{name} must be 0 (no limit) or more, not {value}")
    return value


def trusted_proxies(environ: Mapping[str, str]) -> Tuple[Network, ...]:
    """Reads ``TRUSTED_PROXIES``: addresses or networks, separated by commas or spaces."""
    networks = []
    for item in environ.get(TRUSTED_PROXIES_ENV, "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SettingsError(f"{TRUSTED_PROXIES_ENV}: {item!r} is not an IP address or network")
    return tuple(networks)


def _is_trusted(address: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(peer: str, forwarded_for: Optional[str], proxies: Tuple[Network, ...]) -> str:
    """The client's address: the peer, or from ``X-Forwarded-For`` when the peer is a trusted proxy.

    The header is read from the right (the address the nearest proxy saw) and the first address
    that is not itself a trusted proxy is the client.

    Args:
        peer: the address of the socket's other end.
        forwarded_for: the ``X-Forwarded-For`` header, if any.
        proxies: the trusted proxies.
    """
    if not proxies or not forwarded_for or not _is_trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


# ---- rate limits --------------------------------------------------------------------------------


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """Token buckets per client and per conversation, in this process's memory."""

    client_per_minute: int = DEFAULT_CLIENT_PER_MINUTE
    conversation_per_minute: int = DEFAULT_CONVERSATION_PER_MINUTE
    proxies: Tuple[Network, ...] = ()
    clock: Callable[[], float] = time.monotonic
    _buckets: Dict[Tuple[str, str], _Bucket] = field(default_factory=dict)
    _next_sweep: float = 0.0

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "RateLimiter":
        """Reads the limits and the trusted proxies from the environment.

        Raises:
            SettingsError: if a setting cannot work.
        """
        environ = os.environ if environ is None else environ
        return cls(
            client_per_minute=per_minute(environ, CLIENT_LIMIT_ENV, DEFAULT_CLIENT_PER_MINUTE),
            conversation_per_minute=per_minute(environ, CONVERSATION_LIMIT_ENV, DEFAULT_CONVERSATION_PER_MINUTE),
            proxies=trusted_proxies(environ),
        )

    def client_of(self, request: Request) -> str:
        """The client address of a Sanic request (see ``client_address``)."""
        return client_address(request.ip or "", request.headers.get("x-forwarded-for"), self.proxies)

    def _take(self, kind: str, key: str, per_minute_limit: int, now: float) -> Optional[float]:
        """Takes one token; returns the seconds until one is free if there is none."""
        if per_minute_limit <= 0:
            return None
        rate = per_minute_limit / 60.0
        capacity = max(MIN_BURST, per_minute_limit // 4)
        bucket = self._buckets.get((kind, key))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._sweep(now, force=True)
            bucket = self._buckets[(kind, key)] = _Bucket(float(capacity), now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def _sweep(self, now: float, force: bool = False) -> None:
        if not force and now < self._next_sweep:
            return
        self._next_sweep = now + IDLE_FORGET_S
        stale = [key for key, bucket in self._buckets.items() if now - bucket.updated > IDLE_FORGET_S]
        for key in stale:
            del self._buckets[key]
        if force and len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()

    def check(self, client: str, conversation: Optional[str]) -> None:
        """Counts one message of ``client`` in ``conversation``.

        Raises:
            Refused: 429 with ``Retry-After`` when either limit is reached.
        """
        now = self.clock()
        self._sweep(now)
        wait = self._take("client", client, self.client_per_minute, now)
        if wait is None and conversation:
            wait = self._take("conversation", conversation, self.conversation_per_minute, now)
        if wait is not None:
            raise Refused(
                429,
                "rate_limited",
                "You are sending messages very fast. Please wait a moment, then try again.",
                retry_after=max(1, math.ceil(wait)),
            )


def limiter_for(app: Sanic) -> RateLimiter:
    """The app's one rate limiter, shared by its channels (made on first use)."""
    limiter = getattr(app.ctx, _LIMITER, None)
    if limiter is None:
        limiter = RateLimiter.from_env()
        setattr(app.ctx, _LIMITER, limiter)
    return limiter


# ---- messages -----------------------------------------------------------------------------------


def message_text(value: object, max_chars: int) -> str:
    """Checks the text of a message: a string, not empty, at most ``max_chars`` characters.

    Control characters (other than tab and newline) are removed first, and lone surrogates replaced.

    Raises:
        Refused: 400 for no text or not a string, 413 for a text that is too long.
    """
    if not isinstance(value, str):
        raise Refused(400, "invalid_field", "The message text must be a string.")
    # Lone surrogates (JSON allows "\ud800") cannot be stored as UTF-8: they become U+FFFD.
    value = _SURROGATE.sub("\ufffd", value)
    cleaned = "".join(char for char in value if char in "\t\n" or (ord(char) >= 32 and ord(char) != 127))
    cleaned = cleaned.strip()
    if not cleaned:
        raise Refused(400, "empty_text", "Please type a message first.")
    if len(cleaned) > max_chars:
        raise Refused(413, "text_too_long", f"Your message is too long. Please use {max_chars} characters or fewer.")
    return cleaned


def message_id(value: object) -> Optional[str]:
    """Checks a client's message id: absent, or 1 to 64 characters of ``[A-Za-z0-9_-]``.

    Raises:
        Refused: 400 for anything else.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not _MESSAGE_ID.match(value):
        raise Refused(400, "invalid_field", "The message id must be 1 to 64 letters, digits, '-' or '_'.")
    return value


async def _handle_quietly(on_new_message: Callable[["UserMessage"], Awaitable[Any]], message: "UserMessage") -> Any:
    """Runs Rasa's handler with the message's text kept out of every log line (bot/privacy/logs.py)."""
    with logs.user_text(message.text):
        return await on_new_message(message)


def _consume_outcome(task: "asyncio.Future[Any]") -> None:
    """Retrieves a finished task's exception so none goes unreported."""
    if not task.cancelled() and task.exception() is not None:
        logger.warning("A message failed after its request ended (%s).", type(task.exception()).__name__)


async def answer(
    on_new_message: Callable[["UserMessage"], Awaitable[Any]], message: "UserMessage", timeout_s: float
) -> List[Dict[str, Any]]:
    """Hands a message to Rasa and returns what the assistant said (the message's output channel collects).

    The turn is shielded: a timeout or a closed connection never stops Rasa half-way through a
    turn; it finishes and is kept in the conversation.

    Raises:
        Refused: 504 if the answer takes longer than ``timeout_s``, 502 if the assistant fails.
    """
    task = asyncio.ensure_future(_handle_quietly(on_new_message, message))
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout_s)
    except asyncio.CancelledError:
        task.add_done_callback(_consume_outcome)
        raise
    except asyncio.TimeoutError:
        task.add_done_callback(_consume_outcome)
        logger.error("The assistant took too long to answer a %s message.", message.input_channel)
        raise Refused(504, "timeout", "The assistant is taking too long. Please try again.")
    except Exception as error:
        logger.error("The assistant failed on a %s message (%s).", message.input_channel, type(error).__name__)
        raise Refused(502, "bot_error", "Sorry, something went wrong. Please try again.")
    from rasa.core.channels.channel import CollectingOutputChannel

    output = message.output_channel
    return list(output.messages) if isinstance(output, CollectingOutputChannel) else []


# ---- origins ------------------------------------------------------------------------------------


def normalise_origin(origin: str) -> Optional[str]:
    """``scheme://host[:port]`` of an origin, lower case, default port dropped; None if not one."""
    parts = urlsplit(origin.strip())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    shown_port = f":{port}" if port and port != default_port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{shown_port}"


def origin_allowed(origin: Optional[str], host: Optional[str], allowed: Iterable[str]) -> bool:
    """Whether a browser request from ``origin`` may be served.

    Args:
        origin: the request's ``Origin`` header (None: not a browser's cross-site request).
        host: the request's ``Host`` header (the server as the browser addressed it).
        allowed: the allowed origins, normalised.
    """
    if origin is None:
        return True
    normalised = normalise_origin(origin)
    if normalised is None:
        return False
    if normalised in set(allowed):
        return True
    return bool(host) and urlsplit(normalised).netloc == str(host).lower()


# ---- app-wide -----------------------------------------------------------------------------------


def harden_app(app: Sanic) -> None:
    """Security headers, no version banner, a body cap and JSON errors for the whole app (once)."""
    if getattr(app.ctx, _HARDENED, False):
        return
    setattr(app.ctx, _HARDENED, True)
    app.config.REQUEST_MAX_SIZE = min(int(app.config.REQUEST_MAX_SIZE), MAX_BODY_BYTES)
    app.config.FALLBACK_ERROR_FORMAT = "json"

    async def no_banner(request: Request) -> Optional[HTTPResponse]:
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return response.json({"status": "ok"}, headers={"Cache-Control": "no-store"})
        return None

    app.request_middleware.appendleft(no_banner)
    add_security_headers(app)
    add_json_errors(app)


def add_security_headers(app: Sanic) -> None:
    """Adds ``SECURITY_HEADERS`` to every response of ``app`` that does not set them itself."""

    async def security_headers(request: Request, outgoing: Any) -> None:
        if outgoing is None:
            return
        for name, value in SECURITY_HEADERS.items():
            if name not in outgoing.headers:
                outgoing.headers[name] = value

    app.response_middleware.append(security_headers)


def add_json_errors(app: Sanic) -> None:
    """Answers every error of ``app`` with ``json_error``."""
    app.error_handler.add(SanicException, json_error)
    app.error_handler.add(Exception, json_error)


def json_error(request: Optional[Request], exception: BaseException) -> HTTPResponse:
    """Answers any error Sanic or a route raises as ``{"error", "message"}``, never a traceback.

    Errors of the request (4xx) are not logged; a server error is logged with its type (and its
    traceback, for the operator; bot/privacy/logs.py keeps any message text out of it).
    """
    if isinstance(exception, Refused):
        refusal = exception
    else:
        status = int(getattr(exception, "status_code", 500) or 500)
        if status >= 500 and status != 503:
            route = getattr(request, "name", None) if request is not None else None
            logger.error("Unexpected %s on route %s.", type(exception).__name__, route, exc_info=exception)
            refusal = Refused(500, "server_error", "Sorry, something went wrong. Please try again.")
        else:
            code, message = _ERROR_CODES.get(status, ("error", "The request was refused."))
            refusal = Refused(status, code, message)
    reply = refusal.response(app=getattr(request, "app", None) if request is not None else None)
    for name, value in SECURITY_HEADERS.items():
        reply.headers.setdefault(name, value)
    return reply


def allowed_origins_from(values: Any) -> List[str]:
    """Normalises an ``allowed_origins`` option (a list, or a string separated by commas or spaces).

    Raises:
        SettingsError: for ``*``, ``null`` or anything but a plain http(s) origin.
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    if not isinstance(values, (list, tuple)):
        raise SettingsError("allowed_origins must be a list of origins such as https://www.example.org")
    result = []
    for value in values:
        normalised = normalise_origin(value) if isinstance(value, str) and "*" not in value else None
        if normalised is None:
            raise SettingsError(
                f"allowed_origins entry {value!r} is not allowed: list each site exactly, like "
                "https://www.example.org (scheme and host, no path, never '*')."
            )
        result.append(normalised)
    return result
