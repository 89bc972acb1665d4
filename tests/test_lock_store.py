"""Conversation locks: in memory for one process on a local file; shared in the database, with leases, otherwise."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import List, Optional

import pytest
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import InMemoryLockStore, LockError, LockStore
from rasa.utils.endpoints import read_endpoint_config

from bot.server import serve
from bot.server.workers import MAX_DEFAULT_WORKERS, MEMORY, SQL, LockStoreSettingsError, default_workers, lock_backend
from bot.storage.lock_store import LEASE_S, LOCKS, EnvLockStore, SQLLockStore
from bot.storage.migrate import upgrade
from tests.conftest import ROOT


def sqlite_url(path: Path) -> str:
    """A SQLite file migrated to the latest schema (as `make run` does)."""
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that several processes share: a local SQLite file, or a PostgreSQL server."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "locks.db")
    return str(request.getfixturevalue("fresh_postgres_url"))


def test_one_process_keeps_its_locks_in_memory() -> None:
    assert lock_backend({}) == MEMORY
    assert lock_backend({"SANIC_WORKERS": "1", "TRACKER_DB_URL": "sqlite:///x.db"}) == MEMORY


def test_shared_conversations_share_their_locks_in_the_database_whatever_the_process_count() -> None:
    assert lock_backend({"SANIC_WORKERS": "2", "TRACKER_DB_URL": "sqlite:///x.db"}) == SQL
    # One process per replica, replicas on one database server: the locks must be shared too.
    assert lock_backend({"SANIC_WORKERS": "1", "TRACKER_DB_URL": "postgresql://u:p@db/rasa"}) == SQL
    assert lock_backend({"TRACKER_DB_URL": "postgresql://u:p@db/rasa"}) == SQL
    assert lock_backend({"SANIC_WORKERS": "1", "TRACKER_DB_URL": "sqlite:///x.db", "LOCK_STORE": "sql"}) == SQL


def test_redis_and_unshareable_settings_are_refused() -> None:
    with pytest.raises(LockStoreSettingsError, match="REDIS_URL is no longer supported"):
        lock_backend({"SANIC_WORKERS": "2", "REDIS_URL": "redis://cache.local/1", "TRACKER_DB_URL": "sqlite:///x"})
    with pytest.raises(LockStoreSettingsError, match="LOCK_STORE=memory cannot work here"):
        lock_backend({"LOCK_STORE": "memory", "TRACKER_DB_URL": "postgresql://u:p@db/rasa"})
    with pytest.raises(LockStoreSettingsError, match="LOCK_STORE must be"):
        lock_backend({"LOCK_STORE": "redis", "TRACKER_DB_URL": "sqlite:///x.db"})


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_number_of_processes_is_refused(value: str) -> None:
    with pytest.raises(LockStoreSettingsError, match="SANIC_WORKERS must be a whole number"):
        lock_backend({"SANIC_WORKERS": value, "TRACKER_DB_URL": "sqlite:///x.db"})


def test_several_processes_with_nowhere_to_share_locks_are_refused() -> None:
    with pytest.raises(LockStoreSettingsError, match="SANIC_WORKERS=3 needs somewhere to share"):
        lock_backend({"SANIC_WORKERS": "3"})


def test_the_default_is_one_process_per_cpu_within_limits() -> None:
    assert 1 <= default_workers() <= MAX_DEFAULT_WORKERS
    env = serve.settings({"WIDGET_SECRET": "x" * 40})
    assert env["SANIC_WORKERS"] == str(default_workers())
    assert serve.settings({"WIDGET_SECRET": "x" * 40, "SANIC_WORKERS": "1"})["SANIC_WORKERS"] == "1"
    # The shell is one person at a terminal: several processes would all read it.
    assert serve.settings({"WIDGET_SECRET": "x" * 40, "SANIC_WORKERS": "3"}, shell=True)["SANIC_WORKERS"] == "1"


def test_the_staff_shell_shows_answers_not_library_notes() -> None:
    shell = serve.settings({"WIDGET_SECRET": "x" * 40}, shell=True)
    assert (shell["LOG_LEVEL"], shell["PYTHONWARNINGS"]) == ("WARNING", "ignore")
    server = serve.settings({"WIDGET_SECRET": "x" * 40})
    assert "PYTHONWARNINGS" not in server and "LOG_LEVEL" not in server  # servers log as they always did
    assert serve.settings({"WIDGET_SECRET": "x" * 40, "LOG_LEVEL": "DEBUG"}, shell=True)["LOG_LEVEL"] == "DEBUG"


def test_the_store_in_endpoints_follows_the_number_of_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("TRACKER_DB_URL", f"sqlite:///{tmp_path / 'tracker.db'}")
    monkeypatch.delenv("LOCK_STORE", raising=False)
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    monkeypatch.setenv("ACTION_TOKEN", "t" * 32)  # endpoints.yml sends it to the action server
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "lock_store")

    monkeypatch.setenv("SANIC_WORKERS", "1")
    one = LockStore.create(config)
    assert isinstance(one, EnvLockStore) and isinstance(one.inner, InMemoryLockStore)

    monkeypatch.setenv("SANIC_WORKERS", "2")
    shared = LockStore.create(config)
    assert isinstance(shared, EnvLockStore) and isinstance(shared.inner, SQLLockStore)
    assert str(shared.inner.engine.url) == f"sqlite:///{tmp_path / 'tracker.db'}"


def test_make_run_refuses_a_bad_number_of_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"")
    monkeypatch.setenv("SANIC_WORKERS", "lots")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("WIDGET_SECRET", "x" * 40)
    assert serve.main(["--model", str(model)]) == 2
    assert "SANIC_WORKERS must be a whole number" in capsys.readouterr().err


# ---- the database lock store ------------------------------------------------------------------


async def test_a_second_message_waits_for_the_first(shared_url: str) -> None:
    url = shared_url
    first_process, second_process = SQLLockStore(url), SQLLockStore(url)  # as two server processes
    order: List[str] = []
    released = asyncio.Event()

    async def first() -> None:
        async with first_process.lock("talker"):
            order.append("first in")
            await released.wait()
            order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.05)
        async with second_process.lock("talker"):
            order.append("second in")

    async def other_conversation() -> None:
        await asyncio.sleep(0.05)
        async with second_process.lock("someone else"):
            order.append("other in")

    tasks = [asyncio.create_task(job()) for job in (first, second, other_conversation)]
    await asyncio.sleep(0.3)
    assert order == ["first in", "other in"]  # another conversation is not held up
    released.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "other in", "first out", "second in"]
    assert first_process.get_lock("talker") is None  # every ticket is gone afterwards


async def test_an_expired_ticket_blocks_nobody(tmp_path: Path) -> None:
    store = SQLLockStore(sqlite_url(tmp_path / "locks.db"))
    with store.engine.begin() as connection:  # a process died holding the lock
        connection.execute(
            LOCKS.insert().values(conversation_id="talker", owner="gone", expires=time.time() - 1, deadline=time.time())
        )
    async with store.lock("talker"):
        pass
    with store.engine.connect() as connection:
        assert connection.execute(LOCKS.select()).all() == []


async def test_waiting_longer_than_the_lifetime_fails_cleanly(tmp_path: Path) -> None:
    store = SQLLockStore(sqlite_url(tmp_path / "locks.db"))
    async with store.lock("talker", lock_lifetime=30):
        with pytest.raises(LockError):
            async with store.lock("talker", lock_lifetime=0.2):
                pytest.fail("entered a held lock")
    assert store.get_lock("talker") is None


def test_rasas_lock_interface_reads_and_writes_the_tickets(tmp_path: Path) -> None:
    store = SQLLockStore(sqlite_url(tmp_path / "locks.db"))
    later = time.time() + 60
    store.save_lock(TicketLock("talker", [Ticket(7, later), Ticket(9, later)]))  # type: ignore[arg-type]
    lock = store.get_lock("talker")
    assert lock is not None and [t.number for t in lock.tickets] == [7, 9]
    store.delete_lock("talker")
    assert store.get_lock("talker") is None


def _count_under_lock(url: str, counter: str, rounds: int) -> None:
    """In its own process: reads a number from a file, waits, writes it + 1, each time under the lock."""

    async def run() -> None:
        store = SQLLockStore(url)
        for _ in range(rounds):
            async with store.lock("shared"):
                value = int(Path(counter).read_text())
                await asyncio.sleep(0.002)
                Path(counter).write_text(str(value + 1))

    asyncio.run(run())


def test_two_processes_never_hold_the_same_conversation_at_once(shared_url: str, tmp_path: Path) -> None:
    url = shared_url
    counter = tmp_path / "counter"
    counter.write_text("0")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_count_under_lock, args=(url, str(counter), 40)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0]
    assert counter.read_text() == "80"  # without the lock, increments are lost


@pytest.mark.parametrize(("cpu_max", "expected"), [("150000 100000", 2), ("50000 100000", 1), ("max 100000", None)])
def test_a_container_cpu_quota_caps_the_default(tmp_path: Path, cpu_max: str, expected: Optional[int]) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max + "\n")
    unlimited = default_workers(str(tmp_path / "none"))
    assert default_workers(str(quota)) == (min(unlimited, expected) if expected else unlimited)


async def test_a_late_holder_never_releases_the_next_ones_lock(tmp_path: Path) -> None:
    # A holds the lock past its lifetime; B goes ahead; C must still wait for B, however late A ends.
    store = SQLLockStore(sqlite_url(tmp_path / "locks.db"))
    order: List[str] = []

    async def hold(name: str, start: float, lifetime: float, length: float) -> None:
        await asyncio.sleep(start)
        async with store.lock("talker", lock_lifetime=lifetime):
            order.append(f"{name} in")
            await asyncio.sleep(length)
            order.append(f"{name} out")

    await asyncio.gather(hold("A", 0, 0.1, 0.3), hold("B", 0.15, 30, 0.4), hold("C", 0.35, 30, 0))
    assert order == ["A in", "B in", "A out", "B out", "C in", "C out"]


def _hold_until_killed(url: str, ready: str) -> None:
    """In its own process: takes the lock, says so, and never lets go (until killed)."""

    async def run() -> None:
        store = SQLLockStore(url)
        async with store.lock("talker"):
            Path(ready).write_text("holding")
            await asyncio.sleep(600)

    asyncio.run(run())


async def test_a_holder_killed_with_minus_9_stalls_its_conversation_only_for_its_lease(
    shared_url: str, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    holder = multiprocessing.get_context("spawn").Process(target=_hold_until_killed, args=(shared_url, str(ready)))
    holder.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert ready.exists(), "the holder never took the lock"
        store = SQLLockStore(shared_url)
        waiter = asyncio.create_task(_enter(store, "talker"))
        await asyncio.sleep(LEASE_S + 1)  # the live holder renews its lease: nobody gets in
        assert not waiter.done()
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        entered_at = await asyncio.wait_for(waiter, 30)
        stall = entered_at - killed_at
        assert 0 <= stall <= 5.0, f"a dead holder stalled its conversation {stall:.1f} s"
    finally:
        holder.kill()
        holder.join(10)


async def _enter(store: SQLLockStore, conversation: str) -> float:
    async with store.lock(conversation):
        return time.monotonic()


async def test_a_live_holder_keeps_its_lock_longer_than_its_lease(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "locks.db")
    holder, other = SQLLockStore(url, lease_s=0.3), SQLLockStore(url, lease_s=0.3)  # two processes
    order: List[str] = []

    async def hold() -> None:
        async with holder.lock("talker"):
            order.append("holder in")
            await asyncio.sleep(1.5)  # five leases: renewed all along
            order.append("holder out")

    async def wait() -> None:
        await asyncio.sleep(0.1)
        async with other.lock("talker"):
            order.append("other in")

    await asyncio.gather(hold(), wait())
    assert order == ["holder in", "holder out", "other in"]


def test_the_shell_setting_hides_library_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from bot.server.quiet import quiet_warnings_if_asked

    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda *args, **kwargs: shown.append(args))
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    quiet_warnings_if_asked()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a server still shows this", DeprecationWarning)
    assert len(shown) == 1
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    quiet_warnings_if_asked()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("the staff shell does not", DeprecationWarning)
    assert len(shown) == 1
