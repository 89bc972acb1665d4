"""The action server: this project's rasa_sdk actions, private and authenticated.

``bot/server/serve.py`` starts it as ``python -m bot.server.action_server --port $ACTION_PORT``
instead of ``rasa run actions``. It runs the same ``rasa_sdk`` executor on the same routes
(``POST /webhook``, ``GET /actions``, ``GET /health``), but:

- it listens on ``ACTION_HOST``, by default ``127.0.0.1``: only the Rasa server on the same machine
  reaches it. In a deployment with the action server elsewhere, set a private network address.
- every call to ``/webhook`` and ``/actions`` must carry ``Authorization: Bearer $ACTION_TOKEN``
  (``endpoints.yml`` sends it; ``make run`` makes the token in ``var/action_token``): anything else
  gets 401. ``/health`` says only ``{"status": "ok"}``. Without ``ACTION_TOKEN`` it refuses to start.
- every response carries ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``;
  errors are JSON and never echo the request (rasa_sdk's own server sends the whole tracker back in
  a 500) or a traceback; no CORS headers (browsers have no business here).
- what people typed is kept out of its log lines (``bot/privacy/logs.py``): the texts of each
  call are held while it runs.
- it deletes conversations and feedback older than ``RETENTION_DAYS`` when it starts and every
  hour (``bot/privacy/retention.py``), and makes the feedback database file private (mode 600).
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import re
import sys
import zlib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.guard import Refused, add_json_errors, add_security_headers
from bot.privacy import logs, retention
from bot.privacy.files import private_file

logger = logging.getLogger(__name__)

HOST_ENV = "ACTION_HOST"
TOKEN_ENV = "ACTION_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5055
MIN_TOKEN_CHARS = 32
# A call carries the tracker's recent events and the domain: far more than a message, far less than this.
MAX_BODY_BYTES = 8 * 1024 * 1024
_BEARER_RE = re.compile(r"\ABearer\s+(\S+)\Z", re.IGNORECASE)


class ActionServerSettingsError(ValueError):
    """A setting the action server cannot start with."""


def action_token(environ: Mapping[str, str]) -> str:
    """Reads ``ACTION_TOKEN``.

    Raises:
        ActionServerSettingsError: if it is missing or shorter than ``MIN_TOKEN_CHARS``.
    """
    token = environ.get(TOKEN_ENV, "")
    if len(token) < MIN_TOKEN_CHARS:
        raise ActionServerSettingsError(
            f"{TOKEN_ENV} must be set to a secret of at least {MIN_TOKEN_CHARS} characters, the same as the "
            "Rasa server's (endpoints.yml sends it). `make run` makes one in var/action_token."
        )
    return token


def _authorised(request: Request, token: bytes) -> bool:
    match = _BEARER_RE.match(request.headers.get("authorization", "").strip())
    given = match.group(1).encode("utf-8", "replace") if match else b""
    return hmac.compare_digest(given, token)


def _action_call(request: Request) -> Dict[str, Any]:
    body = request.body or b""
    try:
        if request.headers.get("content-encoding") == "deflate":
            body = zlib.decompressobj().decompress(body, MAX_BODY_BYTES)
        call = json.loads(body.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError, RecursionError):
        call = None
    if not isinstance(call, dict):
        raise Refused(400, "invalid_json", "The body must be a JSON object (an action call).")
    return call


def create_app(actions_package: str, token: str, environ: Optional[Mapping[str, str]] = None) -> Sanic:
    """The action server's Sanic app.

    Args:
        actions_package: the package holding the actions (``actions``).
        token: the shared secret every call must carry.
        environ: where the retention settings come from (None: no purging, for tests).
    """
    from rasa_sdk import utils
    from rasa_sdk.executor import ActionExecutor
    from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

    logs.install()
    expected = token.encode("utf-8")
    app = Sanic("action_server", configure_logging=False)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.FALLBACK_ERROR_FORMAT = "json"
    add_security_headers(app)
    add_json_errors(app)
    executor = ActionExecutor()
    executor.register_package(actions_package)

    def refuse_unless_authorised(request: Request) -> None:
        if not _authorised(request, expected):
            raise Refused(401, "unauthorised", "A valid bearer token is needed (Authorization: Bearer ...).")

    @app.get("/health")
    async def health(_: Request) -> HTTPResponse:
        return response.json({"status": "ok"})

    @app.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        try:
            refuse_unless_authorised(request)
            call = _action_call(request)
        except Refused as refusal:
            return refusal.response({"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None)
        utils.check_version_compatibility(call.get("version"))
        with logs.user_text(*logs.texts_in_action_call(call)):
            try:
                result = await executor.run(call)
            except ActionExecutionRejection as error:
                return response.json({"error": error.message, "action_name": error.action_name}, status=400)
            except ActionNotFoundException as error:
                logger.error("Rasa asked for an action this server does not have: %s.", error.action_name)
                return response.json({"error": error.message, "action_name": error.action_name}, status=404)
            except Exception as error:  # noqa: BLE001 - answered as JSON, never with the call echoed back
                logger.error("Action %s failed (%s).", call.get("next_action"), type(error).__name__, exc_info=error)
                return Refused(500, "action_failed", "The action failed.").response()
        return response.json(result)

    @app.get("/actions")
    async def actions(request: Request) -> HTTPResponse:
        try:
            refuse_unless_authorised(request)
        except Refused as refusal:
            return refusal.response({"WWW-Authenticate": "Bearer"})
        return response.json([{"name": name} for name in executor.actions])

    if environ is not None:
        settings = dict(environ)

        async def start_purging(app: Sanic, _: Any) -> None:
            feedback = settings.get("FEEDBACK_DB")
            if feedback:
                private_file(Path(feedback))
            app.add_task(retention.purge_periodically(settings))

        app.register_listener(start_purging, "after_server_start")

    return app


def main(argv: List[str]) -> int:
    """Command line: ``python -m bot.server.action_server [--port N] [--actions PACKAGE]``."""
    parser = argparse.ArgumentParser(description="The private, authenticated action server.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTION_PORT", DEFAULT_PORT)))
    parser.add_argument("--actions", default="actions", help="the package holding the actions")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        token = action_token(os.environ)
        retention.retention_days(os.environ)
    except (ActionServerSettingsError, retention.RetentionSettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    host = os.environ.get(HOST_ENV) or DEFAULT_HOST
    app = create_app(args.actions, token, os.environ)
    logger.info("Action server on http://%s:%s (calls need the bearer token).", host, args.port)
    app.run(host=host, port=args.port, access_log=False, workers=1)
    return 0


if __name__ == "__main__":
    from bot.server.quiet import quiet_warnings_if_asked

    quiet_warnings_if_asked()
    sys.exit(main(sys.argv[1:]))
