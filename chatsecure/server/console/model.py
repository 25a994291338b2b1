"""What the console shows, kept without Tk: sessions, the event log and the counters.

The model changes only through ``apply`` with the core's events (and the two moments the
console itself causes: the server started, the server stopped), so it can be tested
with plain records and the window only redraws what ``apply`` says changed.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from chatsecure.server.core import events

MESSAGE_WINDOW = 60.0  # seconds behind "messages per minute"
LOG_LIMIT = 5000  # entries kept; older ones fall off so a long run does not grow forever
HIDDEN_TEXT = "(text hidden)"

_RoomsChange = Callable[[tuple[str, ...]], tuple[str, ...]]


class LogKind(enum.StrEnum):
    SERVER = "server"
    CONNECT = "connect"
    LOGIN = "login"
    LOGIN_FAILED = "failed login"
    JOIN = "join"
    LEAVE = "leave"
    MESSAGE = "message"
    DISCONNECT = "disconnect"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One connection; ``user`` is ``None`` until it logs in."""

    session: int
    address: str
    since: float  # wall-clock seconds since the epoch
    user: str | None = None
    rooms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LogEntry:
    at: float  # wall-clock seconds since the epoch
    kind: LogKind
    summary: str
    # A message's text: kept out of ``summary`` (and repr) so it shows only when asked.
    text: str | None = field(default=None, repr=False)

    def detail(self, show_text: bool) -> str:
        if self.kind is not LogKind.MESSAGE:
            return self.summary
        return f"{self.summary}: {self.text if show_text else HIDDEN_TEXT}"


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Entries of one kind (``None``: any) whose shown detail contains ``text``."""

    kind: LogKind | None = None
    text: str = ""

    def matches(self, entry: LogEntry, show_text: bool) -> bool:
        if self.kind is not None and entry.kind is not self.kind:
            return False
        # Match what is on screen, so a filter cannot reveal hidden message text.
        return self.text.casefold() in entry.detail(show_text).casefold()


@dataclass(frozen=True, slots=True)
class Change:
    """What one event changed, for the window to redraw."""

    rows: tuple[SessionRow, ...] = ()  # added or updated
    removed: tuple[int, ...] = ()  # session ids
    entry: LogEntry | None = None


def _where(message: events.MessageStored) -> str:
    return f"#{message.room}" if message.room is not None else f"@{message.to}"


class ConsoleModel:
    """Sessions by id, the event log and the counters, fed one event at a time."""

    def __init__(self) -> None:
        self.sessions: dict[int, SessionRow] = {}
        self.log: deque[LogEntry] = deque(maxlen=LOG_LIMIT)
        self.total_stored = 0
        self._message_times: deque[float] = deque()

    # -- counters -------------------------------------------------------------------------

    def online_users(self) -> int:
        """Distinct logged-in users (one person may have several sessions)."""
        return len({row.user for row in self.sessions.values() if row.user is not None})

    def messages_per_minute(self, now: float) -> int:
        """Messages stored in the last ``MESSAGE_WINDOW`` seconds before ``now``."""
        while self._message_times and self._message_times[0] <= now - MESSAGE_WINDOW:
            self._message_times.popleft()
        return len(self._message_times)

    # -- what the console itself causes ----------------------------------------------------

    def server_started(self, at: float, address: str, stored: int) -> Change:
        self.total_stored = stored
        return self._log(LogEntry(at, LogKind.SERVER, f"started, listening on {address}"))

    def server_stopped(self, at: float) -> Change:
        """Every session ended with the server; forget any the core did not report."""
        removed = tuple(self.sessions)
        self.sessions.clear()
        entry = self._log(LogEntry(at, LogKind.SERVER, "stopped")).entry
        return Change(removed=removed, entry=entry)

    def fault(self, at: float, description: str) -> Change:
        """A failure the console saw itself (a refused start, a failed admin action)."""
        return self._log(LogEntry(at, LogKind.ERROR, description))

    # -- core events ------------------------------------------------------------------------

    def apply(self, event: events.ServerEvent, at: float) -> Change:
        """Take one core event that arrived at wall-clock time ``at``; what changed."""
        match event:
            case events.Connected(session, address, since):
                row = SessionRow(session, address, since)
                self.sessions[session] = row
                change = self._log(LogEntry(at, LogKind.CONNECT, f"connection from {address}"))
                return replace(change, rows=(row,))
            case events.LoggedIn(session, user, address, rooms):
                old = self.sessions.get(session)
                row = SessionRow(session, address, old.since if old else at, user, rooms)
                self.sessions[session] = row
                change = self._log(LogEntry(at, LogKind.LOGIN, f"{user} logged in from {address}"))
                return replace(change, rows=(row,))
            case events.LoginRefused(address, username, throttled):
                why = "throttled" if throttled else "wrong name or password"
                summary = f"login as {username!r} from {address} refused ({why})"
                return self._log(LogEntry(at, LogKind.LOGIN_FAILED, summary))
            case events.RoomJoined(user, room):
                rows = self._change_rooms(user, lambda rooms: (*rooms, room))
                change = self._log(LogEntry(at, LogKind.JOIN, f"{user} joined #{room}"))
                return replace(change, rows=rows)
            case events.RoomLeft(user, room):
                rows = self._change_rooms(user, lambda rooms: tuple(r for r in rooms if r != room))
                change = self._log(LogEntry(at, LogKind.LEAVE, f"{user} left #{room}"))
                return replace(change, rows=rows)
            case events.Disconnected(session, user, address, reason):
                removed = (session,) if self.sessions.pop(session, None) is not None else ()
                who = f"{user} ({address})" if user is not None else address
                change = self._log(LogEntry(at, LogKind.DISCONNECT, f"{who} gone: {reason}"))
                return replace(change, removed=removed)
            case events.MessageStored() as message:
                self.total_stored += 1
                self._message_times.append(at)
                summary = f"{message.sender} → {_where(message)}"
                return self._log(LogEntry(at, LogKind.MESSAGE, summary, message.text))
            case events.Fault(description):
                return self.fault(at, description)
            case events.BatchStored():
                return Change()  # each of its messages came as MessageStored
        raise TypeError(f"not a server event: {event!r}")

    def _change_rooms(self, user: str, change: _RoomsChange) -> tuple[SessionRow, ...]:
        """Every session of ``user`` shares its account's rooms."""
        rows = tuple(
            replace(row, rooms=change(row.rooms))
            for row in self.sessions.values()
            if row.user == user
        )
        for row in rows:
            self.sessions[row.session] = row
        return rows

    def _log(self, entry: LogEntry) -> Change:
        self.log.append(entry)
        return Change(entry=entry)

    def visible_log(self, log_filter: LogFilter, show_text: bool) -> list[LogEntry]:
        return [e for e in self.log if log_filter.matches(e, show_text)]
