"""The chat service's replies and notices as JSON v1 frames: pure functions, no state.

Each reply becomes the frames the contract sends for it, in order (a ``Welcome`` is a
``welcome``, a ``history`` per room and per direct chat, then a ``who`` per room).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from chatsecure.protocol import (
    ROLES,
    ByeReason,
    Deleted,
    Edited,
    Error,
    ErrorCode,
    FileData,
    FileInfo,
    FileSlot,
    HistoryReply,
    Invited,
    Joined,
    Kicked,
    Member,
    MemberInfo,
    Message,
    Ok,
    Presence,
    ReadMarker,
    Req,
    Role,
    RoleChanged,
    RoomInfo,
    RoomsReply,
    SearchResults,
    ServerFrame,
    ServerPing,
    TopicChanged,
    Welcome,
    WhoReply,
)
from chatsecure.server.core import results
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
from chatsecure.storage.store import StoredMessage
from chatsecure.timestamps import format_ts

ERROR_CODES: dict[results.Why, ErrorCode] = {
    results.Why.AUTH_FAILED: ErrorCode.AUTH_FAILED,
    results.Why.RATE_LIMITED: ErrorCode.RATE_LIMITED,
    results.Why.NO_SUCH_ROOM: ErrorCode.NO_SUCH_ROOM,
    results.Why.NO_SUCH_USER: ErrorCode.NO_SUCH_USER,
    results.Why.NOT_MEMBER: ErrorCode.NOT_MEMBER,
    results.Why.WEAK_PASSWORD: ErrorCode.WEAK_PASSWORD,
    results.Why.NOT_STORED: ErrorCode.SERVER_ERROR,
    results.Why.NOT_ALLOWED: ErrorCode.NOT_ALLOWED,
    results.Why.ROOM_EXISTS: ErrorCode.ROOM_EXISTS,
    results.Why.BANNED: ErrorCode.BANNED,
    results.Why.NO_SUCH_MESSAGE: ErrorCode.NO_SUCH_MESSAGE,
    results.Why.FILE_TOO_LARGE: ErrorCode.FILE_TOO_LARGE,
    results.Why.QUOTA_EXCEEDED: ErrorCode.QUOTA_EXCEEDED,
    results.Why.BAD_UPLOAD: ErrorCode.BAD_UPLOAD,
    results.Why.NO_SUCH_FILE: ErrorCode.NO_SUCH_FILE,
    results.Why.UNSUPPORTED: ErrorCode.UNKNOWN_TYPE,  # as if the feature did not exist
}

# BROKE_PROTOCOL is missing on purpose: the adapter already said which rule was broken.
BYE_REASONS: dict[EndReason, ByeReason] = {
    EndReason.LOGOUT: ByeReason.LOGOUT,
    EndReason.SHUTDOWN: ByeReason.SHUTDOWN,
    EndReason.LOGIN_TIMEOUT: ByeReason.LOGIN_TIMEOUT,
    EndReason.IDLE_TIMEOUT: ByeReason.IDLE_TIMEOUT,
    EndReason.ACCOUNT_DISABLED: ByeReason.ACCOUNT_DISABLED,
    EndReason.CREDENTIALS_CHANGED: ByeReason.CREDENTIALS_CHANGED,
    EndReason.KICKED: ByeReason.KICKED,
}


# The core's role names as the protocol's type: a role the protocol lacks fails loudly.
_ROLES: dict[str, Role] = {role: role for role in ROLES}


def error_frame(req: Req | None, refusal: results.Refusal) -> Error:
    return Error(
        code=ERROR_CODES[refusal.why],
        message=refusal.message,
        req=req,
        retry_after=refusal.retry_after,
        received=refusal.received,
    )


def message_frame(m: StoredMessage) -> Message:
    if m.deleted:  # the text is gone; the message says so in its place
        return Message(
            id=m.id,
            ts=format_ts(m.ts_ms),
            from_=m.sender,
            text=None,
            room=m.room,
            to=m.to,
            deleted=True,
        )
    edited_ts = None if m.edited_ms is None else format_ts(m.edited_ms)
    f = m.file
    file = (
        None
        if f is None
        else FileInfo(id=f.id, name=f.name, size=f.size, sha256=f.sha256, mime=f.mime)
    )
    return Message(
        id=m.id,
        ts=format_ts(m.ts_ms),
        from_=m.sender,
        text=m.text,
        room=m.room,
        to=m.to,
        edited_ts=edited_ts,
        file=file,
    )


def history_frame(page: results.HistoryPage, req: Req | None = None) -> HistoryReply:
    where = page.conversation
    room, with_ = (where.room, None) if isinstance(where, results.InRoom) else (None, where.user)
    return HistoryReply(
        req=req,
        room=room,
        with_=with_,
        messages=tuple(message_frame(m) for m in page.messages),
        more=page.more,
        read_up_to=page.read_up_to,
    )


def who_frame(members: results.MemberList, req: Req | None = None) -> WhoReply:
    infos = tuple(
        MemberInfo(user=m.user, online=m.online, role=_ROLES[m.role]) for m in members.members
    )
    return WhoReply(req=req, room=members.room, members=infos)


def _welcome(req: Req | None, w: results.Welcome) -> Sequence[ServerFrame]:
    return [
        Welcome(req=req, user=w.user, rooms=tuple(w.rooms)),
        *(history_frame(page) for page in w.room_pages),
        *(history_frame(page) for page in w.direct_pages),
        *(who_frame(members) for members in w.member_lists),
    ]


def _joined(req: Req | None, j: results.Joined) -> Sequence[ServerFrame]:
    joined = Joined(req=req, room=j.room, topic=j.topic, private=j.private, role=_ROLES[j.role])
    return (joined, history_frame(j.page), who_frame(j.members))


def _rooms(req: Req | None, r: results.RoomList) -> Sequence[ServerFrame]:
    infos = tuple(
        RoomInfo(name=s.name, members=s.members, joined=s.joined, topic=s.topic, private=s.private)
        for s in r.rooms
    )
    return (RoomsReply(req=req, rooms=infos, more=r.more),)


def _accepted(req: Req | None, a: results.Accepted) -> Sequence[ServerFrame]:
    return (Ok(req=req, id=a.id, ts=format_ts(a.ts_ms), received=a.received),)


def _found(req: Req | None, f: results.Found) -> Sequence[ServerFrame]:
    found = tuple(message_frame(m) for m in f.messages)
    return (SearchResults(req=req, results=found, more=f.more),)


def _piece(req: Req | None, p: results.FilePiece) -> Sequence[ServerFrame]:
    return (FileData(req=req, file=p.file_id, offset=p.offset, data=p.data, last=p.last),)


_REPLIES: dict[type[Any], Callable[[Req | None, Any], Sequence[ServerFrame]]] = {
    results.Welcome: _welcome,
    results.Joined: _joined,
    results.HistoryPage: lambda req, page: (history_frame(page, req),),
    results.MemberList: lambda req, members: (who_frame(members, req),),
    results.RoomList: _rooms,
    results.Accepted: _accepted,
    results.Revised: lambda req, r: (Ok(req=req, edited_ts=format_ts(r.edited_ms)),),
    results.Done: lambda req, _done: (Ok(req=req),),
    results.Found: _found,
    results.UploadSlot: lambda req, s: (
        FileSlot(req=req, upload=s.upload, chunk_bytes=s.chunk_bytes),
    ),
    results.Received: lambda req, r: (Ok(req=req, received=r.received),),
    results.FilePiece: _piece,
}


def reply_frames(req: Req | None, reply: results.Reply) -> Sequence[ServerFrame]:
    """The frames that answer the request ``req`` with ``reply``."""
    return _REPLIES[type(reply)](req, reply)


_NOTICES: dict[type[Any], Callable[[Any], ServerFrame]] = {
    StoredMessage: message_frame,
    MemberChange: lambda c: Member(
        room=c.room, user=c.user, event="joined" if c.joined else "left"
    ),
    PresenceChange: lambda p: Presence(user=p.user, status="online" if p.online else "offline"),
    StillThere: lambda _still: ServerPing(),
    Invitation: lambda i: Invited(room=i.room, by=i.by, topic=i.topic),
    TopicChange: lambda t: TopicChanged(room=t.room, topic=t.topic, by=t.by),
    RoleChange: lambda r: RoleChanged(room=r.room, user=r.user, role=_ROLES[r.role], by=r.by),
    Removal: lambda r: Kicked(room=r.room, by=r.by, reason=r.reason, ban=r.ban),
    MessageEdited: lambda e: Edited(
        id=e.id, text=e.text, edited_ts=format_ts(e.edited_ms), by=e.by, room=e.room, to=e.to
    ),
    MessageDeleted: lambda d: Deleted(id=d.id, by=d.by, room=d.room, to=d.to),
    ReadMoved: lambda r: ReadMarker(up_to=r.up_to, room=r.room, with_=r.with_),
}


def notice_frame(notice: Notice) -> ServerFrame:
    """The one frame that tells an audience ``notice`` (an ``Admitted`` is no broadcast)."""
    return _NOTICES[type(notice)](notice)


def notice_frames(notice: Notice) -> Sequence[ServerFrame]:
    """The frames that tell one session ``notice``: a room it was made a member of is
    shown as a join's answer, without ``req`` (``joined``, ``history``, ``who``)."""
    if isinstance(notice, Admitted):
        return _joined(None, notice.joined)
    return (notice_frame(notice),)
