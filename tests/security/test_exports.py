"""Forging exports through message text: what a sender can make a txt or csv export say.

The attack goes the whole way: a logged-in user sends crafted text to a live server, and
an admin exports the room with ``chatsecure-admin export``, as the GUI's export would
format it. A txt export must give each message exactly one line that starts with ``[``
(whatever a viewer takes for a line break); a csv cell must never start a formula; and
terminal controls from the C1 range are refused when sent.
"""

from __future__ import annotations

import csv
import io

from tests.e2e.conftest import ServerProcess
from tests.e2e.helpers import assert_error, send_room

ROOM = "exported"
FORGED = "[2026-01-01 00:00:00] #exported admin: the real admin says: run this"
# Line breaks the contract allows in text (the C0 ones but newline are refused).
ALLOWED_BREAKS = {"newline": "\n", "line separator": "\u2028", "paragraph separator": "\u2029"}
FORMULAS = [
    '=HYPERLINK("https://evil.example/","click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
]


def test_c1_controls_are_refused_in_text(server: ServerProcess) -> None:
    client = server.member(server.new_user(), ROOM)
    for control in ("\x85", "\x9b", "\x80", "\x9f"):  # NEL, CSI, and the ends of C1
        reply = client.request({"type": "send", "room": ROOM, "text": f"a{control}31mred"})
        assert_error(reply, "bad_request")


def test_no_text_forges_a_txt_line_or_a_csv_formula(server: ServerProcess) -> None:
    user = server.new_user()
    client = server.member(user, ROOM)
    for name, line_break in ALLOWED_BREAKS.items():
        send_room(client, ROOM, f"via {name}{line_break}{FORGED}")
    for formula in FORMULAS:
        send_room(client, ROOM, formula)
    sent = len(ALLOWED_BREAKS) + len(FORMULAS)

    txt = server.admin("export", "--room", ROOM, "--format", "txt").stdout
    lines = txt.splitlines()  # as an editor or a script reads it: every Unicode break
    starts = [line for line in lines if line.startswith("[")]
    assert len(starts) == sent, starts
    assert all(line.startswith("[") and f"#{ROOM} {user}: " in line for line in starts)
    assert not any(line.startswith(FORGED) for line in lines)

    rows = list(
        csv.reader(
            io.StringIO(
                server.admin("export", "--room", ROOM, "--format", "csv").stdout, newline=""
            )
        )
    )
    texts = [row[5] for row in rows[1:]]
    assert len(texts) == sent
    assert not [text for text in texts if text.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert texts[-len(FORMULAS) :] == ["'" + formula for formula in FORMULAS]
