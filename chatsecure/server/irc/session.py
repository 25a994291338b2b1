"""One IRC client: lines in become service calls, replies and notices go out as IRC lines.

An ``IrcSession`` is both ends of the adapter for its connection, as ``JsonSession`` is:
the transport's ``SessionPort`` and the service's ``Outbox``. Each service call carries a
ticket (the service's ``Label``) naming what the client asked, so one reply type can be
answered as the command wants (a ``MemberList`` is NAMES or WHO) and a labeled command
gets one labeled response, however many calls it took.

Registration: ``CAP`` negotiation, ``AUTHENTICATE PLAIN`` or ``PASS``, ``NICK`` and
``USER`` (what was said so far is a ``Registration``). A SASL login succeeds before
``CAP END``, when the client may not hear 001 yet, so from then until registration ends
what the hub sends it is held (``HoldingLink``), then released after the welcome.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from chatsecure.names import TextProblem, text_problem
from chatsecure.server.core.notices import (
    Admitted,
    EndReason,
    Invitation,
    MemberChange,
    MessageDeleted,
    MessageEdited,
    Notice,
    PresenceChange,
    ReadMoved,
    Removal,
    RoleChange,
    StillThere,
    TopicChange,
)
from chatsecure.server.core.outbox import Wire
from chatsecure.server.core.results import (
    Accepted,
    Activities,
    Conversation,
    Done,
    HistoryPage,
    InRoom,
    Joined,
    Label,
    MemberList,
    Refusal,
    Reply,
    RoomList,
    Welcome,
    Why,
)
from chatsecure.server.core.service import ChatService
from chatsecure.server.faults import request_failures
from chatsecure.server.irc.chathistory import (
    MAX_LIMIT,
    HistoryQuery,
    Invalid,
    TargetsQuery,
    parse_chathistory,
)
from chatsecure.server.irc.codec import MAX_CLIENT_LINE_BYTES, Message, encode_all
from chatsecure.server.irc.connection import (
    SERVER_NAME,
    ConnectionState,
    Event,
    IrcConnection,
    Violation,
)
from chatsecure.server.irc.registration import (
    MAX_SASL_PAYLOAD,
    SASL_CHUNK,
    HoldingLink,
    Registration,
    pass_credentials,
    sasl_plain,
)
from chatsecure.server.irc.replies import (
    BATCH,
    CHATHISTORY,
    ECHO_MESSAGE,
    LABELED_RESPONSE,
    MAX_MULTILINE_LINES,
    MULTILINE,
    MULTILINE_CONCAT,
    SASL,
    batch_lines,
    capabilities,
    channel,
    conversation_of,
    history_lines,
    isupport_tokens,
    member_line,
    message_lines,
    motd_lines,
    names_lines,
    online_names,
    room_of,
    targets_lines,
    text_from_irc,
    topic_from_irc,
    user_source,
    who_lines,
)
from chatsecure.server.link import Link, handle_received
from chatsecure.storage.store import StoredMessage

MAX_TARGETS = 4  # of one PRIVMSG or NOTICE, as TARGMAX in 005 says

FAREWELLS: dict[EndReason, str] = {
    EndReason.LOGOUT: "Quit",
    EndReason.SHUTDOWN: "Server shutting down",
    EndReason.LOGIN_TIMEOUT: "Registration timed out",
    EndReason.IDLE_TIMEOUT: "Ping timeout",
    EndReason.ACCOUNT_DISABLED: "Account disabled",
    EndReason.CREDENTIALS_CHANGED: "Password changed; log in again",
    EndReason.KICKED: "Disconnected by an administrator",
    EndReason.BROKE_PROTOCOL: "Protocol error",
}


def farewell(reason: str) -> bytes:
    return encode_all([Message("ERROR", (f"Closing link: ({reason})",))])


SLOW_CONSUMER_FAREWELL = farewell("Too slow to read")


@dataclass(slots=True)
class Response:
    """What answers one client line: sent as it comes, or, for a labeled line, all at
    once (tagged, or in a ``labeled-response`` batch) when no call for it is pending."""

    label: str | None
    lines: list[Message] = field(default_factory=list)
    waiting: int = 0
    handled: bool = False


@dataclass(frozen=True, slots=True)
class Pending:
    """A service call awaiting its reply: which command it serves and for whom."""

    command: str
    response: Response
    target: str = ""
    text: str = ""
    subcommand: str = ""  # of a CHATHISTORY, which its FAIL replies name


@dataclass(slots=True)
class IncomingMultiline:
    """A multi-line message the client is sending line by line (``draft/multiline``);
    it is one message, answered at its end under the label of its first line."""

    ref: str
    target: str
    label: str | None
    command: str = ""  # PRIVMSG or NOTICE, from its first line
    text: str = ""
    lines: int = 0
    failure: Message | None = None  # why it will not be sent; its later lines are dropped


class IrcSession:
    def __init__(self, service: ChatService, wire: Wire, link: Link, address: str) -> None:
        limits = service.settings.limits
        self._service = service
        self.wire = wire
        self._link = link  # the transport: replies to this client go here
        self.link: Link = link  # where the hub's broadcasts go (held during registration)
        self._connection = IrcConnection(min(limits.max_frame_bytes, MAX_CLIENT_LINE_BYTES))
        self._max_text = limits.max_text_chars
        self._capabilities = capabilities(limits.max_text_chars)
        self._incoming: IncomingMultiline | None = None
        self._max_held = limits.max_queued_bytes
        self.caps: frozenset[str] = frozenset()
        self.own_message_id: int | None = None  # accepted from this client, not yet fanned out
        self._lock = threading.Lock()
        self._members: dict[str, set[str]] = {}  # room -> its members (online or not)
        self._pending: dict[int, Pending] = {}
        self._tickets = itertools.count(1)
        self._batches = itertools.count(1)
        self._registration = Registration()
        self._broken: str | None = None  # why we hang up, when the client broke a rule
        self._failed = False  # the command being handled failed inside the server
        self.session = service.sessions.open(self, address)

    @property
    def nick(self) -> str:
        return self._connection.nick

    # -- SessionPort: the transport's reader thread, or the work it set aside --------

    def receive(self, data: bytes) -> None:
        self._service.sessions.heard_from(self.session)
        self._connection.receive_data(data)
        handle_received(self._events(), self._quick, self._handle_event, self._link)

    def _events(self) -> Iterator[Event]:
        """What has been received, line by line, until the session ends."""
        while not self.session.ended and (event := self._connection.next_event()) is not None:
            yield event

    def _handle_event(self, event: Event) -> None:
        if isinstance(event, Violation):
            self._send([event.reply])
            if event.close:
                self._hang_up("Too many bad lines")
        else:
            self._handle(event)

    def _quick(self, event: Event) -> bool:
        """Whether handling ``event`` never waits: PING, PONG, a bad line that does not
        end the session, or PRIVMSG or NOTICE to rooms the account is known to be in."""
        if isinstance(event, Violation):
            return not event.close
        command = event.command
        if command in ("PRIVMSG", "NOTICE") and len(event.params) > 1:
            sends_from_memory = self._service.messages.sends_from_memory
            return all(
                (room := room_of(target)) is not None and sends_from_memory(self.session, room)
                for target in event.params[0].split(",")
            )
        return command in ("PING", "PONG")

    def connection_lost(self) -> None:
        self._connection.close()
        self._service.sessions.lost(self.session)

    @property
    def logged_in(self) -> bool:
        return self.session.account is not None

    def _handle(self, message: Message) -> None:
        incoming = self._incoming
        if (
            incoming is not None
            and message.tags.get("batch") == incoming.ref
            and message.command in ("PRIVMSG", "NOTICE")
        ):
            self._add_line(incoming, message)
            return
        label = message.tags.get("label") if LABELED_RESPONSE in self.caps else None
        response = Response(label or None)
        self._failed = False
        try:
            _HANDLERS[message.command](self, message, response)
        except Exception:
            self._request_failed(message.command)
            self._add(response, [self._notice("The server could not complete the request")])
        if not self._failed:
            self._connection.request_completed()
        with self._lock:
            response.handled = True
            self._finish(response)

    def _request_failed(self, command: str) -> None:
        """Log it (within the server's budget); too many in a row end the session."""
        self._failed = True
        request_failures.request_failed(command, self.session.user)
        if self._connection.request_failed():
            self._hang_up("Too many failed requests")

    def _hang_up(self, reason: str) -> None:
        self._broken = reason
        self._service.sessions.end(self.session, EndReason.BROKE_PROTOCOL)

    # -- Outbox: the service, from any thread -----------------------------------------

    def reply(self, label: Label, reply: Reply) -> None:
        pending = self._take(label)
        self._add(pending.response, _REPLIES[type(reply)](self, pending, reply), done=True)

    def refuse(self, label: Label, refusal: Refusal) -> None:
        pending = self._take(label)
        self._add(pending.response, self._refusal_lines(pending, refusal), done=True)
        if pending.command == "PASS":  # as a classic server does: 464, then goodbye
            self._hang_up(refusal.message)

    def notify(self, notice: Notice) -> None:
        if isinstance(notice, StillThere):
            self.link.send(encode_all([Message("PING", (SERVER_NAME,))]))
        elif isinstance(notice, PresenceChange):
            self.link.send(encode_all(self.presence_lines(notice)))
        elif isinstance(notice, MemberChange):
            self.note_member(notice)
            self.link.send(encode_all([member_line(notice)]))
        elif isinstance(notice, (MessageEdited, MessageDeleted, ReadMoved)):
            return  # IRC has no standard line for these; the next history read shows them
        elif isinstance(notice, (Invitation, TopicChange, RoleChange, Removal)):
            self.link.send(encode_all([self._room_change_line(notice)]))
        elif isinstance(notice, Admitted):
            self.link.send(encode_all(self._join_lines(notice.joined)))
        else:
            self.link.send(encode_all(message_lines(notice, self.caps)))

    def _room_change_line(self, change: Invitation | TopicChange | RoleChange | Removal) -> Message:
        """A moderator's change as the IRC command that makes it: INVITE, TOPIC, MODE, KICK."""
        where, source = channel(change.room), user_source(change.by)
        if isinstance(change, Invitation):
            return Message("INVITE", (self.nick, where), source)
        if isinstance(change, TopicChange):
            return Message("TOPIC", (where, change.topic), source)
        if isinstance(change, RoleChange):
            sign = "-" if change.role == "member" else "+"
            return Message("MODE", (where, f"{sign}o", change.user), source)
        with self._lock:
            self._members.pop(change.room, None)
        return Message("KICK", (where, self.nick, change.reason or change.by), source)

    def unsent_bytes(self) -> int:
        return self._link.unsent_bytes()

    def end(self, reason: EndReason) -> None:
        if self._connection.state is not ConnectionState.CLOSED:
            self._connection.close()
            self._link.send(farewell(self._broken or FAREWELLS[reason]))
        self._link.close()

    # -- what the audience asks of its members ----------------------------------------

    def note_member(self, change: MemberChange) -> None:
        with self._lock:
            if change.user == self.session.user:
                if change.joined:  # another client of this account joined the room
                    self._members.setdefault(change.room, {change.user})
                else:
                    self._members.pop(change.room, None)
                return
            members = self._members.get(change.room)
            if members is not None:
                (members.add if change.joined else members.discard)(change.user)

    def presence_lines(self, change: PresenceChange) -> list[Message]:
        """Coming online is a JOIN to each room shared with this client; going, a QUIT."""
        source = user_source(change.user)
        if not change.online:
            return [Message("QUIT", ("Offline",), source)]
        with self._lock:
            rooms = sorted(r for r, members in self._members.items() if change.user in members)
        return [Message("JOIN", (channel(room),), source) for room in rooms]

    # -- sending ------------------------------------------------------------------------

    def _send(self, lines: list[Message]) -> None:
        if lines and not self.session.ended:
            self._link.send(encode_all(lines))

    def _notice(self, text: str) -> Message:
        return Message("NOTICE", (self.nick, text), SERVER_NAME)

    def _take(self, label: Label) -> Pending:
        assert isinstance(label, int)
        with self._lock:
            return self._pending.pop(label)

    def _call(self, pending: Pending, call: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """``call(session, ticket, *args, **kwargs)`` on the service for ``pending``; a
        refusal raised at once is answered like one that comes later, and a failure (the
        store's) is answered too, so a labeled response still completes."""
        ticket = next(self._tickets)
        with self._lock:
            self._pending[ticket] = pending
            pending.response.waiting += 1
        try:
            call(self.session, ticket, *args, **kwargs)
        except Refusal as refusal:
            self.refuse(ticket, refusal)
        except Exception:
            self._request_failed(pending.command)
            self._add(self._take(ticket).response, [self._failure_line(pending)], done=True)

    def _failure_line(self, pending: Pending) -> Message:
        if pending.command == "CHATHISTORY":
            return self._connection.numeric(
                "FAIL",
                "CHATHISTORY",
                "MESSAGE_ERROR",
                pending.subcommand,
                pending.target or "*",
                "Messages could not be retrieved",
            )
        return self._notice("The server could not complete the request")

    def _add(self, response: Response, lines: list[Message], *, done: bool = False) -> None:
        with self._lock:
            if done:
                response.waiting -= 1
            if response.label is None:
                self._send(lines)
            else:
                response.lines.extend(lines)
            self._finish(response)

    def _finish(self, response: Response) -> None:
        """Send a labeled response once it is complete (called under ``_lock``)."""
        if response.label is None or not response.handled or response.waiting:
            return
        label, lines = response.label, response.lines
        response.label = None  # sent: nothing more to say under this label
        if not lines:
            self._send([Message("ACK", (), SERVER_NAME, {"label": label})])
        elif len(lines) == 1:
            self._send([lines[0].with_tags(label=label)])
        else:
            ref = self._batch_ref()
            inner = [line if "batch" in line.tags else line.with_tags(batch=ref) for line in lines]
            start, *rest = batch_lines(ref, "labeled-response", (), inner)
            self._send([start.with_tags(label=label), *rest])

    def _batch_ref(self) -> str:
        return f"b{next(self._batches)}"

    def _replayed(self, page: HistoryPage) -> list[Message]:
        """History sent without being asked (on login and join), as the chathistory spec
        says: not to clients that fetch it themselves with ``CHATHISTORY``."""
        if CHATHISTORY in self.caps:
            return []
        return history_lines(page, self.caps, self._reply_batch())

    def _reply_batch(self) -> str | None:
        """A new batch reference, for clients that read batches."""
        return self._batch_ref() if BATCH in self.caps else None

    # -- registration ---------------------------------------------------------------------

    def _cap(self, m: Message, response: Response) -> None:
        sub = m.params[0].upper()
        reg = self._registration
        nick = self.nick
        if sub == "LS":
            if self._connection.state is ConnectionState.REGISTERING:
                reg.negotiating = True
            values = len(m.params) > 1 and m.params[1].isdigit() and int(m.params[1]) >= 302
            offered = " ".join(
                f"{name}={value}" if values and value else name
                for name, value in self._capabilities.items()
            )
            self._add(response, [Message("CAP", (nick, "LS", offered), SERVER_NAME)])
        elif sub == "LIST":
            self._add(
                response, [Message("CAP", (nick, "LIST", " ".join(sorted(self.caps))), SERVER_NAME)]
            )
        elif sub == "REQ":
            self._cap_req(m.params[1] if len(m.params) > 1 else "", response)
        elif sub == "END":
            if reg.negotiating:
                reg.negotiating = False
                self._try_to_register(response)
        else:
            self._add(response, [self._connection.numeric("410", sub, "Invalid CAP command")])

    def _cap_req(self, asked: str, response: Response) -> None:
        """All or nothing, as the spec says; fixed once logged in, since audiences group
        their members by what they asked for."""
        reg = self._registration
        wanted = self.caps
        ok = self.session.account is None
        for item in asked.split():
            name = item.removeprefix("-")
            ok = ok and name in self._capabilities
            wanted = wanted - {name} if item.startswith("-") else wanted | {name}
        ok = ok and (MULTILINE not in wanted or BATCH in wanted)  # multiline comes in batches
        if ok and self._connection.state is ConnectionState.REGISTERING:
            reg.negotiating = True
        verdict = "ACK" if ok else "NAK"
        if ok:
            self.caps = wanted
        self._add(response, [Message("CAP", (self.nick, verdict, asked), SERVER_NAME)])

    def _nick(self, m: Message, response: Response) -> None:
        wanted = m.params[0]
        if self._connection.state is ConnectionState.REGISTERING:
            self._registration.nick = self._connection.nick = wanted
            self._try_to_register(response)
        elif wanted != self.nick:
            reason = f"Nicks are account names here; yours is {self.nick}"
            self._add(response, [self._connection.numeric("432", wanted, reason)])

    def _user(self, _m: Message, response: Response) -> None:
        if self._connection.state is ConnectionState.REGISTERING:
            self._registration.user_given = True
            self._try_to_register(response)
        else:
            self._add(response, [self._connection.numeric("462", "You may not reregister")])

    def _pass(self, m: Message, response: Response) -> None:
        if self._connection.state is ConnectionState.REGISTERING:
            self._registration.password = m.params[0]
        else:
            self._add(response, [self._connection.numeric("462", "You may not reregister")])

    def _authenticate(self, m: Message, response: Response) -> None:
        reg = self._registration
        numeric = self._connection.numeric
        if self.session.account is not None:
            self._add(response, [numeric("907", "You have already authenticated")])
            return
        if SASL not in self.caps:
            self._add(response, [numeric("904", "SASL authentication failed")])
            return
        chunk = m.params[0]
        if chunk == "*":
            reg.sasl_mechanism, reg.sasl_payload = False, ""
            self._add(response, [numeric("906", "SASL authentication aborted")])
        elif not reg.sasl_mechanism:
            if chunk.upper() == "PLAIN":
                reg.sasl_mechanism = True
                self._add(response, [Message("AUTHENTICATE", ("+",))])
            else:
                self._add(
                    response,
                    [
                        numeric("908", "PLAIN", "are available SASL mechanisms"),
                        numeric("904", "SASL authentication failed"),
                    ],
                )
        else:
            reg.sasl_payload += "" if chunk == "+" else chunk
            if len(reg.sasl_payload) > MAX_SASL_PAYLOAD:
                reg.sasl_mechanism, reg.sasl_payload = False, ""
                self._add(response, [numeric("905", "SASL message too long")])
            elif len(chunk) < SASL_CHUNK:
                self._sasl_login(response)

    def _sasl_login(self, response: Response) -> None:
        reg = self._registration
        credentials = sasl_plain(reg.sasl_payload)
        reg.sasl_mechanism, reg.sasl_payload = False, ""
        if credentials is None:
            self._add(response, [self._connection.numeric("904", "SASL authentication failed")])
            return
        user, password = credentials
        # Anything the hub sends from the login on waits for the end of registration.
        reg.held = HoldingLink(self._link, self._max_held, SLOW_CONSUMER_FAREWELL)
        self.link = reg.held
        self._call(Pending("AUTHENTICATE", response), self._service.sessions.login, user, password)
        if self.session.account is None:
            self.link, reg.held = self._link, None

    def _try_to_register(self, response: Response) -> None:
        reg = self._registration
        if reg.nick is None or not reg.user_given or reg.negotiating:
            return
        # The welcome burst answers registration, not the line that ended it: unlabeled,
        # and sent before what was held for the client.
        response.label = None
        if reg.welcome is not None:
            self._add(response, self._welcome_lines(reg.welcome))
            if reg.held is not None:
                reg.held.release()
            self.link, reg.held = self._link, None
        elif reg.password is not None:
            user, password = pass_credentials(reg.password, reg.nick)
            reg.password = None
            self._call(Pending("PASS", response), self._service.sessions.login, user, password)
        else:
            reason = "This server needs a login: SASL PLAIN, or PASS account:password"
            self._add(response, [self._connection.numeric("464", reason)])
            self._hang_up("No login given")

    def _welcome_lines(self, w: Welcome) -> list[Message]:
        """The registration burst: 001 to 005, MOTD, then each room joined with its names
        and history, then the direct chats' history."""
        asked = self._registration.nick or w.user
        lines = []
        if asked != w.user:
            lines.append(Message("NICK", (w.user,), user_source(asked)))
        self._connection.registered(w.user)
        numeric = self._connection.numeric
        tokens = isupport_tokens(MAX_LIMIT, MAX_TARGETS)
        lines += [
            numeric("001", f"Welcome to chatsecure, {w.user}"),
            numeric("002", f"Your host is {SERVER_NAME}"),
            numeric("003", "This server keeps every message it accepts"),
            numeric("004", SERVER_NAME, "chatsecure"),
            numeric("005", *tokens, "are supported by this server"),
            *motd_lines(w.user),
        ]
        with self._lock:
            for members in w.member_lists:
                self._members[members.room] = {m.user for m in members.members}
        pages = {page.conversation: page for page in w.room_pages}
        names = {members.room: members for members in w.member_lists}
        for room in w.rooms:
            lines.append(Message("JOIN", (channel(room),), user_source(w.user)))
            if room in names:
                lines += names_lines(w.user, room, online_names(names[room]))
            if InRoom(room) in pages:
                lines += self._replayed(pages[InRoom(room)])
        for page in w.direct_pages:
            lines += self._replayed(page)
        return lines

    # -- commands -------------------------------------------------------------------------

    def _ping(self, m: Message, response: Response) -> None:
        self._add(response, [Message("PONG", (SERVER_NAME, m.params[0]), SERVER_NAME)])

    def _pong(self, _m: Message, _response: Response) -> None:
        """Being heard from is all a pong means."""

    def _quit(self, _m: Message, _response: Response) -> None:
        self._service.sessions.end(self.session, EndReason.LOGOUT)

    def _motd(self, _m: Message, response: Response) -> None:
        self._add(response, motd_lines(self.nick))

    def _away(self, m: Message, response: Response) -> None:
        numeric = self._connection.numeric
        if m.params and m.params[0]:
            self._add(response, [numeric("306", "You have been marked as being away")])
        else:
            self._add(response, [numeric("305", "You are no longer marked as being away")])

    def _rooms_named(self, targets: str, response: Response) -> list[str]:
        """The rooms a comma list names; each bad name is answered (403 or 479)."""
        rooms = []
        for target in targets.split(","):
            room = room_of(target)
            if room is not None:
                rooms.append(room)
            elif target.startswith("#"):
                reason = "Illegal channel name: 1-32 of a-z 0-9 _ -"
                self._add(response, [self._connection.numeric("479", target, reason)])
            else:
                self._add(response, [self._connection.numeric("403", target, "No such channel")])
        return rooms

    def _join(self, m: Message, response: Response) -> None:
        for room in self._rooms_named(m.params[0], response):
            with self._lock:
                joined = room in self._members
            if not joined:
                self._call(Pending("JOIN", response, room), self._service.rooms.join, room)

    def _part(self, m: Message, response: Response) -> None:
        for room in self._rooms_named(m.params[0], response):
            self._call(Pending("PART", response, room), self._service.rooms.leave, room)

    def _names(self, m: Message, response: Response) -> None:
        if not m.params:
            self._add(response, [self._connection.numeric("366", "*", "End of /NAMES list")])
            return
        self._member_lists("NAMES", m.params[0], response)

    def _who(self, m: Message, response: Response) -> None:
        mask = m.params[0]
        if mask.startswith("#"):
            self._member_lists("WHO", mask, response)
            return
        names = [self.nick] if mask.lower() == self.nick.lower() else []
        self._add(response, who_lines(self.nick, mask, names))

    def _member_lists(self, command: str, targets: str, response: Response) -> None:
        for room in self._rooms_named(targets, response):
            self._call(Pending(command, response, room), self._service.rooms.who, room)

    def _list(self, _m: Message, response: Response) -> None:
        self._call(Pending("LIST", response), self._service.rooms.list)

    def _topic(self, m: Message, response: Response) -> None:
        numeric = self._connection.numeric
        for room in self._rooms_named(m.params[0], response):
            if len(m.params) > 1:
                pending = Pending("TOPIC", response, room)
                topic = topic_from_irc(m.params[1])
                self._call(pending, self._service.moderation.set_topic, room, topic)
            else:
                self._add(response, [numeric("331", channel(room), "No topic is set")])

    def _mode(self, m: Message, response: Response) -> None:
        numeric = self._connection.numeric
        target = m.params[0]
        if target.startswith("#"):
            if len(m.params) == 1:
                self._add(response, [numeric("324", target, "+")])
            elif m.params[1].lstrip("+") == "b":
                self._add(response, [numeric("368", target, "End of channel ban list")])
            else:
                self._add(response, [numeric("482", target, "Rooms have no modes")])
        elif target.lower() == self.nick.lower():
            self._add(response, [numeric("221", "+")])
        else:
            self._add(response, [numeric("502", "Cannot change mode for other users")])

    def _privmsg(self, m: Message, response: Response) -> None:
        raw = m.params[1]
        if raw.startswith("\x01") and not raw.startswith("\x01ACTION "):
            return  # CTCP queries (VERSION, PING, ...) have no chatsecure meaning
        self._send_text(m.command, m.params[0], text_from_irc(raw), response)

    def _send_text(self, command: str, to: str, text: str, response: Response) -> None:
        """Send ``text`` to each of the comma-separated targets ``to``."""
        numeric = self._connection.numeric
        problem = text_problem(text, self._max_text)
        if problem is TextProblem.EMPTY:
            self._add(response, [numeric("412", "No text to send")])
            return
        targets = to.split(",")
        if len(targets) > MAX_TARGETS:
            self._add(response, [numeric("407", to, "Too many recipients")])
            return
        for target in targets:
            if problem is not None:
                reason = f"Cannot send to {target}: {problem.value}"
                self._add(response, [numeric("404", target, reason)])
                continue
            conversation = self._conversation(target, response)
            if conversation is not None:
                pending = Pending(command, response, target, text)
                self._call(pending, self._service.messages.send, conversation, text)

    def _batch(self, m: Message, response: Response) -> None:
        """``draft/multiline`` batches: the only batches a client may send here."""
        ref = m.params[0]
        incoming = self._incoming
        if ref.startswith("+") and MULTILINE in self.caps:
            if len(m.params) < 3 or m.params[1] != MULTILINE:
                self._add(
                    response, [self._batch_fail("MULTILINE_INVALID", "Not a multiline batch")]
                )
                return
            self._incoming = IncomingMultiline(ref[1:], m.params[2], response.label)
            response.label = None  # answered at the end of the batch
        elif incoming is not None and ref == f"-{incoming.ref}":
            self._incoming = None
            response.label = incoming.label
            if incoming.failure is not None:
                self._add(response, [incoming.failure])
            elif incoming.lines:
                self._send_text(incoming.command, incoming.target, incoming.text, response)
            else:
                self._add(response, [self._batch_fail("MULTILINE_INVALID", "Empty batch")])
        else:
            self._add(response, [self._batch_fail("MULTILINE_INVALID", "No such batch")])

    def _add_line(self, incoming: IncomingMultiline, m: Message) -> None:
        if incoming.failure is not None:
            return
        target, piece = m.params[0], text_from_irc(m.params[1])
        problem: tuple[str, ...] = ()
        if target != incoming.target or incoming.command not in ("", m.command):
            problem = ("MULTILINE_INVALID_TARGET", incoming.target, target, "Mixed targets")
        else:
            glue = "" if MULTILINE_CONCAT in m.tags or not incoming.lines else "\n"
            incoming.command = m.command
            incoming.text += glue + piece
            incoming.lines += 1
            if len(incoming.text.encode()) > self._max_text:
                problem = ("MULTILINE_MAX_BYTES", str(self._max_text), "Message too long")
            elif incoming.lines > MAX_MULTILINE_LINES:
                problem = ("MULTILINE_MAX_LINES", str(MAX_MULTILINE_LINES), "Too many lines")
        if problem:
            incoming.failure = self._batch_fail(*problem)
            incoming.text = ""

    def _batch_fail(self, code: str, *details: str) -> Message:
        return self._connection.numeric("FAIL", "BATCH", code, *details)

    def _conversation(self, target: str, response: Response) -> Conversation | None:
        conversation = conversation_of(target)
        if conversation is None:
            code, reason = (
                ("403", "No such channel") if target.startswith("#") else ("401", "No such nick")
            )
            self._add(response, [self._connection.numeric(code, target, reason)])
        return conversation

    def _chathistory(self, m: Message, response: Response) -> None:
        if CHATHISTORY not in self.caps:
            self._add(response, [self._connection.numeric("421", m.command, "Unknown command")])
            return
        query = parse_chathistory(m.params)
        if isinstance(query, Invalid):
            fail = self._connection.numeric("FAIL", "CHATHISTORY", query.code, *query.params)
            self._add(response, [fail])
        elif isinstance(query, TargetsQuery):
            pending = Pending("CHATHISTORY", response, subcommand="TARGETS")
            self._call(
                pending,
                self._service.messages.activity,
                first_ms=query.first_ms,
                second_ms=query.second_ms,
                limit=query.limit,
            )
        else:
            pending = Pending("CHATHISTORY", response, query.target, subcommand=query.sub)
            call, args = _history_call(self._service, query)
            self._call(pending, call, *args)

    # -- replies --------------------------------------------------------------------------

    def _welcomed(self, pending: Pending, w: Welcome) -> list[Message]:
        if pending.command == "PASS":
            return self._welcome_lines(w)
        self._registration.welcome = w
        numeric = self._connection.numeric
        me = user_source(self._registration.nick or w.user)
        return [
            numeric("900", me, w.user, f"You are now logged in as {w.user}"),
            numeric("903", "SASL authentication successful"),
        ]

    def _joined(self, _pending: Pending, j: Joined) -> list[Message]:
        return self._join_lines(j)

    def _join_lines(self, j: Joined) -> list[Message]:
        """The room joined, by this client or elsewhere: JOIN, its topic, names, history."""
        with self._lock:
            self._members[j.room] = {m.user for m in j.members.members}
        topic = [self._connection.numeric("332", channel(j.room), j.topic)] if j.topic else []
        return [
            Message("JOIN", (channel(j.room),), user_source(self.nick)),
            *topic,
            *names_lines(self.nick, j.room, online_names(j.members)),
            *self._replayed(j.page),
        ]

    def _done(self, pending: Pending, _done: Done) -> list[Message]:
        if pending.command != "PART":  # a TOPIC set: the room's TOPIC line tells it
            return []
        with self._lock:
            self._members.pop(pending.target, None)
        return [Message("PART", (channel(pending.target),), user_source(self.nick))]

    def _member_list(self, pending: Pending, members: MemberList) -> list[Message]:
        with self._lock:
            self._members[members.room] = {m.user for m in members.members}
        online = online_names(members)
        if pending.command == "WHO":
            return who_lines(self.nick, channel(members.room), online)
        return names_lines(self.nick, members.room, online)

    def _room_list(self, _pending: Pending, rooms: RoomList) -> list[Message]:
        numeric = self._connection.numeric
        return [
            numeric("321", "Channel", "Users Name"),
            *(numeric("322", channel(r.name), str(r.members), "") for r in rooms.rooms),
            numeric("323", "End of /LIST"),
        ]

    def _history_page(self, _pending: Pending, page: HistoryPage) -> list[Message]:
        return history_lines(page, self.caps, self._reply_batch(), even_empty=True)

    def _activities(self, _pending: Pending, found: Activities) -> list[Message]:
        return targets_lines(found, self._reply_batch())

    def _accepted(self, pending: Pending, a: Accepted) -> list[Message]:
        self.own_message_id = a.id
        if ECHO_MESSAGE not in self.caps:
            return []
        room = room_of(pending.target)
        to = None if room is not None else pending.target
        stored = StoredMessage(a.id, a.ts_ms, self.nick, pending.text, room, to)
        return message_lines(stored, self.caps, command=pending.command)

    def _refusal_lines(self, pending: Pending, refusal: Refusal) -> list[Message]:
        numeric = self._connection.numeric
        command, why = pending.command, refusal.why
        if command == "AUTHENTICATE":
            return [numeric("904", f"SASL authentication failed: {refusal.message}")]
        if command == "PASS":
            return [numeric("464", f"Password incorrect: {refusal.message}")]
        target = pending.target
        shown = channel(target) if command in ("JOIN", "PART", "NAMES", "WHO", "TOPIC") else target
        if command == "CHATHISTORY":
            reason = "Messages could not be retrieved"
            return [
                numeric("FAIL", "CHATHISTORY", "INVALID_TARGET", pending.subcommand, target, reason)
            ]
        if why is Why.NO_SUCH_ROOM:
            return [numeric("403", shown, "No such channel")]
        if why is Why.NO_SUCH_USER:
            return [numeric("401", shown, "No such nick")]
        if command in ("PRIVMSG", "NOTICE"):
            return [numeric("404", shown, f"Cannot send to {shown}: {refusal.message}")]
        if why is Why.NOT_MEMBER:
            return [numeric("442", shown, "You're not on that channel")]
        if why is Why.BANNED:
            return [numeric("474", shown, "Cannot join channel (+b)")]
        if why is Why.NOT_ALLOWED and command == "TOPIC":
            return [numeric("482", shown, "You're not channel operator")]
        return [self._notice(f"{command} {shown}: {refusal.message}")]


_HANDLERS: dict[str, Callable[[IrcSession, Message, Response], None]] = {
    "AUTHENTICATE": IrcSession._authenticate,
    "AWAY": IrcSession._away,
    "BATCH": IrcSession._batch,
    "CAP": IrcSession._cap,
    "CHATHISTORY": IrcSession._chathistory,
    "JOIN": IrcSession._join,
    "LIST": IrcSession._list,
    "MODE": IrcSession._mode,
    "MOTD": IrcSession._motd,
    "NAMES": IrcSession._names,
    "NICK": IrcSession._nick,
    "NOTICE": IrcSession._privmsg,
    "PART": IrcSession._part,
    "PASS": IrcSession._pass,
    "PING": IrcSession._ping,
    "PONG": IrcSession._pong,
    "PRIVMSG": IrcSession._privmsg,
    "QUIT": IrcSession._quit,
    "TOPIC": IrcSession._topic,
    "USER": IrcSession._user,
    "WHO": IrcSession._who,
}

_REPLIES: dict[type[Any], Callable[[IrcSession, Pending, Any], list[Message]]] = {
    Welcome: IrcSession._welcomed,
    Joined: IrcSession._joined,
    Done: IrcSession._done,
    MemberList: IrcSession._member_list,
    RoomList: IrcSession._room_list,
    HistoryPage: IrcSession._history_page,
    Activities: IrcSession._activities,
    Accepted: IrcSession._accepted,
}


def _history_call(
    service: ChatService, q: HistoryQuery
) -> tuple[Callable[..., None], tuple[Any, ...]]:
    """The service call that answers a history query, and its arguments after the
    session and ticket."""
    messages, limit = service.messages, q.limit
    if q.sub == "AROUND":
        return partial(messages.history_around, limit=limit), (q.conversation, q.first)
    if q.sub == "BETWEEN":
        call = partial(messages.history_between, limit=limit)
        return call, (q.conversation, q.first, q.second)
    before = q.first if q.sub == "BEFORE" else None
    after = q.first if q.sub in ("AFTER", "LATEST") else None
    latest = q.sub == "LATEST"
    call = partial(messages.history, before=before, after=after, limit=limit, newest=latest)
    return call, (q.conversation,)
