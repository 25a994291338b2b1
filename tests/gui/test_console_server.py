"""The server console window under Xvfb, hosting a real server for real TLS clients.

Each test gets a scratch config (a free port on 127.0.0.1, certificates from
``chatsecure.tls_certs``, a migrated SQLite database, accounts made with the store) and a
console that starts the server as it opens. Clients are the desktop client's own network
layer, so they speak TLS and the protocol exactly as ``chatsecure-client`` does.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import socket
import sys
import time
import tkinter as tk
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from chatsecure.client.events import (
    ConnectionLost,
    LoggedIn,
    LoginFailed,
    NetworkEvent,
    SessionEnded,
)
from chatsecure.client.network import Backoff, Credentials, NetworkClient, ServerAddress
from chatsecure.client.trust import TrustStore
from chatsecure.config import load_settings
from chatsecure.passwords import hash_password
from chatsecure.protocol import Send
from chatsecure.server.console.model import HIDDEN_TEXT
from chatsecure.server.console.window import TITLE, ServerConsole
from chatsecure.server.transport import certificate_fingerprint, server_context
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import Store
from chatsecure.tls_certs import CertificatePaths, make_dev_certificates, write_dev_certificates
from tests.conftest import write_config
from tests.gui.conftest import TIMEOUT, pump
from tests.serverproc import HOST, free_port, password_of, spawn

pytestmark = pytest.mark.gui

# Clients must not reconnect on their own while a test watches a session end.
NO_RECONNECT = Backoff(first=60.0, cap=60.0)

E = TypeVar("E")


@dataclass
class Hosted:
    console: ServerConsole
    port: int
    ca_file: Path
    store: Store
    confirmations: list[str]


def scratch_config(directory: Path) -> Path:
    """A config on a free loopback port, with certificates and a migrated database."""
    config = write_config(directory, server={"host": HOST, "port": free_port()})
    settings = load_settings(config)
    tls = settings.tls
    paths = CertificatePaths.beside_ca(tls.cert_file, tls.key_file, tls.ca_file)
    write_dev_certificates(make_dev_certificates(days=2), paths, overwrite=False)
    engine = make_engine(settings.database.url)
    upgrade(engine)
    engine.dispose()
    return config


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[Hosted]:
    settings = load_settings(scratch_config(tmp_path / "server"))
    port, tls = settings.server.port, settings.tls
    engine = make_engine(settings.database.url)
    store = Store(engine)
    for name in ("alice", "bob"):
        store.create_account(name, hash_password(password_of(name), 10), ["general"])
    confirmations: list[str] = []

    def confirm(_title: str, question: str, _detail: str) -> bool:
        confirmations.append(question)
        return True

    root = tk.Tk()
    console = ServerConsole(
        root,
        settings,
        engine,
        server_context(tls),
        certificate_fingerprint(tls.cert_file),
        confirm=confirm,
    )
    root.update()
    yield Hosted(console, port, tls.ca_file, store, confirmations)
    close(console)
    # Free the Tcl interpreter here, on the Tk thread (see tests/gui/conftest.py).
    del console, root
    gc.collect()
    engine.dispose()


class Client:
    """A logged-in (or refused) client and the events its network thread reported."""

    def __init__(self, hosted: Hosted, tmp_path: Path, user: str, password: str) -> None:
        self.events: queue.Queue[NetworkEvent] = queue.Queue()
        self.network = NetworkClient(
            self.events,
            ServerAddress(HOST, hosted.port, hosted.ca_file),
            Credentials(user, password),
            TrustStore(tmp_path / "known_servers.json"),
            backoff=NO_RECONNECT,
        )
        self.network.start()

    def wait_for(self, kind: type[E], console: ServerConsole) -> E:
        """The next event of ``kind``, keeping the console's window alive meanwhile."""
        found: list[E] = []

        def arrived() -> bool:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return False
            if isinstance(event, kind):
                found.append(event)
            return bool(found)

        pump(console, arrived)
        return found[0]


@pytest.fixture
def clients(hosted: Hosted, tmp_path: Path) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def connect(user: str, password: str | None = None) -> Client:
        client = Client(hosted, tmp_path, user, password or password_of(user))
        made.append(client)
        return client

    yield connect
    for client in made:
        client.network.close()
        client.network.join(5)


def close(console: ServerConsole) -> None:
    """Close the window as the admin would and wait until it is gone."""
    if not console.closed:
        console.close()
    deadline = time.monotonic() + TIMEOUT
    while not console.closed:
        assert time.monotonic() < deadline, "the console did not close"
        console.root.update()
        time.sleep(0.01)


def rows(console: ServerConsole) -> list[tuple[str, ...]]:
    table = console.sessions
    return [tuple(map(str, table.item(i, "values"))) for i in table.get_children()]


def users(console: ServerConsole) -> list[str]:
    return [row[0] for row in rows(console)]


def select(console: ServerConsole, user: str) -> None:
    for item in console.sessions.get_children():
        if console.sessions.item(item, "values")[0] == user:
            console.sessions.selection_set(item)
            console.root.update()
            return
    raise AssertionError(f"{user} is not in the table: {rows(console)}")


def logged(console: ServerConsole, text: str) -> bool:
    return any(text in line for line in console.log_lines())


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, port)) == 0


def test_console_shows_the_server_it_started(hosted: Hosted):
    console = hosted.console
    assert console.root.title() == TITLE
    assert console.address_label.get() == f"{HOST}:{hosted.port}"
    assert console.tls_label.get() == "TLS 1.2, TLS 1.3 (intermediate profile)"
    assert console.fingerprint_label.get().count(":") == 31
    assert console.database_label.get().endswith("chatsecure.db")
    assert console.status_label["text"] == "Running"
    assert str(console.start_button["state"]) == "disabled"
    assert port_open(hosted.port)
    pump(console, lambda: console.stored_label["text"] == "Total stored: 0")


def test_console_lists_a_client_and_disconnects_it(hosted: Hosted, clients):
    console = hosted.console
    alice = clients("alice")
    alice.wait_for(LoggedIn, console)
    pump(console, lambda: users(console) == ["alice"])
    _user, address, since, rooms = rows(console)[0]
    assert (address, rooms) == (HOST, "general")
    assert since.startswith(time.strftime("%Y-%m-%d"))
    assert console.online_label["text"] == "Online users: 1"
    assert logged(console, f"alice logged in from {HOST}")
    assert str(console.disconnect_button["state"]) == "disabled"  # nothing selected yet

    select(console, "alice")
    console.disconnect_button.invoke()
    ended = alice.wait_for(SessionEnded, console)
    assert "administrator disconnected you" in ended.message
    pump(console, lambda: users(console) == [])
    assert logged(console, "alice (127.0.0.1) gone: kicked")
    assert console.online_label["text"] == "Online users: 0"


def test_console_disables_an_account_after_confirmation(hosted: Hosted, clients):
    console = hosted.console
    bob = clients("bob")
    bob.wait_for(LoggedIn, console)
    pump(console, lambda: users(console) == ["bob"])
    select(console, "bob")
    console.disable_button.invoke()
    assert "'bob'" in hosted.confirmations[0]
    assert "disabled" in bob.wait_for(SessionEnded, console).message
    pump(console, lambda: users(console) == [])
    account = hosted.store.get_account("bob")
    assert account is not None
    assert account.disabled


def test_console_logs_a_failed_login_without_the_password(hosted: Hosted, clients):
    console = hosted.console
    clients("alice", "not-the-password-123").wait_for(LoginFailed, console)
    pump(console, lambda: logged(console, "login as 'alice'"))
    assert not any("not-the-password" in line for line in console.log_lines())
    console.kind_filter.set("failed login")
    console.root.update()
    assert len(console.log_lines()) == 1
    assert "refused (wrong name or password)" in console.log_lines()[0]
    console.kind_filter.set("all kinds")
    console.text_var.set("no such thing")
    console.root.update()
    assert console.log_lines() == []


def test_console_hides_message_text_until_shown_and_counts_messages(hosted: Hosted, clients):
    console = hosted.console
    alice = clients("alice")
    alice.wait_for(LoggedIn, console)
    alice.network.request(Send(room="general", text="the launch is on friday"))
    pump(console, lambda: logged(console, "alice → #general"))
    assert logged(console, HIDDEN_TEXT)
    assert not logged(console, "friday")
    pump(console, lambda: console.rate_label["text"] == "Messages per minute: 1")
    assert console.stored_label["text"] == "Total stored: 1"

    console.show_text_check.invoke()
    assert logged(console, "alice → #general: the launch is on friday")
    console.show_text_check.invoke()
    assert not logged(console, "friday")


def test_console_stops_and_starts_again(hosted: Hosted, clients):
    console = hosted.console
    alice = clients("alice")
    alice.wait_for(LoggedIn, console)
    pump(console, lambda: users(console) == ["alice"])

    console.stop_button.invoke()
    assert console.status_label["text"] == "Stopping…"
    assert alice.wait_for(ConnectionLost, console).reason == "shutdown"
    pump(console, lambda: console.status_label["text"] == "Stopped", timeout=TIMEOUT)
    assert not port_open(hosted.port)
    assert users(console) == []
    assert logged(console, "server stopped")
    assert str(console.start_button["state"]) == "normal"
    assert str(console.stop_button["state"]) == "disabled"

    console.start_button.invoke()
    assert console.status_label["text"] == "Running"
    assert port_open(hosted.port)
    again = clients("alice")
    again.wait_for(LoggedIn, console)
    pump(console, lambda: users(console) == ["alice"])


def test_console_closing_the_window_stops_the_server(hosted: Hosted, clients):
    console = hosted.console
    alice = clients("alice")
    alice.wait_for(LoggedIn, console)
    close(console)
    assert not port_open(hosted.port)
    while not isinstance(event := alice.events.get(timeout=TIMEOUT), ConnectionLost):
        pass  # history and presence frames that came before the bye
    assert event.reason == "shutdown"


def test_console_command_opens_and_stops_on_sigterm(tmp_path: Path, xvfb: str):
    """``chatsecure-server --gui``: the window serves at once and SIGTERM stops it cleanly."""
    config = scratch_config(tmp_path / "server")
    port = load_settings(config).server.port
    command = [sys.executable, "-m", "chatsecure.server.app", "--config", str(config), "--gui"]
    server = spawn(command, env={**os.environ, "DISPLAY": xvfb})
    try:
        deadline = time.monotonic() + TIMEOUT
        while not port_open(port):
            assert server.poll() is None, "the console exited at start"
            assert time.monotonic() < deadline, "the console did not start serving"
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        assert server.wait(TIMEOUT) == 0
        assert not port_open(port)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(5)


def test_console_reports_a_busy_port_and_starts_once_it_is_free(hosted: Hosted):
    console = hosted.console
    console.stop_button.invoke()
    pump(console, lambda: console.status_label["text"] == "Stopped")
    with socket.socket() as squatter:
        squatter.bind((HOST, hosted.port))
        squatter.listen()
        console.start_button.invoke()
        assert console.status_label["text"] == "Stopped"
        assert logged(console, f"cannot listen on {HOST}:{hosted.port}")
        assert str(console.start_button["state"]) == "normal"
    console.start_button.invoke()
    assert console.status_label["text"] == "Running"
    assert port_open(hosted.port)
