"""What the core tells observers (the server console, metrics) about what happens in it.

Observers subscribe with ``ChatService.observers.subscribe`` and get these small frozen records from
whichever core thread the thing happened on, so an observer must only hand them on
(a GUI puts them on its queue). They never carry a password; a message's text is here
so an admin can choose to see it, and it is up to the observer to hide it by default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Connected:
    session: int
    address: str
    at: float  # wall-clock seconds since the epoch


@dataclass(frozen=True, slots=True)
class LoggedIn:
    session: int
    user: str
    address: str
    rooms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoginRefused:
    address: str
    username: str
    throttled: bool


@dataclass(frozen=True, slots=True)
class RoomJoined:
    user: str
    room: str


@dataclass(frozen=True, slots=True)
class RoomLeft:
    user: str
    room: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    session: int
    user: str | None
    address: str
    reason: str  # a bye reason, or "closed" when the peer went away


@dataclass(frozen=True, slots=True)
class MessageStored:
    id: int
    sender: str
    room: str | None
    to: str | None
    text: str


@dataclass(frozen=True, slots=True)
class BatchStored:
    """The message writer stored ``size`` messages in one statement (or transaction)."""

    size: int


@dataclass(frozen=True, slots=True)
class Fault:
    """Something failed inside the server (it keeps serving); already logged."""

    description: str


ServerEvent = (
    Connected
    | LoggedIn
    | LoginRefused
    | RoomJoined
    | RoomLeft
    | Disconnected
    | MessageStored
    | BatchStored
    | Fault
)
Observer = Callable[[ServerEvent], None]


class Observers:
    """Who watches the service; ``emit`` from any thread, while others subscribe."""

    def __init__(self) -> None:
        self._observers: tuple[Observer, ...] = ()  # replaced, never changed in place

    def __bool__(self) -> bool:
        """Whether anyone watches: an event that costs to build is built only then."""
        return bool(self._observers)

    def subscribe(self, observer: Observer) -> None:
        """Call ``observer`` with every ``ServerEvent`` from now on (from any thread)."""
        self._observers = (*self._observers, observer)

    def unsubscribe(self, observer: Observer) -> None:
        self._observers = tuple(o for o in self._observers if o is not observer)

    def emit(self, event: ServerEvent) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("observer %r failed on %r", observer, event)
