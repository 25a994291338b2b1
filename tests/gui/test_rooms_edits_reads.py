"""The client's rooms2, edit and read features, driven through the real widgets under Xvfb
against a real server: private rooms and invitations, edits and deletions seen by another
client, read markers shared by two clients of one user, and mention notifications."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from chatsecure.client.state import ConvKey
from chatsecure.gui.dialogs import (
    AskDialog,
    ConfirmDialog,
    CreateRoomDialog,
    InfoDialog,
    InviteDialog,
    SettingsDialog,
)
from chatsecure.gui.main_window import DELETED_TEXT, DIVIDER_TEXT
from tests.client.helpers import session_for
from tests.gui.conftest import chat_text, pump
from tests.gui.test_client_gui import menu_invoke, type_and_press_enter

pytestmark = pytest.mark.gui


def menu_state(app, menu_label: str, item_label: str) -> str:
    menubar = app.main.menu
    for index in range(menubar.index("end") + 1):
        if menubar.entrycget(index, "label") == menu_label:
            submenu = app.root.nametowidget(menubar.entrycget(index, "menu"))
            return str(submenu.entrycget(item_label, "state"))
    raise AssertionError(f"no menu {menu_label}")


def image_names(option: object) -> tuple[str, ...]:
    """An image option as names: Tk gives a name, a tuple or a list, by version and widget."""
    items = option if isinstance(option, (tuple, list)) else (option,)
    return tuple(str(item) for item in items)


def test_create_a_private_room_invite_and_the_invitee_joins(shared_server, new_user, apps):
    alice, bob = new_user(), new_user()
    a = apps.logged_in(shared_server, alice)
    b = apps.logged_in(shared_server, bob)
    room = f"ops-{alice}"

    menu_invoke(a, "Room", "Create room…")
    dialog = a.main.dialog
    assert isinstance(dialog, CreateRoomDialog)
    dialog.name_entry.insert(0, room)
    dialog.topic_entry.insert(0, "on call this week")
    dialog.private_check.invoke()
    dialog.ok_button.invoke()
    pump(a, lambda: a.main.state.current == ConvKey.room(room))
    pump(a, lambda: a.main.title_label["text"] == f"{room} (private)")
    lock = (str(a.main.lock_image),)  # the padlock
    assert image_names(a.main.title_label["image"]) == lock
    assert a.main.topic_label["text"] == "on call this week"
    assert image_names(a.main.sidebar.item(f"room:{room}", "image")) == lock
    assert menu_state(a, "Room", "Invite…") == "normal"  # the owner may invite

    menu_invoke(a, "Room", "Invite…")
    ask = a.main.dialog
    assert isinstance(ask, AskDialog)
    ask.entry.insert(0, bob)
    ask.ok_button.invoke()
    pump([a, b], lambda: isinstance(b.main.dialog, InviteDialog))
    invite = b.main.dialog
    assert f"{alice} invited you to #{room}" in invite.text_label["text"]
    assert "on call this week" in invite.text_label["text"]
    # bob's frame and alice's ok travel on two connections: either may come first.
    pump([a, b], lambda: f"Invite {bob} to #{room}: done." in a.main.status["text"])
    invite.ok_button.invoke()  # Join
    pump([a, b], lambda: b.main.state.current == ConvKey.room(room))
    pump(b, lambda: b.main.title_label["text"] == f"{room} (private)")
    assert b.main.topic_label["text"] == "on call this week"
    pump([a, b], lambda: bob in a.main.state.conversations[ConvKey.room(room)].members)
    assert menu_state(b, "Room", "Invite…") == "disabled"  # a member may not
    assert menu_state(b, "Room", "Kick…") == "disabled"

    # The owner kicks: the room leaves bob's list, and a notice says so.
    menu_invoke(a, "Room", "Kick…")
    kick = a.main.dialog
    assert isinstance(kick, AskDialog)
    kick.entry.insert(0, bob)
    assert kick.reason_entry is not None
    kick.reason_entry.insert(0, "testing")
    kick.ok_button.invoke()
    pump([a, b], lambda: isinstance(b.main.dialog, InfoDialog))
    assert f"{alice} removed you from #{room}" in b.main.dialog.text_label["text"]
    assert "testing" in b.main.dialog.text_label["text"]
    assert not b.main.sidebar.exists(f"room:{room}")


def test_edit_and_delete_own_message_seen_in_a_second_client(shared_server, new_user, apps):
    alice, bob = new_user(), new_user()
    a = apps.logged_in(shared_server, alice)
    b = apps.logged_in(shared_server, bob)
    type_and_press_enter(a, "helo wrold")
    pump([a, b], lambda: f"{alice}: helo wrold" in chat_text(b))

    entry = a.main.entry
    entry.focus_force()
    entry.event_generate("<Up>")  # Up in the empty entry edits the last own message
    a.root.update()
    assert entry.get("1.0", "end-1c") == "helo wrold"
    entry.event_generate("<Escape>")
    a.root.update()
    assert (a.main.editing, entry.get("1.0", "end-1c")) == (None, "")
    entry.event_generate("<Up>")
    a.root.update()
    entry.delete("1.0", "end")
    entry.insert("1.0", "hello world")
    entry.event_generate("<Return>")
    pump([a, b], lambda: f"{alice}: hello world (edited)" in chat_text(b))
    pump(a, lambda: "hello world (edited)" in chat_text(a))
    assert "helo wrold" not in chat_text(b)

    # Right-click on the message, Delete…, and confirm.
    chat = a.main.chat
    [message_id] = [line.id for line in a.main._current().lines if line.text == "hello world"]
    first = chat.tag_ranges(f"msg{message_id}")[0]
    chat.see(first)
    a.root.update()
    x, y, _w, _h = chat.bbox(first)
    chat.event_generate("<Button-3>", x=x + 2, y=y + 2, rootx=0, rooty=0)
    a.root.update()
    menu = a.main.context_menu
    assert menu is not None
    assert str(menu.entrycget("Edit", "state")) == "normal"
    menu.unpost()
    menu.invoke("Delete…")
    confirm = a.main.dialog
    assert isinstance(confirm, ConfirmDialog)
    confirm.ok_button.invoke()
    pump([a, b], lambda: f"{alice}: {DELETED_TEXT}" in chat_text(b))
    assert "hello world" not in chat_text(b)
    pump(a, lambda: DELETED_TEXT in chat_text(a))

    # Bob may not edit or delete alice's message: both are disabled for him.
    [line] = [ln for ln in b.main._current().lines if ln.id == message_id]
    bobs_menu = b.main.message_menu(line)
    assert str(bobs_menu.entrycget("Delete…", "state")) == "disabled"
    assert str(bobs_menu.entrycget("Edit", "state")) == "disabled"


def test_reading_on_one_client_clears_the_count_on_the_other(shared_server, new_user, apps):
    room = f"reads-{time.monotonic_ns() % 10**8}"
    alice = new_user(("general", room))
    bob = new_user((room,))
    first = apps.logged_in(shared_server, alice)
    second = apps.logged_in(shared_server, alice)
    sender = session_for(shared_server, bob)
    sender.until(lambda: sender.session.connected)
    sender.session.select(ConvKey.room(room))
    sender.session.submit("one")
    sender.session.submit("two")
    iid = f"room:{room}"
    both = [first, second]
    pump(both, lambda: all(app.main.sidebar.item(iid, "text") == f"# {room}  (2)" for app in both))

    first.main.sidebar.selection_set(iid)
    pump(both, lambda: first.main.state.current == ConvKey.room(room))
    assert DIVIDER_TEXT in chat_text(first)  # above the first unread message
    assert chat_text(first).index(DIVIDER_TEXT) < chat_text(first).index("one")
    pump(both, lambda: second.main.sidebar.item(iid, "text") == f"# {room}")
    assert "unread" not in second.main.sidebar.item(iid, "tags")

    # A new device logging in gets the same count from the stored marker: none.
    third = apps.logged_in(shared_server, alice)
    pump(third, lambda: third.main.state.conversations[ConvKey.room(room)].ids)
    assert third.main.sidebar.item(iid, "text") == f"# {room}"
    sender.session.close()


def _recording_notify_send(folder: Path) -> Path:
    """A ``notify-send`` that writes its arguments, one per line, to a file."""
    folder.mkdir()
    record = folder / "calls.txt"
    script = folder / "notify-send"
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do printf "%s\\n" "$a"; done >> {record}\n'
        f"echo --- >> {record}\n"
    )
    script.chmod(0o755)
    return record


def test_a_mention_raises_a_notification_when_not_focused(
    shared_server, new_user, apps, tmp_path, monkeypatch
):
    record = _recording_notify_send(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    room = f"ment-{time.monotonic_ns() % 10**8}"
    alice = new_user(("general", room))
    bob = new_user(("general", room))
    a = apps.logged_in(shared_server, alice)
    b = apps.logged_in(shared_server, bob)
    b.main.entry.focus_force()  # the other window comes to the front
    pump([a, b], lambda: not a.main.focused)

    type_and_press_enter(b, f"hey @{alice.upper()}, a look please?")
    pump([a, b], record.exists)
    pump([a, b], lambda: "---" in record.read_text())
    args = record.read_text().splitlines()
    assert args[:2] == ["--app-name=chatsecure", "--"]
    assert args[2] == f"{bob} mentioned you in #general"
    assert args[3] == f"hey @{alice.upper()}, a look please?"
    assert "mention" in a.main.chat.tag_names(a.main.chat.search("a look please", "1.0"))

    # In another room, it counts apart in the list.
    b.main.select(ConvKey.room(room))
    type_and_press_enter(b, f"@{alice} too")
    type_and_press_enter(b, "and more")
    pump([a, b], lambda: a.main.sidebar.item(f"room:{room}", "text") == f"# {room}  (2, @1)")
    # Its notification runs on a thread of its own: counted once it is written.
    pump([a, b], lambda: record.read_text().count("---") == 2)

    # Switched off in Settings: no more notifications, and the choice is saved (0600).
    menu_invoke(a, "Account", "Settings…")
    settings = a.main.dialog
    assert isinstance(settings, SettingsDialog)
    settings.notify_check.invoke()
    settings.ok_button.invoke()
    saved = tmp_path / "xdg" / "chatsecure" / "settings.json"  # the private_config fixture
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    calls = record.read_text().count("---")
    type_and_press_enter(b, f"@{alice} once more")
    pump([a, b], lambda: "once more" in chat_text(b))
    pump([a, b], lambda: a.main.state.conversations[ConvKey.room(room)].mentions == 2)
    time.sleep(0.5)
    assert record.read_text().count("---") == calls
