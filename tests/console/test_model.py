"""The console's model without Tk: sessions, the event log, its filter and the counters."""

from __future__ import annotations

import subprocess
import sys

from chatsecure.server.console.model import (
    HIDDEN_TEXT,
    LOG_LIMIT,
    MESSAGE_WINDOW,
    ConsoleModel,
    LogFilter,
    LogKind,
    SessionRow,
)
from chatsecure.server.core import events

T0 = 1_700_000_000.0


def logged_in(model: ConsoleModel, session: int, user: str, rooms=("general",)) -> None:
    model.apply(events.Connected(session, "127.0.0.1", T0), T0)
    model.apply(events.LoggedIn(session, user, "127.0.0.1", rooms), T0 + 1)


def test_a_session_row_follows_connect_login_joins_leaves_and_disconnect():
    model = ConsoleModel()
    change = model.apply(events.Connected(1, "192.0.2.5", T0), T0)
    assert change.rows == (SessionRow(1, "192.0.2.5", T0),)
    change = model.apply(events.LoggedIn(1, "alice", "192.0.2.5", ("general",)), T0 + 2)
    assert change.rows == (SessionRow(1, "192.0.2.5", T0, "alice", ("general",)),)
    assert model.apply(events.RoomJoined("alice", "dev"), T0 + 3).rows[0].rooms == (
        "general",
        "dev",
    )
    assert model.apply(events.RoomLeft("alice", "general"), T0 + 4).rows[0].rooms == ("dev",)
    change = model.apply(events.Disconnected(1, "alice", "192.0.2.5", "kicked"), T0 + 5)
    assert change.removed == (1,)
    assert model.sessions == {}
    assert [e.kind for e in model.log] == [
        LogKind.CONNECT,
        LogKind.LOGIN,
        LogKind.JOIN,
        LogKind.LEAVE,
        LogKind.DISCONNECT,
    ]
    assert "alice (192.0.2.5) gone: kicked" in model.log[-1].summary


def test_joins_update_every_session_of_that_user_only():
    model = ConsoleModel()
    logged_in(model, 1, "alice")
    logged_in(model, 2, "alice")
    logged_in(model, 3, "bob")
    change = model.apply(events.RoomJoined("alice", "dev"), T0 + 5)
    assert sorted(row.session for row in change.rows) == [1, 2]
    assert model.sessions[3].rooms == ("general",)


def test_online_users_counts_people_not_sessions_or_unauthenticated_connections():
    model = ConsoleModel()
    logged_in(model, 1, "alice")
    logged_in(model, 2, "alice")
    logged_in(model, 3, "bob")
    model.apply(events.Connected(4, "198.51.100.1", T0), T0)
    assert model.online_users() == 2
    model.apply(events.Disconnected(3, "bob", "127.0.0.1", "closed"), T0 + 9)
    assert model.online_users() == 1


def test_a_disconnect_before_login_and_an_unknown_session_are_harmless():
    model = ConsoleModel()
    model.apply(events.Connected(1, "198.51.100.1", T0), T0)
    assert model.apply(events.Disconnected(1, None, "198.51.100.1", "closed"), T0).removed == (1,)
    assert model.apply(events.Disconnected(7, None, "198.51.100.1", "closed"), T0).removed == ()
    assert model.log[-1].summary == "198.51.100.1 gone: closed"


def test_a_failed_login_names_the_user_and_why_never_a_password():
    model = ConsoleModel()
    entry = model.apply(events.LoginRefused("192.0.2.9", "mallory", throttled=False), T0).entry
    assert entry is not None
    assert entry.kind is LogKind.LOGIN_FAILED
    assert "'mallory'" in entry.summary
    assert "192.0.2.9" in entry.summary
    throttled = model.apply(events.LoginRefused("192.0.2.9", "mallory", throttled=True), T0).entry
    assert throttled is not None
    assert "throttled" in throttled.summary


def test_message_text_is_hidden_unless_asked_for():
    model = ConsoleModel()
    entry = model.apply(events.MessageStored(1, "alice", "general", None, "the plan"), T0).entry
    assert entry is not None
    assert entry.detail(show_text=False) == f"alice → #general: {HIDDEN_TEXT}"
    assert entry.detail(show_text=True) == "alice → #general: the plan"
    assert "the plan" not in repr(entry)
    direct = model.apply(events.MessageStored(2, "alice", None, "bob", "psst"), T0).entry
    assert direct is not None
    assert direct.detail(show_text=True) == "alice → @bob: psst"


def test_the_filter_matches_kind_and_the_shown_text_only():
    model = ConsoleModel()
    logged_in(model, 1, "alice")
    model.apply(events.LoginRefused("192.0.2.9", "mallory", throttled=False), T0)
    model.apply(events.MessageStored(1, "alice", "general", None, "mallory is late"), T0)

    failed = model.visible_log(LogFilter(LogKind.LOGIN_FAILED), show_text=False)
    assert [e.kind for e in failed] == [LogKind.LOGIN_FAILED]
    # Hidden text must not match, or the filter would reveal what it hides.
    assert len(model.visible_log(LogFilter(text="MALLORY"), show_text=False)) == 1
    assert len(model.visible_log(LogFilter(text="MALLORY"), show_text=True)) == 2
    assert model.visible_log(LogFilter(LogKind.JOIN, "alice"), show_text=True) == []
    assert len(model.visible_log(LogFilter(), show_text=False)) == len(model.log)


def test_messages_per_minute_is_a_sliding_window():
    model = ConsoleModel()
    for second in range(0, 30, 10):
        model.apply(events.MessageStored(second, "alice", "general", None, "hi"), T0 + second)
    assert model.messages_per_minute(T0 + 30) == 3
    assert model.messages_per_minute(T0 + MESSAGE_WINDOW + 5) == 2
    assert model.messages_per_minute(T0 + MESSAGE_WINDOW + 25) == 0


def test_total_stored_starts_from_the_store_and_counts_new_messages():
    model = ConsoleModel()
    model.server_started(T0, "127.0.0.1:5443", stored=41)
    model.apply(events.MessageStored(42, "alice", "general", None, "hi"), T0)
    assert model.total_stored == 42
    model.server_started(T0 + 60, "127.0.0.1:5443", stored=40)  # e.g. history was pruned
    assert model.total_stored == 40


def test_stopping_forgets_every_session_and_faults_are_logged_as_errors():
    model = ConsoleModel()
    logged_in(model, 1, "alice")
    logged_in(model, 2, "bob")
    change = model.server_stopped(T0 + 10)
    assert sorted(change.removed) == [1, 2]
    assert model.sessions == {}
    assert model.online_users() == 0
    entry = model.apply(events.Fault("could not store 3 message(s)"), T0).entry
    assert entry is not None
    assert entry.kind is LogKind.ERROR


def test_the_log_is_bounded():
    model = ConsoleModel()
    for n in range(LOG_LIMIT + 10):
        model.apply(events.Connected(n, "127.0.0.1", T0), T0)
    assert len(model.log) == LOG_LIMIT
    assert model.log[0].summary == "connection from 127.0.0.1"


def test_model_and_host_work_without_tkinter():
    """A headless server can use both: only the window imports Tk."""
    code = (
        "import sys, chatsecure.server.console.model, chatsecure.server.host; "
        "sys.exit('tkinter' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
