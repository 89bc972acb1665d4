"""Kept-alive connections are spread over the Rasa server processes (bot/server/balance.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import List, Tuple

import pytest
from sanic import Sanic, response

from bot.server import balance
from bot.server.balance import ConnectionBalancer, should_shed
from tests.browser import harness


@pytest.mark.parametrize(
    ("mine", "everyone", "me", "shed"),
    [
        (5, [5, 5], 0, False),  # even
        (6, [6, 5], 0, False),  # one more is fine
        (7, [7, 5], 0, True),  # two more: close one
        (10, [10, 0], 0, True),  # everything on one process
        (3, [0, 3, 3], 1, True),  # three processes, one idle
        (3, [9], 0, False),  # a single process never sheds
    ],
)
def test_when_a_process_sheds_a_connection(mine: int, everyone: List[int], me: int, shed: bool) -> None:
    assert should_shed(mine, everyone, me) is shed


async def _open(port: int) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _ask(connection: Tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> str:
    """Sends one kept-alive GET; returns the response's Connection header."""
    reader, writer = connection
    writer.write(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n")
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode().lower()
    length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.startswith("content-length")))
    await reader.readexactly(length)
    return next(line.split(":")[1].strip() for line in head.split("\r\n") if line.startswith("connection"))


async def test_a_process_holding_more_connections_than_the_others_closes_one() -> None:
    app = Sanic(f"balance_test_{uuid.uuid4().hex[:8]}", configure_logging=False)

    @app.get("/")
    async def hello(_request: object) -> response.HTTPResponse:
        return response.text("hi")

    balancer = ConnectionBalancer(2)  # this test's server is process 0; process 1 is pretend
    balancer.install(app)
    server = await asyncio.to_thread(harness.ServerThread(app).start)
    connections = []
    try:
        connections.append(await _open(server.port))
        assert await _ask(connections[0]) == "keep-alive"  # 1 connection vs 0: within the slack
        connections += [await _open(server.port) for _ in range(2)]
        await asyncio.sleep(0.2)
        balancer.counts[1] = 3  # the other process is as busy: keep them all
        assert [await _ask(c) for c in connections] == ["keep-alive"] * 3
        balancer.counts[1] = 0  # the other process is idle: this one hands a connection back
        assert await _ask(connections[2]) == "close"
        assert list(balancer.counts)[0] == 3
    finally:
        for _, writer in connections:
            writer.close()
        await asyncio.to_thread(server.stop)


async def test_a_process_publishes_its_count_also_when_it_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Otherwise a process whose clients have all left would look busy to the others for ever.
    monkeypatch.setattr(balance, "PUBLISH_EVERY_S", 0.05)
    app = Sanic(f"balance_test_{uuid.uuid4().hex[:8]}", configure_logging=False)

    @app.get("/")
    async def hello(_request: object) -> response.HTTPResponse:
        return response.text("hi")

    balancer = ConnectionBalancer(2)
    balancer.install(app)
    server = await asyncio.to_thread(harness.ServerThread(app).start)
    try:
        connections = [await _open(server.port) for _ in range(3)]
        await asyncio.sleep(0.1)
        await _ask(connections[0])
        assert list(balancer.counts)[0] == 3
        for _, writer in connections:
            writer.close()
        await asyncio.sleep(0.5)
        assert list(balancer.counts)[0] == 0
    finally:
        await asyncio.to_thread(server.stop)
