"""Full-text search: the user's words turned into each database's own query, safely.

A query is words and "quoted phrases", all of them required. The user's text never
becomes SQL: on SQLite it becomes an FTS5 MATCH string made only of double-quoted
strings (in which FTS5 knows no operators), passed as a parameter; on PostgreSQL each
term is a parameter to ``phraseto_tsquery``. Migration 0006 makes the indexes these
names refer to.
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    column,
    func,
    insert,
    literal_column,
    table,
)
from sqlalchemy.orm import InstrumentedAttribute

from chatsecure.storage.models import Message

SQLITE_FTS_TABLE = "messages_fts"
PG_PHRASE_FUNCTION = "chatsecure_search_phrase"
PG_INDEX = "ix_messages_search"
PG_VECTOR_COLUMN = "search_vector"  # messages' words, kept by PostgreSQL (GENERATED)
# More terms make a query slower and no more useful: the rest are ignored.
MAX_TERMS = 16

# A quoted phrase (its closing quote optional), or a run of anything else but spaces.
_TERM = re.compile(r'"([^"]*)"?|([^\s"]+)')
# A term matches something only if it holds a letter or a digit: both engines split
# words on everything else.
_WORDLY = re.compile(r"[^\W_]")

Row = TypeVarTuple("Row")
_fts = table(SQLITE_FTS_TABLE, column("rowid"), column(SQLITE_FTS_TABLE))


def parse_terms(q: str) -> list[str]:
    """The words and phrases of ``q``, at most ``MAX_TERMS``; [] if it has no word."""
    terms = []
    for match in _TERM.finditer(q):
        term = " ".join((match.group(1) or match.group(2) or "").split())
        if _WORDLY.search(term):
            terms.append(term)
    return terms[:MAX_TERMS]


def fts5_match(terms: list[str]) -> str:
    """An FTS5 query requiring every term: each one a string, so a phrase, never syntax."""
    return " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)


def compact_search_index(conn: Connection) -> None:
    """Merge the SQLite index into one segment, dropping what deleted messages left.

    An FTS5 table forgets a row by adding a tombstone: the row's words and positions stay
    in the older segments until a merge reaches them. ``secure_delete`` then zeroes the
    pages they were on. PostgreSQL's index entries go with VACUUM, like the text itself.
    """
    if conn.dialect.name == "sqlite":
        conn.execute(insert(_fts).values({SQLITE_FTS_TABLE: "optimize"}))


def include_in_models(name: str | None, type_: str, _parent: Any = None) -> bool:
    """Alembic's ``include_name``: compare everything but the search index, which the
    models do not describe (an FTS5 table and its shadow tables; a generated column and
    its index)."""
    search_table = type_ == "table" and str(name).startswith(SQLITE_FTS_TABLE)
    search_column = type_ == "column" and name == PG_VECTOR_COLUMN
    return not (search_table or search_column or (type_ == "index" and name == PG_INDEX))


def matching(
    query: Select[*Row], terms: list[str], *, sqlite: bool, before: int | None
) -> Select[*Row]:
    """``query`` (over messages) narrowed to messages holding every term, with ids below
    ``before`` if given, newest first.

    On SQLite the FTS5 table leads: it walks its matches from the highest rowid down,
    so the newest page of a common word reads a page's worth, not every match.
    """
    if sqlite:
        query = query.join(_fts, _fts.c.rowid == Message.id).where(
            _fts.c[SQLITE_FTS_TABLE].op("MATCH")(bindparam("match", fts5_match(terms)))
        )
        key: ColumnElement[Any] | InstrumentedAttribute[int] = _fts.c.rowid
    else:
        phrases = [
            getattr(func, PG_PHRASE_FUNCTION)(bindparam(f"term_{i}", term))
            for i, term in enumerate(terms)
        ]
        wanted = functools.reduce(lambda a, b: a.op("&&")(b), phrases)
        vector: ColumnElement[Any] = literal_column(f"{Message.__tablename__}.{PG_VECTOR_COLUMN}")
        query = query.where(vector.op("@@")(wanted))
        key = Message.id
    if before is not None:
        query = query.where(key < before)
    return query.order_by(key.desc())
