"""Onboarding many accounts at once: reading the CSV, generating passwords, hashing fast.

Kept apart from the command so each step is a plain function a test can call.
"""

from __future__ import annotations

import csv
import functools
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TextIO

from chatsecure.names import USERNAME_MAX, is_valid_username, username_key
from chatsecure.passwords import WeakPasswordError, check_policy, hash_password

COLUMNS = ("username", "password")
# No look-alikes (0/O, 1/l/I), since people type these from a printout. 16 of 56 symbols
# is about 93 bits: beyond guessing, online or offline against bcrypt.
_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GENERATED_LENGTH = 16
_MAX_PROBLEMS = 20


class UserFileError(ValueError):
    """The CSV cannot be imported; the message lists the problems, each with its line."""


@dataclass(frozen=True, slots=True)
class NewUser:
    name: str
    password: str
    generated: bool


def generate_password() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_LENGTH))


def read_users(stream: TextIO) -> list[NewUser]:
    """Parse and check the whole file: every problem is reported at once, none are skipped.

    Names must be valid and unique (ignoring case); a given password must meet the policy
    (the message never repeats it); a missing or empty one is generated.
    """
    reader = csv.DictReader(stream)
    header = [name.strip().lower() for name in reader.fieldnames or ()]
    if "username" not in header:
        raise UserFileError("the first line must be a header with a 'username' column")
    unknown = sorted(set(header) - set(COLUMNS))
    if unknown:
        raise UserFileError(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    reader.fieldnames = header
    users: list[NewUser] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        problem = _row_problem(row, line, first_line)
        if problem:
            problems.append(f"line {line}: {problem}")
            continue
        name, password = row["username"].strip(), row.get("password") or ""
        if password:
            users.append(NewUser(name, password, generated=False))
        else:
            users.append(NewUser(name, generate_password(), generated=True))
    if problems:
        shown = problems[:_MAX_PROBLEMS]
        if len(problems) > _MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - _MAX_PROBLEMS} more")
        raise UserFileError("\n".join(shown))
    if not users:
        raise UserFileError("no accounts in the file")
    return users


def _row_problem(
    row: dict[str | None, str | None], line: int, first_line: dict[str, int]
) -> str | None:
    """What is wrong with one row, or None; remembers names to catch repeats."""
    if None in row:
        return "more values than columns"
    name = (row["username"] or "").strip()
    if not is_valid_username(name):
        return (
            f"{name!r} is not a valid username "
            f"(1-{USERNAME_MAX} of A-Z a-z 0-9 _ . -, not starting with . or -)"
        )
    key = username_key(name)
    if key in first_line:
        return f"{name!r} is also on line {first_line[key]}"
    first_line[key] = line
    password = row.get("password") or ""
    if password:
        try:
            check_policy(password, name)
        except WeakPasswordError as exc:
            return f"password of {name!r}: {exc}"
    return None


def hash_all(
    passwords: Sequence[str], rounds: int, progress: Callable[[int], None] | None = None
) -> list[str]:
    """Hash on every core at once: bcrypt releases the GIL, so threads run in parallel."""
    hashed: list[str] = []
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bcrypt") as pool:
        for done, value in enumerate(
            pool.map(functools.partial(hash_password, rounds=rounds), passwords), 1
        ):
            hashed.append(value)
            if progress is not None:
                progress(done)
    return hashed


def write_generated(users: Sequence[NewUser], out: TextIO) -> None:
    """The generated passwords as ``username,password`` CSV, for handing out."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows((u.name, u.password) for u in users if u.generated)
