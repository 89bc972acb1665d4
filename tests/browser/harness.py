"""A small Sanic app for the widget tests: the real widget blueprint, a fake bot.

The fake bot echoes, offers quick replies, answers with hostile HTML on request
and fails on request. It keeps its turns in Rasa's ``InMemoryTrackerStore``
behind a fake agent, so ``/history`` runs the same code as in the real server.

Run it by hand with ``python tests/browser/harness.py --port 8765`` and open
http://127.0.0.1:8765/webhooks/widget/demo.
"""

import argparse
import asyncio
import html
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rasa.core.channels.channel import UserMessage  # noqa: E402
from rasa.core.tracker_store import InMemoryTrackerStore  # noqa: E402
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import BotUttered, UserUttered  # noqa: E402
from sanic import Sanic, response  # noqa: E402
from sanic.request import Request  # noqa: E402
from sanic.response import HTTPResponse  # noqa: E402

from bot.channels.widget.channel import WidgetInput  # noqa: E402

SECRET = "harness-only-secret-0123456789abcdefghijklmnop"
PREFIX = "/webhooks/widget"
XSS_REPLY = (
    'Look: <img src=x onerror="window.__xss_bot=1"> '
    "<script>window.__xss_bot=1</script> "
    "[link](javascript:window.__xss_bot=1) javascript:window.__xss_bot=1 "
    "and a real link https://example.org/help."
)
MENU_BUTTONS = [
    {"title": "Opening times", "payload": "/ask_opening_times"},
    {"title": "Talk to someone", "payload": "/ask_contact"},
]


def reply_for(text: str) -> Dict[str, Any]:
    """Returns the fake bot's answer to a user text or button payload."""
    lowered = text.lower()
    if lowered == "fail":
        raise RuntimeError("the fake bot failed on purpose")
    if lowered == "xss":
        return {"text": XSS_REPLY}
    if lowered == "menu":
        return {"text": "What would you like to know?", "buttons": MENU_BUTTONS}
    if text == "/ask_opening_times":
        return {"text": "You picked opening times."}
    if text == "/ask_contact":
        return {"text": "You picked talk to someone.\nLine two."}
    return {"text": f"You said: {text}"}


class FakeAgent:
    """The parts of rasa's Agent that the widget channel and Rasa's app use."""

    def __init__(self, ready: bool = True) -> None:
        """Creates an agent with an in-memory tracker store."""
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.ready = ready

    def is_ready(self) -> bool:
        """Whether the agent has a model."""
        return self.ready

    async def handle_message(self, message: UserMessage) -> None:
        """Answers with the fake bot and keeps both turns in the tracker."""
        tracker = await self.tracker_store.get_or_create_tracker(message.sender_id or "")
        tracker.update(UserUttered(message.text, input_channel=message.input_channel))
        reply = reply_for(message.text or "")
        # send_response() pops keys from the dict it is given: pass a copy.
        await message.output_channel.send_response(message.sender_id or "", dict(reply))
        data = {"buttons": reply["buttons"]} if "buttons" in reply else {}
        tracker.update(BotUttered(reply["text"], data=data))
        await self.tracker_store.save(tracker)


def build_app(
    allowed_origins: Sequence[str] = (),
    name: Optional[str] = None,
    agent: Optional[FakeAgent] = None,
    on_new_message: Optional[Callable[[UserMessage], Awaitable[Any]]] = None,
    **options: Any,
) -> Sanic:
    """Returns a Sanic app with the widget blueprint and a fake agent mounted.

    The app also serves ``GET /host``, a plain host page (no CSP) that embeds
    the widget: ``?src=`` is the widget.js URL (default: this server's, on
    127.0.0.1) and every other query parameter becomes a ``data-`` attribute.
    Open it as http://localhost:PORT/host to embed the widget cross-origin.

    Args:
        allowed_origins: The widget's CORS allow-list.
        name: Sanic app name (unique per process); random if not given.
        agent: The fake agent (``request.app.ctx.agent``); a new one if not given.
        on_new_message: Rasa's message handler; the agent's if not given.
        **options: More ``WidgetInput`` options.
    """
    app = Sanic(name or f"widget_harness_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.ctx.agent = agent = agent or FakeAgent()
    channel = WidgetInput(secret=SECRET, allowed_origins=list(allowed_origins), **options)
    handler = on_new_message or agent.handle_message
    app.blueprint(channel.blueprint(handler), url_prefix=PREFIX)

    @app.get("/host")
    async def host(request: Request) -> HTTPResponse:
        port = request.server_port
        src = request.args.get("src") or f"http://127.0.0.1:{port}{PREFIX}/widget.js"
        data = " ".join(
            f'data-{html.escape(key)}="{html.escape(value)}"' for key, value in request.query_args if key != "src"
        )
        return response.html(
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>Host site</title></head><body><main><h1>Host site</h1>"
            "<p><a href='#top'>A link on the host page</a></p></main>"
            f'<script src="{html.escape(src)}" {data}></script></body></html>'
        )

    return app


def loopback_socket() -> socket.socket:
    """Returns a TCP socket bound to a spare port on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread:
    """Serves a Sanic app on a spare loopback port from a background thread."""

    def __init__(self, app: Sanic, sock: Optional[socket.socket] = None) -> None:
        """Prepares the server on ``sock`` (or a spare port); ``start()`` runs it."""
        self.app = app
        self.sock = sock or loopback_socket()
        self.port: int = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._errors: List[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "ServerThread":
        """Starts serving and waits until the port answers."""
        # Sanic 21.12 rewrites some of its own methods at each app's start-up
        # ("touchup"); outside test mode a second app in one process fails.
        Sanic.test_mode = True
        self._thread.start()
        if not self._ready.wait(30) or self._errors:
            raise RuntimeError(f"harness server did not start: {self._errors}")
        return self

    def stop(self) -> None:
        """Stops the server and its thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self) -> Any:
        server = await self.app.create_server(sock=self.sock, return_asyncio_server=True, access_log=False)
        assert server is not None  # create_server() already listens
        await server.startup()
        await server.before_start()
        await server.after_start()
        return server

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(self._serve())
        except BaseException as error:  # pragma: no cover - reported by start()
            self._errors.append(error)
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        for connection in list(server.connections):
            connection.close_if_idle()
        close = server.close()
        if close is not None:
            self._loop.run_until_complete(close)
        self.sock.close()


def main() -> None:
    """Runs the harness until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    app = build_app([f"http://localhost:{args.port}"], name="widget_harness")
    app.run(host="127.0.0.1", port=args.port, access_log=False)


if __name__ == "__main__":
    main()
