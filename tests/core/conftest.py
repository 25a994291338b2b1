"""The chat service through its JSON adapter, without sockets: links are in memory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatsecure.config import Settings, parse_settings
from chatsecure.passwords import hash_password
from chatsecure.protocol import encode, parse_server_frame
from chatsecure.protocol.events import Login
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.service import ChatService
from chatsecure.server.core.session import Session
from chatsecure.server.json import JsonWire
from chatsecure.server.json.session import JsonSession
from chatsecure.server.link import SEPARATE_LINKS, Carrier
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import Store

PASSWORD = "correct horse"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLink:
    """Collects what the adapter sends, decoded, and lets a test wait for a frame."""

    carrier: Carrier = SEPARATE_LINKS

    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.closed = False
        self.held: list[Callable[[], None]] | None = None  # a list: aside keeps the work
        self._cond = threading.Condition()
        self._read = 0

    def send(self, data: bytes) -> None:
        with self._cond:
            if self.closed:
                return
            for line in data.splitlines():
                self.frames.append(parse_server_frame(line))
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

    def next(self, kind: type | None = None, timeout: float = 5.0, **fields: Any) -> Any:
        """The next unread frame of ``kind`` with ``fields``; earlier others are skipped."""
        with self._cond:
            while True:
                while self._read < len(self.frames):
                    frame = self.frames[self._read]
                    self._read += 1
                    if (kind is None or isinstance(frame, kind)) and all(
                        getattr(frame, k, None) == v for k, v in fields.items()
                    ):
                        return frame
                if not self._cond.wait(timeout):
                    raise AssertionError(f"no {kind} {fields} within {timeout}s: {self.frames}")

    def unread(self) -> list[Any]:
        with self._cond:
            return self.frames[self._read :]


class Client:
    def __init__(self, wire: JsonWire, address: str = "127.0.0.1") -> None:
        self.outbox = FakeLink()
        self.port: JsonSession = wire.open_session(self.outbox, address)
        self.session: Session = self.port.session

    def send(self, *requests: Any) -> None:
        self.raw(b"".join(encode(r) for r in requests))

    def raw(self, data: bytes) -> None:
        assert not self.outbox.held, "the transport reads nothing while set-aside work waits"
        self.port.receive(data)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    raw = {
        "database": {"url": "sqlite:///chat.db"},
        "auth": {"bcrypt_rounds": 10},
        "rooms": {"default": ["general"]},
        "limits": {"messages_per_second": 1000, "message_burst": 1000},
    }
    return parse_settings(raw, tmp_path / "config.toml")


@pytest.fixture
def store(settings: Settings) -> Store:
    engine = make_engine(settings.database.url)
    upgrade(engine)
    s = Store(engine)
    for name in ("alice", "bob", "carol"):
        s.create_account(name, hash_password(PASSWORD, 10), ["general"])
    return s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(settings: Settings, store: Store, clock: FakeClock) -> Iterator[ChatService]:
    c = ChatService(settings, store, Hub(), clock)
    c.start()
    yield c
    c.shutdown()


@pytest.fixture
def wire(core: ChatService) -> JsonWire:
    return JsonWire(core)


@pytest.fixture
def connect(wire: JsonWire) -> Callable[..., Client]:
    def _connect(address: str = "127.0.0.1") -> Client:
        return Client(wire, address)

    return _connect


@pytest.fixture
def login(connect: Callable[..., Client]) -> Callable[..., Client]:
    def _login(name: str, address: str = "127.0.0.1") -> Client:
        client = connect(address)
        client.send(Login(username=name, password=PASSWORD, req="login"))
        from chatsecure.protocol import Welcome

        client.outbox.next(Welcome)
        return client

    return _login
