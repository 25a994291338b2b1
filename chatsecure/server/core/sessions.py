"""Login and the life of sessions: open, log in, change a password, end.

The ``sequencer`` lock orders what sessions see (see ``ChatService``): a login holds it
while it reads what the account missed and starts receiving, so it never gets a live
message older than that history, nor misses one in between.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable

from chatsecure.server.core import events
from chatsecure.server.core.auth import Authenticator, LoginAccepted, PasswordChangeError
from chatsecure.server.core.hub import Hub
from chatsecure.server.core.live import LiveSettings
from chatsecure.server.core.notices import EndReason, PresenceChange
from chatsecure.server.core.outbox import Outbox
from chatsecure.server.core.results import (
    Done,
    HistoryPage,
    InRoom,
    Label,
    Refusal,
    Welcome,
    Why,
    WithUser,
)
from chatsecure.server.core.rooms import Rooms
from chatsecure.server.core.session import Session
from chatsecure.storage.store import Store

log = logging.getLogger(__name__)

# A name tried at login is logged up to this long: any string is accepted there.
LOGGED_NAME_CHARS = 64


def login_refused_line(outcome: str, address: str, username: str) -> str:
    """The one line a refused login logs, for fail2ban (docs/deploy.md has the filter).

    The address comes before the name, and the name is a JSON string (quotes, backslashes
    and control characters escaped), so no name can fake another address or line.
    """
    name = json.dumps(username[:LOGGED_NAME_CHARS])
    return f"login {outcome} from {address} user {name}"


class Sessions:
    def __init__(
        self,
        *,
        settings: LiveSettings,
        store: Store,
        hub: Hub,
        rooms: Rooms,
        auth: Authenticator,
        sequencer: threading.Lock,
        observers: events.Observers,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._store = store
        self._hub = hub
        self._rooms = rooms
        self._auth = auth
        self._sequencer = sequencer
        self._observers = observers
        self._clock = clock
        self._ids = itertools.count(1)
        self._closing = False  # the server is going away: nobody needs to hear who left

    def open(self, outbox: Outbox, address: str) -> Session:
        """A new, not yet logged-in session for a client at ``address`` (an IP)."""
        session = Session(next(self._ids), address, outbox, self._clock())
        self._hub.open(session)
        self._observers.emit(events.Connected(session.id, address, time.time()))
        return session

    def heard_from(self, session: Session) -> None:
        """The client said something: it is alive, so its idle clock starts again."""
        session.last_heard = self._clock()
        session.pinged = False

    # -- login ------------------------------------------------------------------------

    def login(self, session: Session, label: Label, username: str, password: str) -> None:
        """Check the credentials; on success reply ``Welcome`` with what the account missed."""
        result = self._auth.login(username, password, session.address)
        if not isinstance(result, LoginAccepted):
            throttled = result.retry_after is not None
            self._observers.emit(events.LoginRefused(session.address, username, throttled))
            outcome = "throttled" if throttled else "failed"
            log.warning("%s", login_refused_line(outcome, session.address, username))
            if throttled:
                raise Refusal(
                    Why.RATE_LIMITED,
                    "too many failed logins; try again later",
                    retry_after=result.retry_after,
                )
            raise Refusal(Why.AUTH_FAILED, "invalid username or password")
        account = result.account
        history = self._settings.now.history
        with self._sequencer:
            if session.ended:  # timed out or kicked while bcrypt ran
                return
            cap = self._settings.now.limits.max_sessions_per_user
            if len(self._hub.sessions_of(account.id)) >= cap:
                log.info(
                    "%s refused a session from %s: %d open", account.name, session.address, cap
                )
                raise Refusal(
                    Why.NOT_ALLOWED, f"this account has {cap} sessions open; close one first"
                )
            session.account = account
            log.info("%s logged in from %s", account.name, session.address)
            seen = self._store.login_snapshot(
                account.id, history.on_login, history.dm_peers_on_login
            )
            self._rooms.learn(seen.rooms)
            names = [name for _, name in seen.rooms]
            first = self._hub.log_in(session, names, seen)
            welcome = Welcome(
                user=account.name,
                rooms=names,
                room_pages=[
                    HistoryPage.of(InRoom(name), seen.room_pages[rid], seen.room_reads.get(rid, 0))
                    for rid, name in seen.rooms
                ],
                direct_pages=[
                    HistoryPage.of(WithUser(peer), page, seen.peer_reads.get(peer, 0))
                    for peer, page in seen.peers
                ],
                member_lists=[
                    self._rooms.member_list(name, seen.members[rid]) for rid, name in seen.rooms
                ],
            )
            session.outbox.reply(label, welcome)
            if first:
                self._announce(session, online=True)
        self._observers.emit(
            events.LoggedIn(session.id, account.name, session.address, tuple(names))
        )

    def _announce(self, session: Session, *, online: bool) -> None:
        """Tell every account sharing a room with the session's that it came or went."""
        mates = self._hub.room_mates(session.account_id)
        self._hub.to_accounts(mates, PresenceChange(session.user, online))

    def passwd(self, session: Session, label: Label, old: str, new: str) -> None:
        """Change the password; this session stays, every other one of the account ends."""
        assert session.account is not None
        session.changing_password = True
        try:
            generation = self._auth.change_password(session.user, old, new, session.address)
            session.account = dataclasses.replace(session.account, credential_generation=generation)
        except PasswordChangeError as refusal:
            why = Why.WEAK_PASSWORD if refusal.weak else Why.AUTH_FAILED
            raise Refusal(why, str(refusal)) from None
        finally:
            session.changing_password = False
        session.outbox.reply(label, Done())
        self._end_stale({session.account_id: generation})

    # -- the end ----------------------------------------------------------------------

    def end(self, session: Session, reason: EndReason) -> None:
        """Say goodbye through the session's outbox and forget it; only the first call acts."""
        if session.claim_end():
            session.outbox.end(reason)
            self._forget(session, reason.value)

    def lost(self, session: Session) -> None:
        """The client went away; its adapter has stopped reading and writing."""
        if session.claim_end():
            self._forget(session, "closed")

    def _forget(self, session: Session, why: str) -> None:
        # Under the sequencer, like a login, so a login that raced the end sees it ended.
        with self._sequencer:
            mates = self._hub.room_mates(session.account_id) if session.account else set()
            went_offline = self._hub.close(session)
            if went_offline and not self._closing:
                self._hub.to_accounts(mates, PresenceChange(session.user, online=False))
        user = session.account.name if session.account else None
        self._observers.emit(events.Disconnected(session.id, user, session.address, why))
        if user is not None:
            log.info("%s disconnected from %s (%s)", user, session.address, why)

    def end_all(self, reason: EndReason) -> None:
        """End every session, as the server stops: without telling each who else went."""
        self._closing = True
        for session in self._hub.sessions():
            self.end(session, reason)

    # -- admin actions ----------------------------------------------------------------

    def disconnect(self, session_id: int) -> bool:
        """End one session as an admin asked; False if it is already gone."""
        session = self._hub.session(session_id)
        if session is None:
            return False
        log.info("%s (%s) disconnected by an admin", session.user, session.address)
        self.end(session, EndReason.KICKED)
        return True

    def disable_account(self, name: str) -> None:
        """Disable the account (as ``chatsecure-admin disable`` does) and end its sessions now."""
        self._store.set_disabled(name, True)
        self.kick_blocked()

    def kick_blocked(self) -> None:
        """End the sessions of accounts disabled, deleted or given a new password since login.

        The admin tool is another process, so the server asks the database: one small
        indexed query every couple of seconds, which also works with several nodes.
        """
        online = self._hub.online_accounts()
        self._end_stale(self._store.credential_generations(online), online)

    def _end_stale(self, current: dict[int, int], accounts: Iterable[int] | None = None) -> None:
        """End the sessions of ``accounts`` (default: those in ``current``) that are stale.

        An account missing from ``current`` is disabled or gone; a session whose
        credential generation differs from its account's logged in with an old password.
        """
        for account_id in current if accounts is None else accounts:
            generation = current.get(account_id)
            for session in self._hub.sessions_of(account_id):
                if generation is None:
                    log.info("%s disabled by an admin: disconnecting", session.user)
                    self.end(session, EndReason.ACCOUNT_DISABLED)
                elif (
                    session.account is not None
                    and not session.changing_password
                    and session.account.credential_generation != generation
                ):
                    log.info("%s's password changed: disconnecting %s", session.user, session.id)
                    self.end(session, EndReason.CREDENTIALS_CHANGED)
