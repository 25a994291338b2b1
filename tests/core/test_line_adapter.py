"""A second wire format over the same chat service: the seam between them is real.

``LineWire`` is a tiny line protocol (``LOGIN name password``, ``JOIN room``, ``SAY room
text``, ``TELL user text``), written here against the service's outbox seam alone. Its
users and JSON users log in, join and talk in the same rooms through one service, and
each broadcast is encoded once per wire format.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import cast

from chatsecure.protocol import Join, Joined, Message, Ok, Send
from chatsecure.server.core.notices import (
    EndReason,
    MemberChange,
    Notice,
    PresenceChange,
    StillThere,
)
from chatsecure.server.core.outbox import Outbox
from chatsecure.server.core.results import (
    Accepted,
    Done,
    InRoom,
    Label,
    Refusal,
    Reply,
    Welcome,
    WithUser,
)
from chatsecure.server.core.results import (
    Joined as JoinedReply,
)
from chatsecure.server.core.service import ChatService
from chatsecure.server.link import SEPARATE_LINKS, Carrier
from chatsecure.storage.store import StoredMessage

from .conftest import PASSWORD


class RecordingLink:
    carrier: Carrier = SEPARATE_LINKS

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def lines(self) -> list[str]:
        return [line for data in self.sent for line in data.decode().splitlines()]


def _notice_line(notice: Notice) -> str:
    if isinstance(notice, StoredMessage):
        where = notice.room if notice.room is not None else f"@{notice.to}"
        return f"MSG {notice.id} {where} {notice.sender} {notice.text}"
    if isinstance(notice, MemberChange):
        return f"MEMBER {notice.room} {notice.user} {'joined' if notice.joined else 'left'}"
    if isinstance(notice, PresenceChange):
        return f"PRESENCE {notice.user} {'online' if notice.online else 'offline'}"
    assert isinstance(notice, StillThere)
    return "PING"


def _reply_line(reply: Reply) -> str:
    if isinstance(reply, Welcome):
        return f"WELCOME {reply.user} {','.join(reply.rooms)}"
    if isinstance(reply, JoinedReply):
        return f"JOINED {reply.room} {len(reply.page.messages)}"
    if isinstance(reply, Accepted):
        return f"STORED {reply.id}"
    if isinstance(reply, Done):
        return "DONE"
    return f"REPLY {type(reply).__name__}"


class LineAudience:
    def __init__(self, sessions: Sequence[LineSession]) -> None:
        self.sessions = tuple(sessions)

    def tell(self, notice: Notice, skip: Outbox | None = None) -> None:
        data = f"{_notice_line(notice)}\n".encode()  # once for every member
        for session in self.sessions:
            if session is not skip:
                session.link.send(data)


class LineWire:
    def __init__(self, service: ChatService) -> None:
        self.service = service

    def open_session(self, link: RecordingLink, address: str) -> LineSession:
        return LineSession(self, link, address)

    def audience(self, outboxes: Sequence[Outbox]) -> LineAudience:
        return LineAudience(cast(Sequence[LineSession], outboxes))


class LineSession:
    """Both the transport's SessionPort and the service's Outbox, as JsonSession is."""

    def __init__(self, wire: LineWire, link: RecordingLink, address: str) -> None:
        self.wire = wire
        self.link = link
        self._service = wire.service
        self.session = self._service.sessions.open(self, address)

    def unsent_bytes(self) -> int:
        return 0

    def aside(self, work: Callable[[], None]) -> None:
        work()  # a test's reader may wait

    def receive(self, data: bytes) -> None:
        self._service.sessions.heard_from(self.session)
        for line in data.decode().splitlines():
            verb, _, rest = line.partition(" ")
            try:
                self._handle(verb, rest)
            except Refusal as refusal:
                self._say(f"REFUSED {refusal.why.value}")

    def _handle(self, verb: str, rest: str) -> None:
        service, session = self._service, self.session
        if verb == "LOGIN":
            name, _, password = rest.partition(" ")
            service.sessions.login(session, None, name, password)
        elif verb == "JOIN":
            service.rooms.join(session, None, rest)
        elif verb in ("SAY", "TELL"):
            target, _, text = rest.partition(" ")
            where = InRoom(target) if verb == "SAY" else WithUser(target)
            service.messages.send(session, None, where, text)
        elif verb == "QUIT":
            service.sessions.end(session, EndReason.LOGOUT)
        else:
            self._say(f"UNKNOWN {verb}")

    def connection_lost(self) -> None:
        self._service.sessions.lost(self.session)

    def _say(self, line: str) -> None:
        self.link.send(f"{line}\n".encode())

    def reply(self, label: Label, reply: Reply) -> None:
        self._say(_reply_line(reply))

    def refuse(self, label: Label, refusal: Refusal) -> None:
        self._say(f"REFUSED {refusal.why.value}")

    def notify(self, notice: Notice) -> None:
        self._say(_notice_line(notice))

    def end(self, reason: EndReason) -> None:
        self._say(f"BYE {reason.value}")
        self.link.close()


def _wait_for(link: RecordingLink, prefix: str) -> str:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [line for line in link.lines() if line.startswith(prefix)]
        if found:
            return found[-1]
        time.sleep(0.01)
    raise AssertionError(f"no {prefix!r} line in {link.lines()}")


def test_line_and_json_users_share_rooms_and_direct_messages(core, login):
    lines = LineWire(core)
    bob_link = RecordingLink()
    bob = lines.open_session(bob_link, "127.0.0.2")
    bob.receive(f"LOGIN bob {PASSWORD}\n".encode())
    assert _wait_for(bob_link, "WELCOME") == "WELCOME bob general"

    alice = login("alice")  # a JSON client
    bob.receive(b"JOIN dev\n")
    assert _wait_for(bob_link, "JOINED") == "JOINED dev 0"

    alice.send(Join(room="dev", req=1))
    alice.outbox.next(Joined, room="dev")
    assert _wait_for(bob_link, "MEMBER") == "MEMBER dev alice joined"

    alice.send(Send(room="dev", text="hello from JSON", req=2))
    ok = alice.outbox.next(Ok)
    assert _wait_for(bob_link, "MSG") == f"MSG {ok.id} dev alice hello from JSON"

    bob.receive(b"SAY dev hello from lines\n")
    message = alice.outbox.next(Message, room="dev", from_="bob")
    assert (message.from_, message.text) == ("bob", "hello from lines")
    assert _wait_for(bob_link, "STORED") == f"STORED {message.id}"

    bob.receive(b"TELL alice just us\n")
    direct = alice.outbox.next(Message, to="alice")
    assert (direct.from_, direct.text) == ("bob", "just us")

    bob.receive(b"SAY nowhere hi\n")
    assert _wait_for(bob_link, "REFUSED") == "REFUSED no_such_room"

    bob.receive(b"QUIT\n")
    assert bob_link.lines()[-1] == "BYE logout"
    assert bob_link.closed


def test_a_broadcast_is_encoded_once_per_wire_format(core, login):
    lines = LineWire(core)
    links = [RecordingLink() for _ in range(2)]
    for link in links:
        session = lines.open_session(link, "127.0.0.3")
        session.receive(f"LOGIN carol {PASSWORD}\n".encode())
        _wait_for(link, "WELCOME")
    alice = login("alice")
    alice.send(Send(room="general", text="to everyone", req=1))
    alice.outbox.next(Ok)
    first, second = (_last_message_bytes(link) for link in links)
    assert first is second  # the same bytes object: encoded once for both line sessions


def _last_message_bytes(link: RecordingLink) -> bytes:
    _wait_for(link, "MSG")
    return next(data for data in reversed(link.sent) if data.startswith(b"MSG"))
