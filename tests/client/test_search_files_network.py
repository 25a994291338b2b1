"""Search and files through the real network thread and a real server: a file goes up in
chunks and comes down byte for byte in another session, and a search finds a message."""

from __future__ import annotations

import os
from pathlib import Path

from chatsecure.client.events import LoggedIn
from chatsecure.client.session import SearchFound, TransferEnded
from chatsecure.client.state import ConvKey
from tests.client.helpers import session_for

GENERAL = ConvKey.room("general")


def test_a_file_goes_up_and_comes_down_the_same(shared_server, new_user, tmp_path: Path):
    alice, bob = new_user(), new_user()
    a, b = session_for(shared_server, alice), session_for(shared_server, bob)
    assert "files" in a.wait(LoggedIn).features
    b.wait(LoggedIn)
    data = os.urandom(150_000)
    source = tmp_path / f"up-{alice}.bin"
    source.write_bytes(data)
    assert a.session.send_file(source) is None
    sent = a.wait(TransferEnded, timeout=30)
    assert sent.ok, sent.text
    line = b.wait_line(source.name)
    assert line.file is not None
    assert line.file.size == len(data)
    target = tmp_path / "down" / "copy.bin"
    assert b.session.save_file(line.file, target) is None
    saved = b.wait(TransferEnded, timeout=30)
    assert saved.ok, saved.text
    assert target.read_bytes() == data
    a.session.close()
    b.session.close()


def test_a_search_finds_what_was_said(shared_server, new_user):
    alice = new_user()
    a = session_for(shared_server, alice)
    a.wait(LoggedIn)
    word = f"wombat{alice}"
    assert a.session.submit(f"the {word} is here") is None
    a.wait_line(f"the {word} is here")
    assert a.session.search(word, GENERAL) is None
    found = a.wait(SearchFound)
    assert [(hit.author, hit.key) for hit in found.hits] == [(alice, GENERAL)]
    a.session.close()
