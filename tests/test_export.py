import csv
import io
import json
import os
import stat
import tracemalloc
from collections.abc import Iterator

import pytest

from chatsecure.export import (
    CSV_HEADER,
    TXT_INDENT,
    ExportFile,
    ExportRecord,
    export_to_path,
    saved_file_name,
    write_records,
)

TRICKY = 'a, "quoted" text,\nwith a second line\n\n  and an indented third, "end"'
RECORDS = [
    ExportRecord(1, "2026-11-21T10:00:00.123Z", "alice", "general", None, "hi, all"),
    ExportRecord(2, "2026-11-21T10:00:01.000Z", "bob", "general", None, TRICKY),
    ExportRecord(3, "2026-11-21T10:00:02.999Z", "alice", None, "Bob", 'private, "really"'),
    ExportRecord(4, "2026-11-21T10:00:03.000Z", "Bob", None, "alice", "ünïcødé ✓ 日本語"),
]


def _export(fmt: str, records: list[ExportRecord] = RECORDS) -> str:
    out = io.StringIO(newline="")
    count = write_records(records, out, fmt)
    assert count == len(records)
    return out.getvalue()


def parse_txt(text: str) -> list[tuple[str, str]]:
    """Read a txt export back: a line starting with '[' starts a message."""
    messages: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith(TXT_INDENT):
            messages[-1][1] += "\n" + line[len(TXT_INDENT) :]
        elif line == "":
            messages[-1][1] += "\n"
        else:
            head, _, body = line.partition(": ")
            messages.append([head, body])
    return [(head, body) for head, body in messages]


def test_jsonl_round_trips_and_names_room_or_to():
    lines = _export("jsonl").splitlines()
    objects = [json.loads(line) for line in lines]
    assert objects[0] == {
        "id": 1,
        "ts": "2026-11-21T10:00:00.123Z",
        "from": "alice",
        "room": "general",
        "text": "hi, all",
    }
    assert list(objects[2]) == ["id", "ts", "from", "to", "text"]
    assert [o["text"] for o in objects] == [r.text for r in RECORDS]
    assert "✓" in lines[3]  # UTF-8, not \u escapes: readable


def test_csv_round_trips_with_the_contract_header():
    rows = list(csv.reader(io.StringIO(_export("csv"), newline="")))
    assert tuple(rows[0]) == CSV_HEADER
    assert CSV_HEADER == (
        "id",
        "ts",
        "from",
        "room",
        "to",
        "text",
        "edited_ts",
        "deleted",
        "file",
    )
    assert rows[1:] == [
        [str(r.id), r.ts, r.sender, r.room or "", r.to or "", r.text, "", "", ""] for r in RECORDS
    ]


EDITED = ExportRecord(
    5, "2026-11-21T10:00:04.000Z", "alice", "general", None, "fixed", "2026-11-21T10:01:00.000Z"
)
DELETED = ExportRecord(6, "2026-11-21T10:00:05.000Z", "bob", None, "alice", "", deleted=True)


def test_edited_messages_carry_edited_ts_and_deleted_ones_no_text():
    edited, deleted = (
        json.loads(line) for line in _export("jsonl", [EDITED, DELETED]).splitlines()
    )
    assert edited["edited_ts"] == "2026-11-21T10:01:00.000Z"
    assert edited["text"] == "fixed"
    assert deleted == {
        "id": 6,
        "ts": "2026-11-21T10:00:05.000Z",
        "from": "bob",
        "to": "alice",
        "deleted": True,
    }
    rows = list(csv.reader(io.StringIO(_export("csv", [EDITED, DELETED]), newline="")))
    assert rows[1][6:] == ["2026-11-21T10:01:00.000Z", "", ""]
    assert rows[2][5:] == ["", "", "true", ""]
    txt = _export("txt", [EDITED, DELETED]).splitlines()
    assert txt == [
        "[2026-11-21 10:00:04] #general alice: fixed (edited)",
        "[2026-11-21 10:00:05] bob -> alice: (deleted)",
    ]


def test_txt_is_readable_and_round_trips():
    text = _export("txt")
    assert text.splitlines()[0] == "[2026-11-21 10:00:00] #general alice: hi, all"
    assert "[2026-11-21 10:00:02] alice -> Bob: private" in text
    assert all(line.startswith(("[", TXT_INDENT)) or line == "" for line in text.splitlines())
    assert [body for _, body in parse_txt(text)] == [r.text for r in RECORDS]


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown export format"):
        write_records(RECORDS, io.StringIO(), "xml")


def test_progress_reports_running_counts(monkeypatch):
    monkeypatch.setattr("chatsecure.export.PROGRESS_EVERY", 2)
    seen: list[int] = []
    write_records(RECORDS * 3, io.StringIO(), "csv", seen.append)
    assert seen == [2, 4, 6, 8, 10, 12]


def test_memory_stays_flat_while_streaming():
    def many(n: int) -> Iterator[ExportRecord]:
        for i in range(n):
            yield ExportRecord(i, "2026-11-21T10:00:00.000Z", "alice", "general", None, "x" * 100)

    class Sink(io.StringIO):
        def write(self, s: str) -> int:
            return len(s)

    tracemalloc.start()
    write_records(many(50_000), Sink(), "jsonl")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2_000_000  # holding 50k rows would take ~10 MB


def test_export_to_path_is_atomic_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "out.csv"
    assert export_to_path(RECORDS, target, "csv") == 4
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # private messages
    with pytest.raises(FileExistsError):
        export_to_path(RECORDS[:1], target, "csv")
    assert len(target.read_text(encoding="utf-8").splitlines()) > 2

    def failing() -> Iterator[ExportRecord]:
        yield RECORDS[0]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        export_to_path(failing(), target, "csv", overwrite=True)
    assert "hi, all" in target.read_text(encoding="utf-8")  # the old file is intact
    assert os.listdir(tmp_path) == ["out.csv"]  # and no temporary file is left

    export_to_path(RECORDS[:1], target, "jsonl", overwrite=True)
    assert len(target.read_text(encoding="utf-8").splitlines()) == 1


# Every line break str.splitlines() knows, each a way to start a line in some viewer.
LINE_BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


@pytest.mark.parametrize("line_break", LINE_BREAKS, ids=lambda c: f"U+{ord(c[-1]):04X}")
def test_txt_indents_after_every_unicode_line_break(line_break: str) -> None:
    forged = f"see{line_break}[2026-11-21 10:00:09] #general admin: forged"
    record = ExportRecord(9, "2026-11-21T10:00:05.000Z", "mallory", "general", None, forged)
    lines = _export("txt", [record]).splitlines()
    assert [line for line in lines if line.startswith("[")] == [
        "[2026-11-21 10:00:05] #general mallory: see"
    ]
    assert lines[1:] == [TXT_INDENT + "[2026-11-21 10:00:09] #general admin: forged"]


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"], ids=repr)
def test_csv_writes_formula_cells_inert(first: str) -> None:
    text = first + 'HYPERLINK("https://evil.example/","click")'
    record = ExportRecord(9, "2026-11-21T10:00:05.000Z", "mallory", "general", None, text)
    rows = list(csv.reader(io.StringIO(_export("csv", [record]), newline="")))
    assert rows[1][5] == "'" + text
    # Only the first character matters: elsewhere these are ordinary text.
    plain = record._replace(text="a" + text)
    assert list(csv.reader(io.StringIO(_export("csv", [plain]), newline="")))[1][5] == "a" + text


REPORT = ExportFile("Xy_9-a", "report 2026.pdf", 1234, "ab" * 32, "application/pdf")
SHARED = ExportRecord(
    7, "2026-11-21T10:00:06.000Z", "alice", "general", None, "report 2026.pdf", file=REPORT
)


def test_a_shared_file_is_in_every_format():
    (obj,) = (json.loads(line) for line in _export("jsonl", [SHARED]).splitlines())
    assert obj["text"] == "report 2026.pdf"
    assert obj["file"] == {
        "id": "Xy_9-a",
        "name": "report 2026.pdf",
        "size": 1234,
        "sha256": "ab" * 32,
        "mime": "application/pdf",
        "saved_as": "Xy_9-a-report_2026.pdf",
    }
    rows = list(csv.reader(io.StringIO(_export("csv", [SHARED]), newline="")))
    assert rows[1][-1] == "Xy_9-a-report_2026.pdf"
    assert _export("txt", [SHARED]) == (
        "[2026-11-21 10:00:06] #general alice: report 2026.pdf"
        " [file Xy_9-a-report_2026.pdf, 1234 bytes]\n"
    )


@pytest.mark.parametrize(
    ("name", "saved"),
    [
        ("../../etc/passwd", "f1-_.._etc_passwd"),
        ("..", "f1-file"),
        (".hidden", "f1-hidden"),
        ("a/b\\c\x00d", "f1-a_b_c_d"),
        ("ünï.txt", "f1-_n_.txt"),
        ("x" * 300, "f1-" + "x" * 100),
    ],
)
def test_saved_file_names_never_leave_the_folder(name, saved):
    assert saved_file_name(REPORT._replace(id="f1", name=name)) == saved
    assert saved_file_name(REPORT._replace(id="../x", name="a")) == ".._x-a"  # no "/" left
