"""The chat window's search and files, driven through the real widgets under Xvfb, with a
session whose network only records requests (the ``Session`` harness of the client
tests): no server is needed, so what the widgets do is checked on its own."""

from __future__ import annotations

import gc
import hashlib
import time
import tkinter as tk
from collections.abc import Iterator
from pathlib import Path
from tkinter import filedialog

import pytest

from chatsecure.client.session import TransferProgress
from chatsecure.client.state import ConvKey
from chatsecure.gui.look import picture_size, thumbnail_factor
from chatsecure.gui.main_window import MainWindow
from chatsecure.gui.search_dialog import SearchDialog
from chatsecure.protocol import (
    FileChunk,
    FileData,
    FileGet,
    FileInfo,
    FileOffer,
    FileSlot,
    History,
    HistoryReply,
    Message,
    Ok,
    Search,
    SearchResults,
    ServerFrame,
)
from tests.client.test_additions import TS, Session, _msg
from tests.gui.pictures import png

pytestmark = pytest.mark.gui

FEATURES = ("rooms2", "edit", "read", "search", "files")
GENERAL = ConvKey.room("general")


class Window:
    """A ``MainWindow`` over an offline session; frames in, widgets redrawn."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.alice = Session(monkeypatch, features=FEATURES)
        self.root = tk.Tk()
        self.main = MainWindow(self.root, self.alice.session, lambda: None)
        self.main.frame.pack(fill="both", expand=True)
        self.root.update()

    def receive(self, *frames: ServerFrame) -> None:
        for update in self.alice.receive(*frames):
            self.main.apply(update)
        self.root.update()

    def pump_until(self, condition, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "not true in time"
            for update in self.alice.session.poll():
                self.main.apply(update)
            self.root.update()
            time.sleep(0.005)

    def req_of(self, request: object) -> int:
        return next(i for i, sent in enumerate(self.alice.network.sent, 1) if sent is request)

    def serve(self, get: object, file_id: str, data: bytes, piece: int = 1000) -> None:
        for offset in range(0, len(data), piece):
            self.receive(FileData(req=self.req_of(get), file=file_id, offset=offset,
                                  data=data[offset : offset + piece],
                                  last=offset + piece >= len(data)))  # fmt: skip


@pytest.fixture
def window(monkeypatch: pytest.MonkeyPatch) -> Iterator[Window]:
    made = Window(monkeypatch)
    yield made
    made.main.destroy()
    made.root.destroy()
    gc.collect()


def file_message(id_: int, data: bytes, name: str, mime: str) -> Message:
    info = FileInfo(id=f"f{id_}", name=name, size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), mime=mime)  # fmt: skip
    return Message(id=id_, ts=TS, from_="bob", text=name, room="general", file=info)


def test_a_file_message_has_a_save_button_that_saves_it(window, tmp_path, monkeypatch):
    data = bytes(range(256)) * 20
    window.receive(file_message(5, data, "report.bin", "application/octet-stream"))
    text = window.main.chat.get("1.0", "end")
    assert "report.bin (5.0 KB)" in text
    button = window.main.save_buttons["f5"]
    target = tmp_path / "saved.bin"
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **_options: str(target))
    button.invoke()
    (get,) = window.alice.sent(FileGet)
    window.serve(get, "f5", data)
    row = window.main.transfer_rows[1]
    assert row.finished
    assert float(row.bar.cget("value")) == float(row.bar.cget("maximum")) == len(data)
    assert target.read_bytes() == data
    assert "Saved report.bin" in str(window.main.status["text"])


def test_a_small_picture_is_shown_as_a_thumbnail_of_at_most_200_pixels(window):
    data = png(500, 120)
    window.receive(file_message(6, data, "chart.png", "image/png"))
    assert not window.main.chat.image_names()
    (get,) = window.alice.sent(FileGet)
    window.serve(get, "f6", data, piece=len(data))
    (name,) = window.main.chat.image_names()
    image = window.main.chat.image_cget(name, "image")
    assert window.root.call("image", "width", image) <= 200
    assert window.root.call("image", "height", image) <= 200
    assert picture_size(data[:32]) == (500, 120)
    assert thumbnail_factor(500, 120) == 3
    assert thumbnail_factor(100_000, 100_000) is None


def test_send_file_shows_progress_and_cancel_stops_it(window, tmp_path, monkeypatch):
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * 100)
    monkeypatch.setattr(filedialog, "askopenfilename", lambda **_options: str(path))
    window.main.ask_send_file()
    window.pump_until(lambda: 1 in window.main.transfer_rows)
    (offer,) = window.alice.sent(FileOffer)
    window.receive(FileSlot(req=window.req_of(offer), upload="t", chunk_bytes=10))
    chunks = window.alice.sent(FileChunk)
    assert len(chunks) == 8
    window.receive(Ok(req=window.req_of(chunks[0]), received=10))
    row = window.main.transfer_rows[1]
    assert float(row.bar.cget("value")) == 10
    assert "10 bytes of 100 bytes" in str(row.label["text"])
    row.cancel_button.invoke()
    window.root.update()
    assert row.finished
    assert "Cancelled big.bin" in str(row.label["text"])
    sent = len(window.alice.sent(FileChunk))
    window.receive(Ok(req=window.req_of(chunks[1]), received=20))
    assert len(window.alice.sent(FileChunk)) == sent


def test_ctrl_f_searches_and_opening_a_result_shows_it_highlighted(window):
    window.receive(HistoryReply(room="general", messages=(_msg(90), _msg(91)), more=True))
    window.main.entry.focus_force()
    window.main.entry.event_generate("<Control-f>")
    window.root.update()
    dialog = window.main.search_dialog
    assert isinstance(dialog, SearchDialog)
    assert dialog.scope.get() == "this"
    dialog.entry.insert(0, "deploy")
    dialog.search_button.invoke()
    assert window.alice.sent(Search) == [Search(q="deploy", room="general")]
    found = _msg(12, "carol", text="deploy is done")
    window.receive(SearchResults(req=len(window.alice.network.sent), results=(found,),
                                 more=False))  # fmt: skip
    assert dialog.results.item("0", "values")[:2] == ("#general", "carol")
    assert dialog.results.selection() == ("0",)
    dialog.results.focus_force()
    dialog.results.event_generate("<Return>")
    window.root.update()
    assert window.alice.sent(History)[-1] == History(room="general", before=90, limit=500)
    page = tuple(_msg(i, text="deploy is done" if i == 12 else None) for i in range(1, 90))
    window.receive(HistoryReply(req=len(window.alice.network.sent), room="general",
                                messages=page, more=False))  # fmt: skip
    found_ranges = window.main.chat.tag_ranges("found")
    assert found_ranges
    assert "deploy is done" in window.main.chat.get(found_ranges[0], found_ranges[-1])
    window.root.update()
    assert window.main.chat.bbox(found_ranges[0]) is not None  # scrolled into view


def test_progress_updates_make_one_row_per_transfer(window):
    window.main.apply(TransferProgress(7, "a.txt", 5, 10, True))
    window.main.apply(TransferProgress(8, "b.txt", 1, 10, False))
    assert sorted(window.main.transfer_rows) == [7, 8]
    assert "Fetching b.txt" in str(window.main.transfer_rows[8].label["text"])


def test_a_thumbnail_is_not_made_of_what_is_not_a_picture(window, tmp_path: Path):
    fake = tmp_path / "x.png"
    fake.write_bytes(b"not a picture at all, really")
    assert window.main.thumbnail(fake) is None
