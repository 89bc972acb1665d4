"""A local Open Referral UK API serving the fictional fixture feed, healthy and broken, for tests and demos.

Every name, phone number (Ofcom's drama ranges) and web address (example.org) in
``tests/fixtures/openreferral/`` is made up. Feeds, by the first part of the path:

- ``/good``: three pages of ``/services``; pages 1 and 3 list services without their child records,
  so an importer must fetch each from ``/services/{id}``; page 2 is fully nested;
- ``/invalid-json``: page 2 is cut off half-way (not JSON);
- ``/schema-error``: page 2 is JSON but not an Open Referral page;
- ``/http-500``: page 3 always answers HTTP 500;
- ``/flaky``: page 2 answers HTTP 503 the first time, then the good page;
- ``/slow``: page 2 answers after ``slow_seconds`` (longer than a test's time limit);
- ``/detail-500``: the full record of the first service answers HTTP 500;
- ``/empty``: no services at all.

Run it for a demo: ``python -m tests.openreferral_feed --port 8765`` then
``make import-services FROM=http://127.0.0.1:8765/good``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "openreferral"
GOOD = FIXTURES / "good"
BROKEN = FIXTURES / "broken"
FIRST_SERVICE = "f1c710a1-0000-4000-8000-000000000001"


class FeedServer:
    """The fixture API on 127.0.0.1 and a free port, in a thread; use it as a context manager."""

    def __init__(self, port: int = 0, slow_seconds: float = 3.0) -> None:
        """Binds the server (port 0: any free port)."""
        self.slow_seconds = slow_seconds
        self.requests: List[str] = []
        self._tries: Dict[str, int] = {}
        self._lock = threading.Lock()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                status, body = feed.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "FeedServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, raw_path: str) -> Tuple[int, bytes]:
        """The status and body for a request path (with its query)."""
        with self._lock:
            self.requests.append(raw_path)
        parts = urlsplit(raw_path)
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        if len(segments) < 2 or segments[1] != "services":
            return 404, b'{"error": "not found"}'
        feed, rest = segments[0], segments[2:]
        if rest:
            return self._service(feed, rest[0])
        page = int((parse_qs(parts.query).get("page") or ["1"])[0])
        return self._page(feed, page)

    def _page(self, feed: str, page: int) -> Tuple[int, bytes]:
        if feed == "empty":
            return 200, (BROKEN / "page-empty.json").read_bytes()
        if feed == "invalid-json" and page == 2:
            return 200, (BROKEN / "page-invalid.json").read_bytes()
        if feed == "schema-error" and page == 2:
            return 200, (BROKEN / "page-schema-error.json").read_bytes()
        if feed == "http-500" and page == 3:
            return 500, b'{"error": "internal server error"}'
        if feed == "flaky" and page == 2 and self._count(f"{feed}:{page}") == 1:
            return 503, b'{"error": "try again"}'
        if feed == "slow" and page == 2:
            time.sleep(self.slow_seconds)
        path = GOOD / f"services-page-{page}.json"
        if feed not in FEEDS or not path.exists():
            return 404, b'{"error": "no such page"}'
        return 200, path.read_bytes()

    def _service(self, feed: str, service_id: str) -> Tuple[int, bytes]:
        if feed == "detail-500" and service_id == FIRST_SERVICE:
            return 500, b'{"error": "internal server error"}'
        path = GOOD / "services" / f"{service_id}.json"
        if feed not in FEEDS or "/" in service_id or not path.exists():
            return 404, b'{"error": "no such service"}'
        return 200, path.read_bytes()

    def _count(self, key: str) -> int:
        with self._lock:
            self._tries[key] = self._tries.get(key, 0) + 1
            return self._tries[key]


FEEDS = {"good", "invalid-json", "schema-error", "http-500", "flaky", "slow", "detail-500", "empty"}


def main() -> None:
    """Serves the fixture feeds until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with FeedServer(port=args.port) as server:
        print(json.dumps({"feeds": sorted(FEEDS), "good": f"{server.url}/good"}), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
