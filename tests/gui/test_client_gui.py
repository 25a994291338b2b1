"""The real Tk client under Xvfb against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from tkinter import filedialog

import pytest

from chatsecure.client.state import ConvKey
from chatsecure.gui.dialogs import ExportDialog, JoinDialog, TrustDialog
from chatsecure.storage.store import NewMessage
from tests.client.helpers import session_for
from tests.gui.conftest import chat_text, login, login_error, pump
from tests.serverproc import HOST, free_port

pytestmark = pytest.mark.gui


def menu_invoke(app, menu_label: str, item_label: str) -> None:
    """Invoke a menu item the way a click on it would."""
    menubar = app.main.menu
    for index in range(menubar.index("end") + 1):
        if menubar.entrycget(index, "label") == menu_label:
            submenu = app.root.nametowidget(menubar.entrycget(index, "menu"))
            for item in range(submenu.index("end") + 1):
                if (
                    submenu.type(item) == "command"
                    and submenu.entrycget(item, "label") == item_label
                ):
                    submenu.invoke(item)
                    return
    raise AssertionError(f"no menu item {menu_label} → {item_label}")


def type_and_press_enter(app, text: str) -> None:
    entry = app.main.entry
    entry.focus_force()
    entry.insert("end", text)
    entry.event_generate("<Return>")
    app.root.update()


def test_keyboard_login_then_send_and_receive(shared_server, new_user, apps):
    alice, bob = new_user(), new_user()
    a = apps(shared_server)
    form = a.login
    assert a.root.title() == "chatsecure — log in"
    pump(a, lambda: a.root.focus_get() is form.username_entry)
    assert form.username_entry.tk_focusNext() is form.password_entry
    form.username_entry.insert(0, alice)
    form.password_entry.focus_force()
    form.password_entry.insert(0, f"pw-{alice}-Secret!")
    form.password_entry.event_generate("<Return>")
    pump(a, lambda: a.main is not None)
    assert a.root.title() == f"chatsecure — {alice}@{HOST}"
    pump(a, lambda: a.root.focus_get() is a.main.entry)
    assert a.main.state.current == ConvKey.room("general")

    b = apps.logged_in(shared_server, bob)
    a.main.entry.focus_force()
    a.main.entry.insert("end", "first line")
    a.main.entry.event_generate("<Shift-Return>")
    a.main.entry.insert("end", "second line")
    assert a.main.entry.get("1.0", "end-1c") == "first line\nsecond line"
    a.main.send_button.invoke()
    assert a.main.entry.get("1.0", "end-1c") == ""
    pump([a, b], lambda: "first line\nsecond line" in chat_text(b))
    assert f"{alice}: first line" in chat_text(b)
    pump([a, b], lambda: f"{alice} (you): first line" in chat_text(a))


def test_login_errors_are_specific(shared_server, new_user, apps, other_certs):
    user = new_user()
    app = apps(shared_server)
    assert "Invalid username or password, or the account is disabled" in login_error(
        app, user, "wrong password"
    )
    disabled = new_user()
    shared_server.store.set_disabled(disabled, True)
    assert "or the account is disabled" in login_error(app, disabled, f"pw-{disabled}-Secret!")
    login_error(app, user, "wrong password")
    login_error(app, user, "wrong password")
    assert "Too many failed logins. Try again in" in login_error(app, user, "whatever-pw")
    assert "Enter your password" in login_error(app, user, "")

    app.login.port_entry.delete(0, "end")
    app.login.port_entry.insert(0, str(free_port()))
    assert "Cannot reach the server" in login_error(app, user, "x-password")

    with socket.socket() as plain:
        plain.bind((HOST, 0))
        plain.listen()

        def answer() -> None:
            conn, _ = plain.accept()
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        threading.Thread(target=answer, daemon=True).start()
        app.login.port_entry.delete(0, "end")
        app.login.port_entry.insert(0, str(plain.getsockname()[1]))
        assert "The secure (TLS) connection" in login_error(app, user, "x-password")

    other = apps(shared_server)
    other.options = other.options.__class__(HOST, shared_server.port, "", other_certs.ca)
    assert "certificate is not trusted" in login_error(other, user, "x-password")


def test_trust_on_first_use_and_changed_certificate(own_server, other_certs, apps):
    own_server.add_user("tofu")
    app = apps(own_server, "tofu", ca=False)
    app.login.password_entry.insert(0, "pw-tofu-Secret!")
    app.login.connect_button.invoke()
    pump(app, lambda: app.trust_dialog is not None)
    dialog = app.trust_dialog
    assert isinstance(dialog, TrustDialog)
    dialog.ok_button.invoke()
    pump(app, lambda: app.main is not None)
    menu_invoke(app, "File", "Log out")
    pump(app, lambda: app.login is not None)

    own_server.restart(other_certs)
    message = login_error(app, "tofu", "pw-tofu-Secret!")
    assert "CHANGED" in message
    assert "man-in-the-middle" in message
    assert app.main is None


def test_private_chat_by_double_click_and_by_command(shared_server, new_user, apps):
    alice, bob = new_user(), new_user()
    a = apps.logged_in(shared_server, alice)
    b = apps.logged_in(shared_server, bob)
    users = a.main.users
    pump([a, b], lambda: users.exists(bob))
    users.see(bob)
    a.root.update()
    x, y, _w, _h = users.bbox(bob)
    for _ in range(2):  # two quick clicks make Tk's <Double-1>
        users.event_generate("<ButtonPress-1>", x=x + 5, y=y + 5)
        users.event_generate("<ButtonRelease-1>", x=x + 5, y=y + 5)
    a.root.update()
    assert a.main.state.current == ConvKey.direct(bob)
    assert a.main.title_label["text"] == f"Private chat with {bob}"
    type_and_press_enter(a, "psst, just you")
    pump([a, b], lambda: ConvKey.direct(alice) in b.main.state.conversations)
    assert b.main.sidebar.exists(f"direct:{alice}")
    type_and_press_enter(b, f"/msg {alice} got it")
    pump([a, b], lambda: "got it" in chat_text(a))


def test_join_and_leave(shared_server, new_user, apps):
    user = new_user()
    app = apps.logged_in(shared_server, user)
    menu_invoke(app, "Conversation", "Join room…")
    dialog = app.main.dialog
    assert isinstance(dialog, JoinDialog)
    dialog.entry.insert(0, "Bad Name!")
    dialog.ok_button.invoke()
    assert "room name" in dialog.error_label["text"]
    dialog.entry.delete(0, "end")
    dialog.entry.insert(0, f"room-{user}")
    dialog.ok_button.invoke()
    key = ConvKey.room(f"room-{user}")
    pump(app, lambda: app.main.state.current == key)
    assert app.main.sidebar.exists(f"room:room-{user}")
    type_and_press_enter(app, "/join second-" + user)
    pump(app, lambda: app.main.state.current == ConvKey.room("second-" + user))
    type_and_press_enter(app, "/leave")
    pump(app, lambda: not app.main.sidebar.exists(f"room:second-{user}"))
    app.main.select(key)
    menu_invoke(app, "Conversation", "Leave / close conversation")
    pump(app, lambda: not app.main.sidebar.exists(f"room:room-{user}"))


def _fill_room(server, room: str, count: int) -> None:
    writer = server.store.get_account("filler")
    if writer is None:
        server.add_user("filler", ())
        writer = server.store.get_account("filler")
    server.store.join_room(writer.id, room, create=True)
    room_id = server.store.room_id(room)
    server.store.insert_messages(
        [
            NewMessage(writer.id, "filler", f"old message {n}", room_id=room_id, room_name=room)
            for n in range(count)
        ]
    )


def _join_filled_room(server, apps, user: str, room: str, count: int):
    """``user``'s window, joined to ``room`` after ``count`` old messages; the last shown."""
    _fill_room(server, room, count)
    app = apps.logged_in(server, user)
    type_and_press_enter(app, f"/join {room}")
    pump(app, lambda: f"old message {count - 1}" in chat_text(app))
    return app


def test_joining_a_room_shows_its_history_once(shared_server, new_user, apps):
    user = new_user()
    app = _join_filled_room(shared_server, apps, user, f"once-{user}", 3)
    for n in range(3):
        assert chat_text(app).count(f"old message {n}") == 1


def test_load_older_clear_and_export(shared_server, new_user, apps, tmp_path, monkeypatch):
    user = new_user()
    room = f"hist-{user}"
    app = _join_filled_room(shared_server, apps, user, room, 130)
    assert "old message 79" not in chat_text(app)
    app.main.older_button.invoke()
    pump(app, lambda: "old message 79" in chat_text(app))
    assert "old message 29" not in chat_text(app)
    app.main.chat.yview_moveto(0.0)
    app.root.update()
    app.main.older_button.invoke()
    pump(app, lambda: "old message 0\n" in chat_text(app))
    assert str(app.main.older_button["state"]) == "disabled"
    assert chat_text(app).count("old message 5\n") == 1

    # Scrolled up, a new message shows the indicator instead of jumping down.
    app.main.chat.yview_moveto(0.0)
    app.root.update()
    other = session_for(shared_server, new_user((room,)))
    other.until(lambda: other.session.connected)
    other.session.select(ConvKey.room(room))
    other.session.submit("a new one")
    pump(app, lambda: "a new one" in chat_text(app))
    other.session.close()
    assert app.main.chat.yview()[0] == 0.0
    app.root.update()
    assert app.main.new_messages.winfo_ismapped()
    app.main.new_messages.invoke()
    app.root.update()
    assert not app.main.new_messages.winfo_ismapped()

    menu_invoke(app, "Conversation", "Clear chat (this view only)")
    assert "old message" not in chat_text(app)
    assert "cleared in this window only" in chat_text(app)
    app.main.older_button.invoke()
    pump(app, lambda: "a new one" in chat_text(app))

    target = tmp_path / "history.jsonl"
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **_options: str(target))
    menu_invoke(app, "File", "Export conversation…")
    dialog = app.main.dialog
    assert isinstance(dialog, ExportDialog)
    pump(app, target.exists)
    pump(app, lambda: "Saved 131 messages" in dialog.status_label["text"])
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["text"] for r in records[:2]] == ["old message 0", "old message 1"]
    assert records[-1]["text"] == "a new one"
    assert [r["id"] for r in records] == sorted({r["id"] for r in records})
    assert not list(tmp_path.glob(".history.jsonl.*"))  # written atomically, nothing left over


def test_unread_counts(shared_server, new_user, apps):
    alice, bob = new_user(("general", "unread-room")), new_user(("unread-room",))
    a = apps.logged_in(shared_server, alice)
    sender = session_for(shared_server, bob)
    sender.until(lambda: sender.session.connected)
    assert a.main.state.current == ConvKey.room("general")
    sender.session.submit("one")
    sender.session.submit("two")
    pump(a, lambda: a.main.sidebar.item("room:unread-room", "text") == "# unread-room  (2)")
    assert "unread" in a.main.sidebar.item("room:unread-room", "tags")
    a.main.sidebar.selection_set("room:unread-room")
    pump(a, lambda: a.main.state.current == ConvKey.room("unread-room"))
    assert a.main.sidebar.item("room:unread-room", "text") == "# unread-room"
    assert "two" in chat_text(a)
    sender.session.close()


def test_shortcuts_in_the_entry_do_only_their_job(shared_server, new_user, apps):
    user = new_user(("general", "keys-room"))
    app = apps.logged_in(shared_server, user)
    entry = app.main.entry
    entry.focus_force()
    entry.insert("1.0", "a draft")
    entry.mark_set("insert", "1.0")
    app.root.update()
    entry.event_generate("<Control-Tab>")
    pump(app, lambda: app.main.state.current == ConvKey.room("keys-room"))
    assert app.root.focus_get() is entry  # Text's own Ctrl+Tab would move the focus
    entry.event_generate("<Control-k>")
    app.root.update()
    assert "cleared in this window only" in chat_text(app)
    assert entry.get("1.0", "end-1c") == "a draft"  # Text's own Ctrl+K deletes the line


def test_change_password_and_logout(shared_server, new_user, apps):
    user = new_user()
    app = apps.logged_in(shared_server, user)
    menu_invoke(app, "Account", "Change password…")
    dialog = app.main.password_dialog
    dialog.old_entry.insert(0, f"pw-{user}-Secret!")
    dialog.new_entry.insert(0, "brand-new-Secret")
    dialog.again_entry.insert(0, "brand-new-Secret")
    dialog.ok_button.invoke()
    pump(app, lambda: not dialog.winfo_exists())
    assert "changed" in app.main.status["text"]
    app.main.entry.focus_force()
    app.main.entry.event_generate("<Control-l>")  # the keyboard shortcut for Log out
    pump(app, lambda: app.login is not None)
    assert app.root.title() == "chatsecure — log in"
    assert app.login.username_entry.get() == user
    assert app.root.focus_get() in (app.login.password_entry, None)
    login(app, user, "brand-new-Secret")


def test_reconnect_fills_the_gap(own_server, apps):
    own_server.add_user("watcher")
    own_server.add_user("talker")
    app = apps.logged_in(own_server, "watcher")
    own_server.kill()
    pump(app, lambda: "Reconnecting" in app.main.status["text"])
    own_server.start()
    talker = session_for(own_server, "talker")
    talker.until(lambda: talker.session.connected)
    for n in range(55):
        talker.session.submit(f"while away {n}")
    pump(app, lambda: "while away 0\n" in chat_text(app), timeout=40)
    pump(app, lambda: "while away 54" in chat_text(app))
    text = chat_text(app)
    assert [n for n in range(55) if text.count(f"while away {n}\n") != 1] == [], text
    assert "Reconnecting" not in app.main.status["text"]
    talker.session.close()
