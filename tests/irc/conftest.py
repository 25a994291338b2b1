"""The IRC adapter over the chat service without sockets: links are in memory.

The service, its store and JSON clients are the core suite's fixtures; ``irc`` makes IRC
clients that read the adapter's bytes back through the IRC codec.
"""

from __future__ import annotations

import base64
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from chatsecure.config import Settings
from chatsecure.passwords import hash_password
from chatsecure.server.core.service import ChatService
from chatsecure.server.irc import IrcWire
from chatsecure.server.irc.codec import LineReader, Message, parse
from chatsecure.server.irc.session import IrcSession
from chatsecure.server.link import SEPARATE_LINKS, Carrier
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import Store
from tests.core.conftest import (  # noqa: F401  (fixtures, found by pytest by name)
    PASSWORD,
    clock,
    connect,
    core,
    login,
    settings,
    wire,
)
from tests.e2e.conftest import (  # noqa: F401  (fixtures, found by pytest by name)
    module_server,
    server,
    server_factory,
    tls_files,
)

ALL_CAPS = (
    "sasl server-time message-tags echo-message batch multi-prefix labeled-response "
    "account-tag draft/chathistory"
)


class IrcLink:
    """Collects what the adapter sends as parsed messages; a test waits for one."""

    carrier: Carrier = SEPARATE_LINKS

    def __init__(self) -> None:
        self.received: list[Message] = []
        self.chunks: list[bytes] = []
        self.closed = False
        self.held: list[Callable[[], None]] | None = None  # a list: aside keeps the work
        self._reader = LineReader(1 << 20)
        self._cond = threading.Condition()
        self._read = 0

    def send(self, data: bytes) -> None:
        with self._cond:
            if self.closed:
                return
            self.chunks.append(data)
            self._reader.receive_data(data)
            while (line := self._reader.next_line()) is not None:
                assert isinstance(line, bytes), line
                self.received.append(parse(line))
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def unsent_bytes(self) -> int:
        return 0  # everything sent reaches the test at once

    def aside(self, work: Callable[[], None]) -> None:
        """At once (a test's reader may wait), unless the test holds set-aside work."""
        if self.held is None:
            work()
        else:
            self.held.append(work)

    def next(
        self, command: str | None = None, timeout: float = 5.0, params: tuple[str, ...] = ()
    ) -> Message:
        """The next unread message with ``command`` whose parameters start with ``params``."""
        with self._cond:
            while True:
                while self._read < len(self.received):
                    message = self.received[self._read]
                    self._read += 1
                    if (command is None or message.command == command) and (
                        message.params[: len(params)] == params
                    ):
                        return message
                if not self._cond.wait(timeout):
                    raise AssertionError(f"no {command} {params} in {self.received}")

    def until(self, command: str, params: tuple[str, ...] = ()) -> list[Message]:
        """Every unread message up to and including the next ``command`` with ``params``."""
        with self._cond:
            first = self._read
        last = self.next(command, params=params)
        with self._cond:
            taken = self.received[first : self._read]
        assert taken[-1] is last
        return taken

    def unread(self) -> list[Message]:
        with self._cond:
            return self.received[self._read :]


class IrcClient:
    def __init__(self, irc_wire: IrcWire, address: str = "127.0.0.1") -> None:
        self.link = IrcLink()
        self.port: IrcSession = irc_wire.open_session(self.link, address)

    def send(self, *lines: str) -> None:
        assert not self.link.held, "the transport reads nothing while set-aside work waits"
        self.port.receive(b"".join(line.encode() + b"\r\n" for line in lines))

    def next(self, command: str | None = None, params: tuple[str, ...] = ()) -> Message:
        return self.link.next(command, params=params)

    def sasl_login(self, user: str, password: str = PASSWORD, caps: str = ALL_CAPS) -> None:
        """CAP negotiation and SASL PLAIN, as WeeChat does it; 001 to the end of the burst
        are left unread."""
        self.send("CAP LS 302")
        self.send(f"NICK {user}")
        self.send(f"USER {user} 0 * :{user}")
        self.next("CAP", params=("*", "LS"))
        self.send(f"CAP REQ :{caps}")
        self.next("CAP", params=(user, "ACK"))
        self.send("AUTHENTICATE PLAIN")
        self.next("AUTHENTICATE")
        payload = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"AUTHENTICATE {payload}")
        self.next("903")
        self.send("CAP END")


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the core suite's accounts, made once: each test copies it."""
    path = tmp_path_factory.mktemp("irc-template") / "chat.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    template = Store(engine)
    for name in ("alice", "bob", "carol"):
        template.create_account(name, hash_password(PASSWORD, 10), ["general"])
    template.close()
    return path


@pytest.fixture
def store(settings: Settings, template_database: Path) -> Store:  # noqa: F811
    shutil.copyfile(template_database, settings.base_dir / "chat.db")
    return Store(make_engine(settings.database.url))


@pytest.fixture
def irc_wire(core: ChatService) -> IrcWire:  # noqa: F811
    return IrcWire(core)


@pytest.fixture
def irc(irc_wire: IrcWire) -> Callable[..., IrcClient]:
    def _connect(address: str = "127.0.0.1") -> IrcClient:
        return IrcClient(irc_wire, address)

    return _connect


@pytest.fixture
def irc_login(irc: Callable[..., IrcClient]) -> Callable[..., IrcClient]:
    """An IRC client logged in with every capability, its registration burst read."""

    def _login(user: str, caps: str = ALL_CAPS) -> IrcClient:
        client = irc()
        client.sasl_login(user, caps=caps)
        client.next("376")
        return client

    return _login
