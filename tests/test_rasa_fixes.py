"""The fixes applied to Rasa (bot/server/patches.py) keep its behaviour."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Dict, List, Tuple

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot.server import patches as rasa_main

GOOD = {"events": [{"event": "slot", "name": "last_topic", "value": "plan"}], "responses": [{"text": "Hi"}]}
BAD = {"events": "not a list", "responses": []}


@pytest.fixture
def rasa_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undoes ``apply_fixes`` after the test, so that other tests see Rasa unchanged."""
    import rasa.core.run
    from rasa.utils.endpoints import EndpointConfig

    for owner, name in (
        (rasa.core.run, "configure_app"),
        (rasa.core.run, "close_resources"),
        (EndpointConfig, "session"),
        (RemoteAction, "_validate_action_result"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))


@pytest.mark.parametrize("apply", [False, True])
@pytest.mark.usefixtures("rasa_as_it_was")
def test_action_replies_are_checked_the_same_way_before_and_after(apply: bool) -> None:
    if apply:
        rasa_main.apply_fixes()
        assert RemoteAction._validate_action_result is rasa_main._validate_action_result
    action = RemoteAction("action_answer_topic", None)
    assert action._validate_action_result(GOOD) is True
    with pytest.raises(ValidationError) as error:
        action._validate_action_result(BAD)
    assert "Failed to validate Action server response" in error.value.message


def test_the_validator_is_built_once() -> None:
    assert rasa_main._action_response_validator() is rasa_main._action_response_validator()


@contextlib.asynccontextmanager
async def webhook_server(reply: Dict[str, Any]) -> AsyncIterator[Tuple[str, List[Any], List[Any]]]:
    """A local HTTP server answering POST /webhook with ``reply``.

    Yields:
        Its URL, the peer (client address and port) of each request, and each request's headers.
    """
    from aiohttp import web

    peers: List[Any] = []
    headers: List[Any] = []

    async def webhook(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        headers.append(request.headers)
        return web.json_response(reply)

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/webhook", peers, headers
    finally:
        await runner.cleanup()


@pytest.mark.usefixtures("rasa_as_it_was")
async def test_an_endpoint_keeps_its_connection_between_requests() -> None:
    from rasa.utils.endpoints import EndpointConfig

    async with webhook_server(GOOD) as (url, peers, headers):
        endpoint = EndpointConfig(url, headers={"X-Check": "kept"})
        rasa_main.apply_fixes()
        for _ in range(3):
            assert await endpoint.request(json={"next_action": "x"}, method="post") == GOOD
        assert len(peers) == 3 and len(set(peers)) == 1, f"a new connection per request: {peers}"
        assert all(seen.get("X-Check") == "kept" for seen in headers)
        await rasa_main.close_kept_sessions()
        assert all(session.closed for session in endpoint.__dict__[rasa_main._KEPT_ATTRIBUTE].values())
        # After closing (a server restart in the same loop), a new session is made on demand.
        assert await endpoint.request(json={}, method="post") == GOOD
        await rasa_main.close_kept_sessions()


@pytest.mark.usefixtures("rasa_as_it_was")
async def test_rasas_own_endpoint_opens_a_connection_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the fix is for: if Rasa ever keeps its connections itself, this fails and the fix can go.
    from rasa.utils.endpoints import EndpointConfig

    monkeypatch.setattr(EndpointConfig, "session", rasa_main._ORIGINAL_SESSION)
    async with webhook_server(GOOD) as (url, peers, _headers):
        endpoint = EndpointConfig(url)
        for _ in range(2):
            assert await endpoint.request(json={}, method="post") == GOOD
    assert len(set(peers)) == 2


@pytest.mark.parametrize(("processes", "balanced"), [("1", False), ("2", True)])
@pytest.mark.usefixtures("rasa_as_it_was")
def test_several_server_processes_get_the_connection_balancer(
    processes: str, balanced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rasa.core.run
    from sanic import Sanic

    monkeypatch.setattr(Sanic, "test_mode", True)
    monkeypatch.setenv("SANIC_WORKERS", processes)
    rasa_main.apply_fixes()
    app = rasa.core.run.configure_app(input_channels=[])
    middleware = [getattr(m, "__qualname__", "") for m in app.response_middleware]
    assert any("ConnectionBalancer" in name for name in middleware) is balanced
