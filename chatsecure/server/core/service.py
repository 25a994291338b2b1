"""The chat service: accounts, rooms, presence, history and limits, in no wire format.

Wire adapters (JSON v1, IRC, ...) turn what their clients send into calls on the
service's parts, each a domain noun:

- ``sessions``: open a session, log in, change a password, end it;
- ``rooms``: create, join, leave, who is in a room, the room list;
- ``moderation``: invitations, topics, roles, kicks and bans;
- ``messages``: send (stored by the message writer, then delivered in id order), history;
- ``edits``: edit and delete stored messages;
- ``reads``: read markers, the same on every device of an account;
- ``search``: full-text search of what the account may read;
- ``files``: uploads, the messages that share them, and downloads.

Answers and news go out through each session's ``Outbox``, which its adapter encodes;
fan-out to many sessions goes through the ``Hub`` the service is given. The ``sequencer``
lock orders what sessions see: the message writer holds it while it commits and delivers
a batch, and a login, join or leave holds it while it reads history and changes who
receives what, so no session gets a live message older than the history it was just
sent, or misses one in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chatsecure.config import Settings
from chatsecure.server.core.auth import Authenticator
from chatsecure.server.core.edits import Edits
from chatsecure.server.core.events import Observers
from chatsecure.server.core.files import Files
from chatsecure.server.core.housekeeping import Housekeeper
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.journal import Journal
from chatsecure.server.core.live import LiveSettings
from chatsecure.server.core.messages import Messages
from chatsecure.server.core.moderation import Moderation
from chatsecure.server.core.notices import EndReason
from chatsecure.server.core.reads import ReadMarkers
from chatsecure.server.core.retention import Retention
from chatsecure.server.core.rooms import Rooms
from chatsecure.server.core.search import Search
from chatsecure.server.core.sessions import Sessions
from chatsecure.storage.blobs import BlobStore, LocalBlobs
from chatsecure.storage.store import Store


class ChatService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        hub: Hub,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        live = self._live = LiveSettings(settings)
        self.observers = Observers()
        self._auth = Authenticator(store, live, clock)
        self._hub = hub
        sequencer = hub.sequencer
        self.rooms = Rooms(
            settings=live,
            store=store,
            hub=hub,
            sequencer=sequencer,
            observers=self.observers,
            clock=clock,
        )
        self.moderation = Moderation(store=store, hub=hub, rooms=self.rooms, sequencer=sequencer)
        self.reads = ReadMarkers(store=store, hub=hub, rooms=self.rooms, clock=clock)
        self.messages = Messages(
            settings=live,
            store=store,
            hub=hub,
            rooms=self.rooms,
            sequencer=sequencer,
            observers=self.observers,
            clock=clock,
        )
        self.search = Search(store=store, rooms=self.rooms, clock=clock)
        blobs: BlobStore | None = LocalBlobs(settings.files.dir) if settings.files.enabled else None
        self.files = Files(
            settings=live,
            store=store,
            blobs=blobs,
            messages=self.messages,
            clock=clock,
        )
        self.edits = Edits(
            store=store,
            hub=hub,
            rooms=self.rooms,
            messages=self.messages,
            files=self.files,
            sequencer=sequencer,
        )
        self.sessions = Sessions(
            settings=live,
            store=store,
            hub=hub,
            rooms=self.rooms,
            auth=self._auth,
            sequencer=sequencer,
            observers=self.observers,
            clock=clock,
        )
        self._housekeeper = Housekeeper(
            settings=live,
            store=store,
            hub=hub,
            sessions=self.sessions,
            auth=self._auth,
            journal=Journal(
                store=store,
                rooms=self.rooms,
                moderation=self.moderation,
                edits=self.edits,
                reads=self.reads,
            ),
            retention=Retention(settings=live, store=store, clock=clock),
            files=self.files,
            observers=self.observers,
            clock=clock,
        )

    @property
    def settings(self) -> Settings:
        """The settings in force; an adapter reads them as it opens each session."""
        return self._live.now

    def reconfigure(self, settings: Settings) -> None:
        """Apply reloaded settings: each part reads them at its next use of a value."""
        self._live.replace(settings)

    def start(self) -> None:
        self.messages.start()
        self.files.start()
        self._housekeeper.start()

    def shutdown(self) -> None:
        """Store and deliver what is queued, then end every session with ``SHUTDOWN``."""
        self._housekeeper.stop()
        self.messages.stop()
        self.files.stop()
        self._hub.flush()
        self.sessions.end_all(EndReason.SHUTDOWN)
        self._auth.close()
