"""Messages: sending (rate limit, then the message writer), delivery in id order, history.

The message writer commits a batch and hands it to ``_deliver`` under the ``sequencer``,
so each message is acknowledged and fanned out only once it is stored, in id order.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

from chatsecure.server.core import events
from chatsecure.server.core.accounts import named
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.limits import AccountBuckets
from chatsecure.server.core.live import LiveSettings
from chatsecure.server.core.results import (
    Accepted,
    Activities,
    Conversation,
    HistoryPage,
    InRoom,
    Label,
    Refusal,
    Why,
    WithUser,
)
from chatsecure.server.core.rooms import Rooms
from chatsecure.server.core.session import Session
from chatsecure.server.core.writer import MessageWriter, Submission
from chatsecure.storage.store import (
    AccountRecord,
    At,
    Bound,
    NewMessage,
    Page,
    Store,
    StoredFile,
    StoredMessage,
)

NOT_STORED = Refusal(Why.NOT_STORED, "the message could not be stored; it was not sent")


class Read(Protocol):
    """One conversation's ``Store.room_history`` or ``direct_history``."""

    def __call__(
        self, *, before: Bound | None, after: Bound | None, limit: int, newest: bool
    ) -> Page: ...


class Messages:
    def __init__(
        self,
        *,
        settings: LiveSettings,
        store: Store,
        hub: Hub,
        rooms: Rooms,
        sequencer: threading.Lock,
        observers: events.Observers,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._hub = hub
        self._rooms = rooms
        self._observers = observers
        self._clock = clock
        self._buckets = AccountBuckets(self._message_rate, clock)
        self._writer = MessageWriter(store, sequencer, self._deliver, self._refuse_unstored)

    def start(self) -> None:
        self._writer.start()

    def stop(self) -> None:
        """Store and deliver everything already sent, then stop the writer."""
        self._writer.stop()

    def backlog(self) -> int:
        """Messages sent and waiting for the writer to take them into a batch."""
        return self._writer.backlog()

    # -- sending ----------------------------------------------------------------------

    def send(self, session: Session, label: Label, to: Conversation, text: str) -> None:
        """Queue ``text`` for storing; the sender hears ``Accepted`` once it is stored."""
        self.pace(session, "sending")
        message, recipient_id = self.address(session, to, text)
        self._writer.submit(Submission(message, session, label, recipient_id))

    def sends_from_memory(self, session: Session, room: str) -> bool:
        """Whether ``send`` to ``room`` needs nothing from the store (the account is known
        to be in it), so a thread that reads for many clients may call it."""
        return self._rooms.known_member(session, room)

    def share(
        self,
        session: Session,
        label: Label,
        to: Conversation,
        file: StoredFile,
        *,
        settle: Callable[[bool], None],
    ) -> None:
        """Queue a message sharing ``file`` (its text is the file's name); ``settle`` hears
        whether it was stored. Not paced: the upload's offer was."""
        message, recipient_id = self.address(session, to, file.name, file)
        self._writer.submit(Submission(message, session, label, recipient_id, settle))

    def address(
        self, session: Session, to: Conversation, text: str, file: StoredFile | None = None
    ) -> tuple[NewMessage, int | None]:
        """The message from the session's account to ``to``, and the recipient's account
        id for a direct one; refused if the account may not write there."""
        account = session.account
        assert account is not None
        if isinstance(to, InRoom):
            room_id = self._rooms.member_room_id(session, to.room)
            room = NewMessage(
                account.id, account.name, text, room_id=room_id, room_name=to.room, file=file
            )
            return room, None
        peer = self._peer(to)
        direct = NewMessage(
            account.id,
            account.name,
            text,
            recipient_id=peer.id,
            recipient_name=peer.name,
            file=file,
        )
        return direct, peer.id

    def pace(self, session: Session, doing: str) -> None:
        """Refuse a write told to a whole conversation past the account's message rate:
        sends, edits and deletions share it."""
        wait = self._buckets.take(session.account_id)
        if wait:
            raise Refusal(Why.RATE_LIMITED, f"{doing} too fast", retry_after=math.ceil(wait))

    def _peer(self, conversation: WithUser) -> AccountRecord:
        return named(self._store, conversation.user)

    def _message_rate(self) -> tuple[float, int]:
        limits = self._settings.now.limits
        return limits.messages_per_second, limits.message_burst

    def _deliver(self, stored: Sequence[tuple[Submission, StoredMessage]]) -> None:
        """Runs in the writer thread, under the sequencer, in id order."""
        observed = bool(self._observers)
        if observed and stored:
            self._observers.emit(events.BatchStored(len(stored)))
        for submission, message in stored:
            sender = submission.sender
            if submission.settle is not None:
                submission.settle(True)
            received = None if message.file is None else message.file.size
            sender.outbox.reply(submission.label, Accepted(message.id, message.ts_ms, received))
            if observed:
                self._observers.emit(
                    events.MessageStored(
                        message.id, message.sender, message.room, message.to, message.text
                    )
                )
            if message.room is not None:
                self._hub.to_room(message.room, message)
            else:
                assert submission.recipient_id is not None
                self._hub.to_accounts((sender.account_id, submission.recipient_id), message)

    def _refuse_unstored(self, submissions: Sequence[Submission]) -> None:
        self._observers.emit(events.Fault(f"could not store {len(submissions)} message(s)"))
        for submission in submissions:
            if submission.settle is not None:
                submission.settle(False)
            submission.sender.outbox.refuse(submission.label, NOT_STORED)

    # -- history ----------------------------------------------------------------------

    def history(
        self,
        session: Session,
        label: Label,
        of: Conversation,
        *,
        before: Bound | None,
        after: Bound | None,
        limit: int,
        newest: bool = False,
    ) -> None:
        """Messages strictly between the bounds: the oldest ``limit`` after ``after``
        (the newest, with ``newest``), else the newest ``limit`` before ``before``."""
        of, read = self._reader(session, of)
        page = read(before=before, after=after, limit=limit, newest=newest)
        session.outbox.reply(label, HistoryPage.of(of, page))

    def history_around(
        self, session: Session, label: Label, of: Conversation, at: Bound, *, limit: int
    ) -> None:
        """Up to ``limit`` messages around ``at``: half before it, the rest from it on
        (a message id names a message, which is included)."""
        of, read = self._reader(session, of)
        earlier = read(before=at, after=None, limit=limit // 2, newest=True)
        since = at - 1 if isinstance(at, int) else At(at.ts_ms - 1)
        later = read(before=None, after=since, limit=limit - len(earlier.messages), newest=False)
        messages = [*earlier.messages, *later.messages]
        session.outbox.reply(label, HistoryPage(of, messages, earlier.more or later.more))

    def history_between(
        self,
        session: Session,
        label: Label,
        of: Conversation,
        first: Bound,
        second: Bound,
        *,
        limit: int,
    ) -> None:
        """Up to ``limit`` messages strictly between two bounds, counted from ``first``,
        which may be the later one. Ids and times may be mixed: the range one way is
        read first, and, if it is empty, the other."""
        of, read = self._reader(session, of)
        page = read(before=second, after=first, limit=limit, newest=False)
        if not page.messages:
            page = read(before=first, after=second, limit=limit, newest=True)
        session.outbox.reply(label, HistoryPage.of(of, page))

    def activity(
        self, session: Session, label: Label, *, first_ms: int, second_ms: int, limit: int
    ) -> None:
        """The session's conversations whose latest message is strictly between two
        moments, oldest first; up to ``limit``, counted from ``first_ms``."""
        found = self._store.activity(
            session.account_id,
            after_ms=min(first_ms, second_ms),
            before_ms=max(first_ms, second_ms),
            limit=limit,
            newest=first_ms > second_ms,
        )
        conversations = [
            (InRoom(a.room) if a.room is not None else WithUser(a.peer or ""), a.last_ts_ms)
            for a in found
        ]
        session.outbox.reply(label, Activities(conversations))

    def _reader(self, session: Session, of: Conversation) -> tuple[Conversation, Read]:
        """The conversation as the store names it, and how to read its pages; refused if
        the session may not read it."""
        if isinstance(of, InRoom):
            room_id = self._rooms.member_room_id(session, of.room)
            return of, partial(self._store.room_history, room_id)
        peer = self._peer(of)
        read = partial(self._store.direct_history, session.account_id, peer.id)
        return WithUser(peer.name), read  # the name as the account spells it
