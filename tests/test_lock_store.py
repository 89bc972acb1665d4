"""Conversation locks: in memory by default; Redis, and several server processes, only when configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.lock_store import InMemoryLockStore, LockStore
from rasa.utils.endpoints import read_endpoint_config

from bot import serve
from bot.lock_settings import LockStoreSettingsError, redis_settings
from bot.lock_store import EnvLockStore
from tests.conftest import ROOT


def test_no_redis_means_locks_in_memory() -> None:
    assert redis_settings({}) is None
    assert redis_settings({"SANIC_WORKERS": "1"}) is None


def test_several_workers_need_redis() -> None:
    with pytest.raises(LockStoreSettingsError, match="SANIC_WORKERS=2 needs REDIS_URL"):
        redis_settings({"SANIC_WORKERS": "2"})


def test_redis_url_is_read() -> None:
    settings = redis_settings({"REDIS_URL": "redis://:s%40cret@cache.local:6390/3", "SANIC_WORKERS": "2"})
    assert settings == {"host": "cache.local", "port": 6390, "db": 3, "password": "s@cret", "key_prefix": "lancs"}
    assert redis_settings({"REDIS_URL": "redis://cache.local"})["port"] == 6379


@pytest.mark.parametrize("url", ["http://cache.local/1", "redis:///1", "redis://cache.local/x", "redis://h:port/1"])
def test_a_bad_redis_url_is_refused(url: str) -> None:
    with pytest.raises(LockStoreSettingsError, match="REDIS_URL must look like"):
        redis_settings({"REDIS_URL": url})


def test_the_store_in_endpoints_keeps_locks_in_memory_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("SANIC_WORKERS", raising=False)
    monkeypatch.setenv("TRACKER_DB_URL", "sqlite://")
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    store = LockStore.create(read_endpoint_config(str(ROOT / "endpoints.yml"), "lock_store"))
    assert isinstance(store, EnvLockStore) and isinstance(store.inner, InMemoryLockStore)
    lock = store.create_lock("someone")
    store.save_lock(lock)
    assert store.get_lock("someone") is not None and lock.conversation_id == "someone"
    store.delete_lock("someone")
    assert store.get_lock("someone") is None


def test_make_run_refuses_workers_without_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.tar.gz"
    model.write_bytes(b"")
    monkeypatch.setenv("SANIC_WORKERS", "2")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("WIDGET_SECRET", "x" * 40)
    assert serve.main(["--model", str(model)]) == 2
    assert "needs REDIS_URL" in capsys.readouterr().err
