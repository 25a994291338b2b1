"""One JSON v1 client: frames in become service calls, replies and notices go out as frames.

A ``JsonSession`` is both ends of the adapter for its connection: the transport's
``SessionPort`` (bytes in) and the service's ``Outbox`` (answers out). It owns the sans-IO
``ServerConnection``, which judges what may be read and sent in each state. Requests are
handled one at a time in arrival order: a login is answered before anything pipelined
behind it is read. Quick ones are handled on the transport's reading thread; the first
that may wait, and all behind it, on the connection's own (``Link.aside``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from chatsecure.package import version
from chatsecure.protocol import (
    Bye,
    ByeReason,
    ClientPing,
    ClientPong,
    Create,
    Delete,
    Edit,
    FileChunk,
    FileGet,
    FileOffer,
    History,
    Invite,
    Join,
    Kick,
    Leave,
    ListRooms,
    LocalProtocolError,
    Login,
    Logout,
    MarkRead,
    Passwd,
    Request,
    Search,
    Send,
    ServerFrame,
    ServerPong,
    SetRole,
    SetTopic,
    Unban,
    Who,
)
from chatsecure.protocol.server import ConnectionState, ServerConnection, Violation
from chatsecure.server.core.notices import EndReason, Notice
from chatsecure.server.core.outbox import Wire
from chatsecure.server.core.results import (
    Conversation,
    InRoom,
    Label,
    Refusal,
    Reply,
    Welcome,
    WithUser,
)
from chatsecure.server.core.rooms import ROOM_PAGE
from chatsecure.server.core.service import ChatService
from chatsecure.server.faults import request_failures
from chatsecure.server.json.frames import BYE_REASONS, error_frame, notice_frames, reply_frames
from chatsecure.server.link import Link, handle_received

# The contract's Additions this adapter serves, announced in `hello` ("files" only when
# the server shares files).
FEATURES = ("rooms2", "edit", "read", "search")
FILES = "files"


def _conversation(room: str | None, user: str | None) -> Conversation:
    """The conversation a request names; the codec made sure exactly one is given."""
    if room is not None:
        return InRoom(room)
    assert user is not None
    return WithUser(user)


class JsonSession:
    def __init__(self, service: ChatService, wire: Wire, link: Link, address: str) -> None:
        limits = service.settings.limits
        self._service = service
        self.wire = wire
        self.link = link
        self._connection = ServerConnection(limits.max_frame_bytes, limits.max_text_chars)
        self._broken: ByeReason | None = None  # the rule this client broke, if it did
        features = (*FEATURES, FILES) if service.files.enabled else FEATURES
        link.send(self._connection.hello(server_version=version(), features=features))
        self.session = service.sessions.open(self, address)

    # -- SessionPort: the transport's reader thread, or the work it set aside --------

    def receive(self, data: bytes) -> None:
        self._service.sessions.heard_from(self.session)
        self._connection.receive_data(data)
        handle_received(self._events(), self._quick, self._handle, self.link)

    def _events(self) -> Iterator[Request | Violation]:
        """What has been received, request by request, until the session ends."""
        while not self.session.ended and (event := self._connection.next_event()) is not None:
            yield event

    def _quick(self, event: Request | Violation) -> bool:
        """Whether handling ``event`` never waits: a ping, a pong, a broken rule that does
        not end the session, or a message to a room the account is known to be in."""
        if type(event) is Send:
            room = event.room
            return room is not None and self._service.messages.sends_from_memory(self.session, room)
        if type(event) is Violation:
            return event.close is None
        return type(event) is ClientPing or type(event) is ClientPong

    def _handle(self, event: Request | Violation) -> None:
        session = self.session
        if isinstance(event, Violation):
            self._send(event.error)
            if event.close is not None:
                self._broken = event.close
                self._service.sessions.end(session, EndReason.BROKE_PROTOCOL)
            return
        connection = self._connection
        try:
            _HANDLERS[type(event)](self, event)
        except Refusal as refusal:
            self._send(error_frame(event.req, refusal))
        except Exception:
            request_failures.request_failed(f"request {type(event).__name__}", session.user)
            failed = connection.request_failed(event.req)
            self._send(failed.error)
            if failed.close is not None:
                self._broken = failed.close
                self._service.sessions.end(session, EndReason.BROKE_PROTOCOL)
        else:
            connection.request_completed()

    def connection_lost(self) -> None:
        self._connection.close()
        self._service.sessions.lost(self.session)

    @property
    def logged_in(self) -> bool:
        return self.session.account is not None

    # -- Outbox: the service, from any thread -----------------------------------------

    def reply(self, label: Label, reply: Reply) -> None:
        if type(reply) is Welcome:
            self._send_as_logged_in()
        self._send(*reply_frames(label, reply))

    def refuse(self, label: Label, refusal: Refusal) -> None:
        self._send(error_frame(label, refusal))

    def notify(self, notice: Notice) -> None:
        self._send(*notice_frames(notice))

    def end(self, reason: EndReason) -> None:
        if self._connection.state is not ConnectionState.CLOSED:
            bye = Bye(reason=self._broken or BYE_REASONS[reason])
            self.link.send(self._connection.send(bye))
        self.link.close()

    def unsent_bytes(self) -> int:
        return self.link.unsent_bytes()

    def _send_as_logged_in(self) -> None:
        try:
            self._connection.login_succeeded()
        except LocalProtocolError:
            if not self.session.ended:  # else it lost a race with end() in another thread
                raise

    def _send(self, *frames: ServerFrame) -> None:
        """Queue ``frames`` for this client alone (dropped once the session has ended)."""
        try:
            for frame in frames:
                if self.session.ended:
                    return
                self.link.send(self._connection.send(frame))
        except LocalProtocolError:
            if not self.session.ended:  # else it lost a race with end() in another thread
                raise

    # -- requests ---------------------------------------------------------------------

    def _login(self, r: Login) -> None:
        self._service.sessions.login(self.session, r.req, r.username, r.password)

    def _passwd(self, r: Passwd) -> None:
        self._service.sessions.passwd(self.session, r.req, r.old, r.new)

    def _logout(self, _r: Logout) -> None:
        self._service.sessions.end(self.session, EndReason.LOGOUT)

    def _send_message(self, r: Send) -> None:
        self._service.messages.send(self.session, r.req, _conversation(r.room, r.to), r.text)

    def _history(self, r: History) -> None:
        self._service.messages.history(
            self.session,
            r.req,
            _conversation(r.room, r.with_),
            before=r.before,
            after=r.after,
            limit=r.limit,
        )

    def _join(self, r: Join) -> None:
        self._service.rooms.join(self.session, r.req, r.room)

    def _leave(self, r: Leave) -> None:
        self._service.rooms.leave(self.session, r.req, r.room)

    def _who(self, r: Who) -> None:
        self._service.rooms.who(self.session, r.req, r.room)

    def _rooms(self, r: ListRooms) -> None:
        limit = r.limit or ROOM_PAGE
        self._service.rooms.list(self.session, r.req, after=r.after, limit=limit)

    def _create(self, r: Create) -> None:
        self._service.rooms.create(self.session, r.req, r.room, private=r.private, topic=r.topic)

    def _invite(self, r: Invite) -> None:
        self._service.moderation.invite(self.session, r.req, r.room, r.user)

    def _topic(self, r: SetTopic) -> None:
        self._service.moderation.set_topic(self.session, r.req, r.room, r.topic)

    def _role(self, r: SetRole) -> None:
        self._service.moderation.set_role(self.session, r.req, r.room, r.user, r.role)

    def _kick(self, r: Kick) -> None:
        self._service.moderation.remove(
            self.session, r.req, r.room, r.user, reason=r.reason, ban=r.ban
        )

    def _unban(self, r: Unban) -> None:
        self._service.moderation.unban(self.session, r.req, r.room, r.user)

    def _edit(self, r: Edit) -> None:
        self._service.edits.edit(self.session, r.req, r.id, r.text)

    def _delete(self, r: Delete) -> None:
        self._service.edits.delete(self.session, r.req, r.id)

    def _read(self, r: MarkRead) -> None:
        self._service.reads.mark(self.session, r.req, _conversation(r.room, r.with_), r.up_to)

    def _search(self, r: Search) -> None:
        within = None if r.room is None and r.with_ is None else _conversation(r.room, r.with_)
        self._service.search.search(
            self.session, r.req, r.q, within, before=r.before, limit=r.limit
        )

    def _file_offer(self, r: FileOffer) -> None:
        to = _conversation(r.room, r.to)
        self._service.files.offer(
            self.session, r.req, to, name=r.name, size=r.size, sha256=r.sha256
        )

    def _file_chunk(self, r: FileChunk) -> None:
        self._service.files.chunk(self.session, r.req, r.upload, r.offset, r.data)

    def _file_get(self, r: FileGet) -> None:
        self._service.files.fetch(self.session, r.req, r.file, r.offset)

    def _ping(self, r: ClientPing) -> None:
        self._send(ServerPong(req=r.req))

    def _pong(self, _r: ClientPong) -> None:
        """Being heard from is all a pong means."""


_HANDLERS: dict[type[Any], Callable[[JsonSession, Any], None]] = {
    Login: JsonSession._login,
    Passwd: JsonSession._passwd,
    Logout: JsonSession._logout,
    Send: JsonSession._send_message,
    History: JsonSession._history,
    Join: JsonSession._join,
    Leave: JsonSession._leave,
    Who: JsonSession._who,
    ListRooms: JsonSession._rooms,
    Create: JsonSession._create,
    Invite: JsonSession._invite,
    SetTopic: JsonSession._topic,
    SetRole: JsonSession._role,
    Kick: JsonSession._kick,
    Unban: JsonSession._unban,
    Edit: JsonSession._edit,
    Delete: JsonSession._delete,
    MarkRead: JsonSession._read,
    Search: JsonSession._search,
    FileOffer: JsonSession._file_offer,
    FileChunk: JsonSession._file_chunk,
    FileGet: JsonSession._file_get,
    ClientPing: JsonSession._ping,
    ClientPong: JsonSession._pong,
}
