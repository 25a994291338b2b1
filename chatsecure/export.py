"""History export formats (txt, jsonl, csv), written as a stream.

Shared by ``chatsecure-admin export`` and the GUI's "Export conversation", so it knows
nothing of the store or the wire: it formats ``ExportRecord`` tuples, whoever made them.
Records stream through one at a time, so memory stays flat at millions of rows, and the
loops run in C (``writelines(map(...))``, ``csv.writerows``) with no per-row Python
beyond formatting: an export runs within 1.3x of a bare sqlite3 loop writing the same bytes.

- jsonl: one JSON object per line, keys ``id``, ``ts``, ``from``, ``room`` or ``to``, ``text``
  (the wire's ``message`` frame without ``type``), ``edited_ts`` for an edited message,
  and ``file`` (``id``, ``name``, ``size``, ``sha256``, ``mime``, as on the wire, plus
  ``saved_as``: see ``saved_file_name``) for a message that shares a file. A deleted
  message has no ``text`` but ``"deleted":true``: its text is gone.
- csv: the header ``id,ts,from,room,to,text,edited_ts,deleted,file`` (``deleted`` is
  ``true`` or empty; ``file`` the shared file's ``saved_as``, or empty), RFC 4180
  quoting, so commas, quotes and
  newlines in a text survive. A text that a spreadsheet would run as a formula (it starts
  with ``= + - @``, a tab or a carriage return) is written with a ``'`` in front, as
  OWASP advises against CSV injection; the jsonl export keeps the exact text.
- txt: ``[2026-11-21 10:00:00] #room alice: text`` or ``[...] alice -> bob: text``, times
  in UTC; further lines of a multi-line text are indented by ``TXT_INDENT``, so every line
  that starts with ``[`` starts a message. "Line" as Unicode means it (``str.splitlines``):
  besides ``\n`` also ``\r``, VT, FF, the separators 0x1C-0x1E, NEL (U+0085), and the line
  and paragraph separators U+2028 and U+2029, each written as a newline and the indent, so
  no text can start a line of its own. An edited text ends in `` (edited)``; a deleted
  message reads ``(deleted)``; a shared file adds `` [file SAVED_AS, N bytes]``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, TextIO

from chatsecure.atomicfile import atomic_write

FORMATS = ("txt", "jsonl", "csv")
CSV_HEADER = ("id", "ts", "from", "room", "to", "text", "edited_ts", "deleted", "file")
_CSV_DELETED = ("", "true")  # indexed by ExportRecord.deleted
TXT_INDENT = "    "
PROGRESS_EVERY = 10_000
# What str.splitlines() breaks at: every way a viewer may start a new line.
_LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
# Cells a spreadsheet reads as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# What may stay of a file's name in ``saved_file_name``; anything else becomes "_".
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]")
SAVED_NAME_CHARS = 100


class ExportFile(NamedTuple):
    """A file a message shares, as the wire's ``file`` object."""

    id: str
    name: str
    size: int
    sha256: str
    mime: str


def saved_file_name(file: ExportFile) -> str:
    """The name an export saves the file under: ``<id>-<name>``, both made safe.

    Only ASCII letters, digits, ``.``, ``_`` and ``-`` stay (so no ``/``, ``..`` segment,
    control character or leading dot), cut to ``SAVED_NAME_CHARS``; the id in front
    keeps names apart and never empty.
    """
    safe_id = _UNSAFE_IN_NAME.sub("_", file.id)[:32]
    safe_name = _UNSAFE_IN_NAME.sub("_", file.name).lstrip(".")[:SAVED_NAME_CHARS]
    return f"{safe_id}-{safe_name or 'file'}"


class ExportRecord(NamedTuple):
    """One message, in CSV column order; exactly one of ``room`` and ``to`` is set."""

    id: int
    ts: str  # RFC 3339 UTC with milliseconds, as on the wire: "2026-11-21T10:00:00.123Z"
    sender: str
    room: str | None
    to: str | None
    text: str  # '' when deleted
    edited_ts: str | None = None  # as ``ts``; None if never edited
    deleted: bool = False
    file: ExportFile | None = None  # the file it shares


Progress = Callable[[int], None]
_Writer = Callable[[Iterable[ExportRecord]], None]

_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _file_object(file: ExportFile) -> dict[str, object]:
    return {**file._asdict(), "saved_as": saved_file_name(file)}


def _jsonl_line(record: ExportRecord) -> str:
    message_id, ts, sender, room, to, text, edited_ts, deleted, file = record
    obj: dict[str, object]
    if room is not None:
        obj = {"id": message_id, "ts": ts, "from": sender, "room": room}
    else:
        obj = {"id": message_id, "ts": ts, "from": sender, "to": to}
    if deleted:
        obj["deleted"] = True
    else:
        obj["text"] = text
        if edited_ts is not None:
            obj["edited_ts"] = edited_ts
        if file is not None:
            obj["file"] = _file_object(file)
    return _encode_json(obj) + "\n"


def _txt_line(record: ExportRecord) -> str:
    _, ts, sender, room, to, text, edited_ts, deleted, file = record
    if deleted:
        text = "(deleted)"
    elif edited_ts is not None:
        text += " (edited)"
    if file is not None:
        text += f" [file {saved_file_name(file)}, {file.size} bytes]"
    if text.splitlines() != [text]:  # a line break in it; splitlines is the cheap test
        text = _LINE_BREAK.sub("\n" + TXT_INDENT, text)
    where = f"#{room} {sender}" if room is not None else f"{sender} -> {to}"
    return f"[{ts[:10]} {ts[11:19]}] {where}: {text}\n"


def _lines_writer(line: Callable[[ExportRecord], str]) -> Callable[[TextIO], _Writer]:
    def start(out: TextIO) -> _Writer:
        return lambda records: out.writelines(map(line, records))

    return start


def _csv_row(record: ExportRecord) -> tuple[object, ...]:
    """The record as CSV cells, its text made inert for spreadsheets.

    Only the text is free-form: names cannot start with any of ``_FORMULA_START``.
    """
    if record.text.startswith(_FORMULA_START):
        record = record._replace(text="'" + record.text)
    saved = "" if record.file is None else saved_file_name(record.file)
    return (*record[:7], _CSV_DELETED[record.deleted], saved)


def _csv_writer(out: TextIO) -> _Writer:
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    return lambda records: writer.writerows(map(_csv_row, records))


_WRITERS: dict[str, Callable[[TextIO], _Writer]] = {
    "txt": _lines_writer(_txt_line),
    "jsonl": _lines_writer(_jsonl_line),
    "csv": _csv_writer,
}


def write_records(
    records: Iterable[ExportRecord], out: TextIO, fmt: str, progress: Progress | None = None
) -> int:
    """Write ``records`` to ``out`` in ``fmt``; returns how many.

    ``progress``, if given, gets the running count every ``PROGRESS_EVERY`` records.
    """
    try:
        write = _WRITERS[fmt](out)
    except KeyError:
        raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})") from None
    count = 0

    def counted() -> Iterator[ExportRecord]:
        nonlocal count
        for count, record in enumerate(records, 1):
            if progress is not None and count % PROGRESS_EVERY == 0:
                progress(count)
            yield record

    write(counted())
    return count


def export_to_path(
    records: Iterable[ExportRecord],
    path: Path,
    fmt: str,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write an export file atomically (``atomic_write``); FileExistsError unless overwrite."""
    with atomic_write(path, overwrite=overwrite) as out:
        return write_records(records, out, fmt, progress)
