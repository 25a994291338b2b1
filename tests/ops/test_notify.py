"""sd_notify over a unix datagram socket named by a path (abstract names: tests/e2e)."""

from __future__ import annotations

import socket

import pytest

from chatsecure.server.ops import notify


def test_ready_reaches_a_socket_named_by_a_path(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        manager.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        notify.ready()
        assert manager.recv(4096).split(b"\n") == [b"READY=1", b"STATUS=serving"]


def test_without_a_service_manager_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.notify("READY=1") is False


def test_a_vanished_socket_is_logged_not_raised(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    with caplog.at_level("WARNING"):
        assert notify.notify("STOPPING=1") is False
    assert "cannot notify the service manager" in caplog.text


@pytest.fixture(autouse=True)
def _no_inherited_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
