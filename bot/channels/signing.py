"""Conversation ids made by the server, signed, and expiring: ``id.issued.signature``.

- ``id``: 32 random URL-safe characters (``secrets.token_urlsafe(24)``, 192 bits).
- ``issued``: when the token was made, in whole seconds since 1970, base 36.
- ``signature``: HMAC-SHA256 of a channel-specific context, the id and the time, under the
  server's secret (``WIDGET_SECRET``), URL-safe base64 without padding.

Any replica holding the same secret can check a token without shared state. A token is good for
``lifetime_s`` seconds from ``issued`` (a few hours by default); while the talk goes on the
channel hands out a renewed token for the same id (``renew``), so a conversation in use never
expires, and one left alone does. The context differs per channel, so a widget token is not a
socket.io token and the other way round; the id alone is worth nothing anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Optional

MIN_SECRET_CHARS = 32
DEFAULT_LIFETIME_S = 4 * 3600
# A token issued this far in the future is refused (clocks of replicas differ by a little only).
CLOCK_SKEW_S = 300
_ID_BYTES = 24
_TOKEN_RE = re.compile(r"\A([A-Za-z0-9_-]{32})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{43})\Z")
MAX_TOKEN_CHARS = 100
ID_RE = re.compile(r"\A[A-Za-z0-9_-]{32}\Z")


@dataclass(frozen=True)
class Verified:
    """A genuine, unexpired token: its conversation id and when it was issued."""

    session_id: str
    issued: int


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


class SessionSigner:
    """Issues, renews and checks the signed conversation tokens of one channel."""

    def __init__(
        self,
        secret: str,
        context: str,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Creates a signer.

        Args:
            secret: the server secret (at least ``MIN_SECRET_CHARS`` characters).
            context: what the tokens are for, e.g. ``"widget"``; tokens of one context are
                refused by a signer of another.
            lifetime_s: how long a token is good for after it was issued.
            clock: the time in seconds (for tests).

        Raises:
            ValueError: if the secret is too short or the lifetime is not positive.
        """
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the signing secret must have at least {MIN_SECRET_CHARS} characters")
        if not lifetime_s > 0:
            raise ValueError("the token lifetime must be a positive number of seconds")
        self._key = secret.encode("utf-8")
        self._context = f"bot.channels/{context}/session/v2:".encode("ascii")
        self.lifetime_s = float(lifetime_s)
        self._clock = clock

    def _signature(self, session_id: str, issued: str) -> str:
        message = self._context + session_id.encode("ascii") + b"." + issued.encode("ascii")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def token_for(self, session_id: str) -> str:
        """Returns a token for ``session_id`` issued now (a new one, or a renewal of a verified one)."""
        issued = _base36(int(self._clock()))
        return f"{session_id}.{issued}.{self._signature(session_id, issued)}"

    def new_token(self) -> str:
        """Returns a token for a new, unguessable conversation id."""
        return self.token_for(secrets.token_urlsafe(_ID_BYTES))

    def check(self, token: object, ignore_expiry: bool = False) -> Optional[Verified]:
        """Returns the id and issue time of a genuine, unexpired token, else ``None``.

        Args:
            token: what the client sent.
            ignore_expiry: accept a genuine token however old (to delete its conversation).
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            return None
        match = _TOKEN_RE.match(token)
        if not match:
            return None
        session_id, issued_text, signature = match.groups()
        expected = self._signature(session_id, issued_text)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii")):
            return None
        issued = int(issued_text, 36)
        now = self._clock()
        if issued > now + CLOCK_SKEW_S or (now - issued > self.lifetime_s and not ignore_expiry):
            return None
        return Verified(session_id, issued)

    def verify(self, token: object) -> Optional[str]:
        """Returns the conversation id of a genuine, unexpired token, else ``None``."""
        verified = self.check(token)
        return verified.session_id if verified else None

    def renew(self, token: object, min_age_s: float = 60.0) -> Optional[str]:
        """Returns a fresh token for a genuine one older than ``min_age_s``, else ``None``."""
        verified = self.check(token)
        if verified is None or self._clock() - verified.issued < min_age_s:
            return None
        return self.token_for(verified.session_id)
