"""Spreads kept-alive connections evenly over the Rasa server processes.

With ``SANIC_WORKERS`` above 1, Sanic's processes share one listening socket, and whichever
process wakes first accepts every connection waiting at that moment. A client that opens ten
kept-alive connections at once (a load balancer, a proxy, a load test) can so put all ten on
one process and leave the other idle for as long as the connections last: measured here, half
the throughput in about one run in three (``make bench``; a stock Sanic app does the same).

So each process publishes how many connections it holds, in a small array shared by all of them
(made before Sanic forks them), after each response and every ``PUBLISH_EVERY_S`` seconds (so that
a process whose connections have all gone, or that holds only websockets, is seen as it is).
After each response, a process that holds two or more
connections more than the least busy process closes that connection (``Connection: close``);
the client reconnects, and the new connection goes to a process that is free to accept it.
When the connections are even, nothing is closed, and keep-alive works as usual.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.sharedctypes
from typing import Any, Optional, Sequence, Sized

# How many more connections than the least busy process a process may hold before it sheds one.
SLACK = 1
# How often each process publishes its count, also when it sends no responses (seconds).
PUBLISH_EVERY_S = 0.5


def should_shed(mine: int, everyone: Sequence[int], me: int) -> bool:
    """Whether the process ``me``, holding ``mine`` connections, should close one.

    Args:
        mine: the connections this process holds now.
        everyone: the latest count each process published (``everyone[me]`` is ignored).
        me: this process's index.
    """
    others = [count for index, count in enumerate(everyone) if index != me]
    return bool(others) and mine > min(others) + SLACK


class ConnectionBalancer:
    """Shared connection counts, one slot per server process, and the Sanic hooks that use them."""

    def __init__(self, processes: int) -> None:
        """Makes the shared counts. Call it in the parent, before the server processes start.

        Args:
            processes: the number of server processes.
        """
        self.counts = multiprocessing.sharedctypes.RawArray("i", processes)
        self.next_slot = multiprocessing.Value("i", 0)
        self.slot: Optional[int] = None
        # This process's set of open connections (Sanic's own), found on the first response.
        self.connections: Optional[Sized] = None
        self._publisher: Optional["asyncio.Task[None]"] = None

    def install(self, app: Any) -> None:
        """Adds the hooks to a Sanic app (in the parent; they run in each server process)."""
        app.register_listener(self._take_slot, "before_server_start")
        app.register_listener(self._stop_publishing, "before_server_stop")
        app.register_middleware(self._after_response, "response")

    async def _take_slot(self, _app: Any, _loop: Any) -> None:
        with self.next_slot.get_lock():
            self.slot = self.next_slot.value % len(self.counts)
            self.next_slot.value += 1
        self._publisher = asyncio.get_running_loop().create_task(self._publish_regularly())

    async def _stop_publishing(self, _app: Any, _loop: Any) -> None:
        if self._publisher is not None:
            self._publisher.cancel()

    async def _publish_regularly(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_EVERY_S)
            if self.slot is not None and self.connections is not None:
                self.counts[self.slot] = len(self.connections)

    async def _after_response(self, request: Any, _response: Any) -> None:
        http: Any = getattr(request, "stream", None)
        protocol = getattr(http, "protocol", None)
        connections = getattr(protocol, "connections", None)
        if self.slot is None or connections is None or not hasattr(http, "keep_alive"):
            return  # not a plain HTTP request (a websocket upgrade)
        self.connections = connections
        mine = len(connections)
        self.counts[self.slot] = mine
        if http.keep_alive and should_shed(mine, list(self.counts), self.slot):
            http.keep_alive = False
