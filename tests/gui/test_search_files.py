"""Search and files end to end: two real clients under Xvfb and a real server. A file sent
from one window is saved, byte for byte, from the other's Save… button; a search finds
an old message and opening it shows it in the conversation."""

from __future__ import annotations

import os
from tkinter import filedialog

import pytest

from chatsecure.client.session import TransferEnded, TransferProgress
from chatsecure.client.state import ConvKey, Line
from chatsecure.gui.search_dialog import SearchDialog
from chatsecure.storage.store import NewMessage
from tests.gui.conftest import chat_text, pump
from tests.gui.test_client_gui import _fill_room, menu_invoke, type_and_press_enter

pytestmark = pytest.mark.gui


def record_updates(app, monkeypatch) -> list[object]:
    """Every update the window applies, to see the progress it was shown."""
    seen: list[object] = []
    apply = app.main.apply

    def recording(update: object) -> None:
        seen.append(update)
        apply(update)

    monkeypatch.setattr(app.main, "apply", recording)
    return seen


def test_a_sent_file_shows_progress_and_the_other_client_saves_the_same_bytes(
    shared_server, new_user, apps, tmp_path, monkeypatch
):
    alice, bob = new_user(), new_user()
    a = apps.logged_in(shared_server, alice)
    b = apps.logged_in(shared_server, bob)
    data = os.urandom(200_000)  # several chunks at the default chunk size
    source = tmp_path / f"report-{alice}.bin"
    source.write_bytes(data)
    seen = record_updates(a, monkeypatch)
    monkeypatch.setattr(filedialog, "askopenfilename", lambda **_options: str(source))
    menu_invoke(a, "Conversation", "Send file…")
    pump(a, lambda: any(isinstance(u, TransferEnded) for u in seen))
    (ended,) = [u for u in seen if isinstance(u, TransferEnded)]
    assert ended.ok, ended.text
    done = [u.done for u in seen if isinstance(u, TransferProgress)]
    assert done == sorted(done)
    assert done[0] < len(data) == done[-1]
    assert len(set(done)) > 2  # the bar moved on the way
    row = a.main.transfer_rows[ended.transfer]
    assert float(row.bar.cget("value")) == float(row.bar.cget("maximum"))

    general = b.main.state.conversations[ConvKey.room("general")]

    def shared() -> list[Line]:
        return [x for x in general.lines if x.file is not None and x.file.name == source.name]

    pump(b, shared)
    (line,) = shared()
    assert line.file is not None
    assert f"{source.name} (195.3 KB)" in chat_text(b)
    target = tmp_path / "saved" / "copy.bin"
    target.parent.mkdir()
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **_options: str(target))
    file_id = line.file.id
    pump(b, lambda: file_id in b.main.save_buttons)
    b.main.save_buttons[file_id].invoke()
    pump(b, target.exists)
    assert target.read_bytes() == data
    assert os.listdir(target.parent) == ["copy.bin"]


def test_search_finds_an_old_message_and_opening_it_shows_it(shared_server, new_user, apps):
    alice = new_user()
    room = f"find-{alice}"
    needle = f"quokka{alice} went to the deploy"
    writer = shared_server.store.get_account(alice)
    shared_server.store.join_room(writer.id, room, create=True)
    room_id = shared_server.store.room_id(room)
    shared_server.store.insert_messages(
        [NewMessage(writer.id, alice, needle, room_id=room_id, room_name=room)]
    )
    _fill_room(shared_server, room, 120)  # far more than a login or join shows
    a = apps.logged_in(shared_server, alice)
    type_and_press_enter(a, f"/join {room}")
    pump(a, lambda: "old message 119" in chat_text(a))
    assert needle not in chat_text(a)

    a.main.entry.focus_force()
    a.main.entry.event_generate("<Control-f>")
    pump(a, lambda: isinstance(a.main.search_dialog, SearchDialog))
    dialog = a.main.search_dialog
    dialog.entry.insert(0, f"quokka{alice}")
    dialog.search_button.invoke()
    pump(a, lambda: dialog.results.get_children() == ("0",))
    assert dialog.results.item("0", "values")[:2] == (f"#{room}", alice)
    dialog.results.selection_set("0")
    dialog.results.focus_force()
    dialog.results.event_generate("<Return>")
    pump(a, lambda: a.main.chat.tag_ranges("found"))
    found = a.main.chat.tag_ranges("found")
    assert needle in a.main.chat.get(found[0], found[-1])
    a.root.update()
    assert a.main.chat.bbox(found[0]) is not None
