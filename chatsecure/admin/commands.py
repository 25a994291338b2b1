"""The ``chatsecure-admin`` subcommands: thin adapters from arguments to library calls.

Each command is a ``Command``: its name, the help a person reads, examples, the arguments
it takes and the function that runs it. ``cli.py`` builds the parser from ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import alembic.util

from chatsecure.admin import accounts
from chatsecure.admin.base import CommandError, Context, Progress
from chatsecure.atomicfile import atomic_write
from chatsecure.export import FORMATS, ExportRecord, export_to_path, write_records
from chatsecure.names import USERNAME_MAX, is_valid_username, normalize_room
from chatsecure.passwords import check_policy, hash_password
from chatsecure.storage.db import current_revision, upgrade
from chatsecure.storage.store import AccountRecord, MessageRow, NoSuchAccountError
from chatsecure.timestamps import format_ts, parse_date
from chatsecure.tls_certs import (
    SERVER_DEFAULT_DAYS,
    SERVER_MAX_DAYS,
    CertificatePaths,
    fingerprint,
    make_dev_certificates,
    write_dev_certificates,
)

Runner = Callable[[Context, argparse.Namespace], None]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    summary: str  # one line, in the list of commands
    description: str  # the --help text
    examples: tuple[str, ...]
    run: Runner
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


# -- shared pieces -----------------------------------------------------------------------


def _username_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the account's name (any letter case)")


def _password_arguments(parser: argparse.ArgumentParser) -> None:
    _username_argument(parser)
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from stdin instead of prompting (for scripts)",
    )


def _read_new_password(ctx: Context, args: argparse.Namespace, name: str) -> str:
    """Prompt twice, or read one line from stdin; then apply the password policy."""
    if args.password_stdin:
        password = ctx.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandError("--password-stdin: no password on stdin")
    else:
        if not ctx.stdin.isatty():
            raise CommandError(
                "stdin is not a terminal, so there is no one to prompt; "
                "pipe the password in with --password-stdin"
            )
        password = getpass.getpass(f"New password for {name}: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise CommandError("the two passwords differ; nothing was changed")
    check_policy(password, name)
    return password


def _existing_account(ctx: Context, name: str) -> AccountRecord:
    account = ctx.store().get_account(name)
    if account is None:
        raise CommandError(f"there is no account named {name!r}")
    return account


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


# -- migrate -----------------------------------------------------------------------------


def migrate(ctx: Context, args: argparse.Namespace) -> None:
    engine = ctx.engine()
    before = current_revision(engine)
    try:
        upgrade(engine)
    except alembic.util.CommandError as exc:
        raise CommandError(f"cannot migrate {ctx.database()}: {exc}") from None
    after = current_revision(engine)
    if before == after:
        ctx.say(f"{ctx.database()}: already at the current schema ({after})")
    else:
        ctx.say(f"{ctx.database()}: upgraded from {before or '(empty)'} to {after}")


# -- gencert -----------------------------------------------------------------------------


def _gencert_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hostname",
        action="append",
        default=[],
        metavar="H",
        help="a name or address clients use to reach the server (repeatable); "
        "localhost, 127.0.0.1 and ::1 are always included",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=SERVER_DEFAULT_DAYS,
        help=f"server certificate lifetime, 1-{SERVER_MAX_DAYS} (default {SERVER_DEFAULT_DAYS})",
    )
    parser.add_argument("--force", action="store_true", help="replace existing files")


def gencert(ctx: Context, args: argparse.Namespace) -> None:
    tls = ctx.settings.tls
    paths = CertificatePaths.beside_ca(tls.cert_file, tls.key_file, tls.ca_file)
    try:
        certs = make_dev_certificates(args.hostname, args.days)
        write_dev_certificates(certs, paths, overwrite=args.force)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    except FileExistsError as exc:
        raise CommandError(f"{exc}; add --force to replace them") from None
    ctx.say(f"CA certificate:     {paths.ca_file}  (give this to clients to verify the server)")
    ctx.say(f"CA key:             {paths.ca_key_file}  (mode 0600; keep it secret)")
    ctx.say(f"server certificate: {paths.cert_file}")
    ctx.say(f"server key:         {paths.key_file}  (mode 0600)")
    server = certs.server_cert
    ctx.say(f"valid until:        {server.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    ctx.say(f"SHA-256 fingerprint: {fingerprint(server)}")


# -- accounts ----------------------------------------------------------------------------


def adduser(ctx: Context, args: argparse.Namespace) -> None:
    name = args.name
    if not is_valid_username(name):
        raise CommandError(
            f"{name!r} is not a valid username: use 1-{USERNAME_MAX} of A-Z a-z 0-9 _ . - "
            "and do not start with . or -"
        )
    store = ctx.store()
    existing = store.get_account(name)
    if existing is not None:
        raise CommandError(f"an account named {existing.name!r} already exists")
    password = _read_new_password(ctx, args, name)
    rooms = ctx.settings.rooms.default
    store.create_account(name, hash_password(password, ctx.settings.auth.bcrypt_rounds), rooms)
    ctx.say(f"created account {name!r}" + (f" in rooms {', '.join(rooms)}" if rooms else ""))


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the CSV file, or - for stdin")
    parser.add_argument(
        "--output",
        metavar="FILE",
        type=Path,
        help="write the generated passwords here (created mode 0600) instead of stdout",
    )


def import_users(ctx: Context, args: argparse.Namespace) -> None:
    output: Path | None = args.output
    if output is not None and output.exists():
        raise CommandError(f"{output} already exists; choose a new file for the passwords")
    try:
        if args.file == "-":
            users = accounts.read_users(ctx.stdin)
        else:
            with open(args.file, encoding="utf-8-sig", newline="") as f:
                users = accounts.read_users(f)
    except accounts.UserFileError as exc:
        raise CommandError(f"{args.file}: nothing was imported:\n{exc}") from None
    store = ctx.store()
    taken = [a.name for a in map(store.get_account, (u.name for u in users)) if a is not None]
    if taken:
        raise CommandError(f"nothing was imported: these accounts exist: {', '.join(taken)}")
    progress = Progress(ctx.stderr, "hashing passwords", len(users))
    hashes = accounts.hash_all(
        [u.password for u in users], ctx.settings.auth.bcrypt_rounds, progress
    )
    progress.finish()
    rows = [(u.name, h) for u, h in zip(users, hashes, strict=True)]
    rooms = ctx.settings.rooms.default
    if output is None:
        store.create_accounts(rows, rooms)
        accounts.write_generated(users, ctx.stdout)
    else:
        # The file appears only if the accounts were created, and vice versa as far as can be.
        with atomic_write(output) as f:
            accounts.write_generated(users, f)
            store.create_accounts(rows, rooms)
    generated = sum(u.generated for u in users)
    where = f" (written to {output})" if output is not None else ""
    ctx.note(f"created {len(users)} accounts; {generated} passwords were generated{where}")


def passwd(ctx: Context, args: argparse.Namespace) -> None:
    account = _existing_account(ctx, args.name)
    password = _read_new_password(ctx, args, account.name)
    ctx.store().set_password(account.name, hash_password(password, ctx.settings.auth.bcrypt_rounds))
    ctx.say(f"changed the password of {account.name!r}")


def disable(ctx: Context, args: argparse.Namespace) -> None:
    account = _existing_account(ctx, args.name)
    ctx.store().set_disabled(account.name, True)
    ctx.say(f"disabled {account.name!r}: they cannot log in, and the server ends their sessions")


def enable(ctx: Context, args: argparse.Namespace) -> None:
    account = _existing_account(ctx, args.name)
    ctx.store().set_disabled(account.name, False)
    ctx.say(f"enabled {account.name!r}: they can log in again")


DELUSER_EFFECTS = (
    "The account and its room memberships are removed. The messages it sent stay in the "
    "history under its name, and its direct conversations stay readable by the other "
    "party. The name can be taken again, but the new account cannot read the old one's "
    "direct messages."
)


def deluser(ctx: Context, args: argparse.Namespace) -> None:
    try:
        account = ctx.store().delete_account(args.name)
    except NoSuchAccountError:
        raise CommandError(f"there is no account named {args.name!r}") from None
    ctx.say(f"deleted account {account.name!r}. {DELUSER_EFFECTS}")


def users(ctx: Context, args: argparse.Namespace) -> None:
    records = ctx.store().list_accounts()
    if not records:
        ctx.say("no accounts yet; add one with: chatsecure-admin adduser NAME")
        return
    ctx.say(
        _table(
            ("NAME", "CREATED (UTC)", "LAST LOGIN (UTC)", "STATE"),
            (
                (
                    a.name,
                    _when(a.created_at),
                    _when(a.last_login_at),
                    "disabled" if a.disabled else "active",
                )
                for a in records
            ),
        )
    )


# -- rooms -------------------------------------------------------------------------------


def rooms(ctx: Context, args: argparse.Namespace) -> None:
    summaries = ctx.store().list_rooms()
    if not summaries:
        ctx.say("no rooms yet; add one with: chatsecure-admin addroom NAME")
        return
    ctx.say(_table(("ROOM", "MEMBERS"), ((r.name, str(r.members)) for r in summaries)))


def _room_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="the room's name")


def addroom(ctx: Context, args: argparse.Namespace) -> None:
    room = normalize_room(args.name)
    if room is None:
        raise CommandError(
            f"{args.name!r} is not a valid room name: use 1-32 of a-z 0-9 _ - "
            "starting with a letter or digit"
        )
    ctx.store().create_room(room)
    ctx.say(f"created room #{room}")


# -- export ------------------------------------------------------------------------------


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--room", metavar="NAME", help="one room's messages")
    which.add_argument(
        "--user",
        metavar="NAME",
        help="everything the account can see: its rooms and its direct messages",
    )
    parser.add_argument(
        "--since", metavar="DATE", help="from this time on: YYYY-MM-DD (UTC) or RFC 3339"
    )
    parser.add_argument("--until", metavar="DATE", help="before this time (not included)")
    parser.add_argument("--format", choices=FORMATS, default="txt", help="default: txt")
    parser.add_argument("--output", metavar="FILE", type=Path, help="write here, not to stdout")
    parser.add_argument("--force", action="store_true", help="replace an existing --output file")


def export_records(rows: Iterable[MessageRow]) -> Iterator[ExportRecord]:
    """Store rows as export records (the store keeps milliseconds; exports show RFC 3339)."""
    return (
        ExportRecord(message_id, format_ts(ts_ms), sender, room, to, text)
        for message_id, ts_ms, sender, text, room, to in rows
    )


def _date_option(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise CommandError(f"{option}: {exc}") from None


def export(ctx: Context, args: argparse.Namespace) -> None:
    since = _date_option(args.since, "--since")
    until = _date_option(args.until, "--until")
    output: Path | None = args.output
    if output is not None and output.exists() and not args.force:
        raise CommandError(f"{output} already exists; add --force to replace it")
    store = ctx.store()
    if args.room is not None:
        room = normalize_room(args.room)
        room_id = store.room_id(room) if room else None
        if room_id is None:
            raise CommandError(f"there is no room named {args.room!r}")
        rows = store.iter_message_rows(room_id=room_id, since_ms=since, until_ms=until)
    else:
        account = _existing_account(ctx, args.user)
        rows = store.iter_message_rows(visible_to=account.id, since_ms=since, until_ms=until)
    progress = Progress(ctx.stderr, "messages exported", terminal_only=True)
    if output is None:
        write_records(export_records(rows), ctx.stdout, args.format, progress)
        progress.finish()
        return
    count = export_to_path(
        export_records(rows), output, args.format, overwrite=args.force, progress=progress
    )
    progress.finish()
    ctx.note(f"exported {count} messages to {output}")


COMMANDS = (
    Command(
        "migrate",
        "create the database or upgrade it to the current schema",
        "Create the database, or upgrade it to the current schema. Safe to run again: a "
        "database that is already current is left as it is. Every other command that uses "
        "the database refuses to run until it is current.",
        ("chatsecure-admin migrate",),
        migrate,
    ),
    Command(
        "gencert",
        "make a development CA and a server certificate signed by it",
        "Make a local certificate authority and a server certificate it signs (ECDSA "
        "P-256), written to the [tls] cert_file, key_file and ca_file paths, with the CA's "
        "key beside ca_file (ca.key). Private keys are created mode 0600. Clients verify "
        "the server with ca_file. Existing files are kept unless --force is given; with "
        "it, a new CA is made too, so clients need the new ca_file.",
        (
            "chatsecure-admin gencert",
            "chatsecure-admin gencert --hostname chat.example.org --hostname 192.0.2.10",
        ),
        gencert,
        _gencert_arguments,
    ),
    Command(
        "adduser",
        "create an account",
        "Create an account; it joins the [rooms] default rooms. The password is prompted "
        "for twice, or read as one line from stdin with --password-stdin. It must have at "
        "least 8 characters and must not be the name. Names are unique regardless of case.",
        (
            "chatsecure-admin adduser alice",
            "printf '%s\\n' \"$PASSWORD\" | chatsecure-admin adduser alice --password-stdin",
        ),
        adduser,
        _password_arguments,
    ),
    Command(
        "import-users",
        "create many accounts from a CSV file, all or none",
        "Create the accounts listed in a CSV file with a 'username' column and an optional "
        "'password' column. Where a password is missing, a strong random one is generated "
        "and reported as username,password CSV on stdout (or in --output FILE, created mode "
        "0600) - hand these out privately. The file is checked completely first, and the "
        "accounts are created in one transaction: either all of them or none. Progress goes "
        "to stderr.",
        (
            "chatsecure-admin import-users class.csv --output passwords.csv",
            "printf 'username\\nalice\\nbob\\n' | chatsecure-admin import-users -",
        ),
        import_users,
        _import_arguments,
    ),
    Command(
        "passwd",
        "set an account's password",
        "Set a new password for an account (prompted twice, or one line from stdin with "
        "--password-stdin). It also clears the account's failed-login count.",
        ("chatsecure-admin passwd alice",),
        passwd,
        _password_arguments,
    ),
    Command(
        "disable",
        "stop an account from logging in",
        "Disable an account: it cannot log in, and a running server ends its open "
        "sessions. Nothing is deleted; enable undoes it.",
        ("chatsecure-admin disable alice",),
        disable,
        _username_argument,
    ),
    Command(
        "enable",
        "let a disabled account log in again",
        "Enable a disabled account.",
        ("chatsecure-admin enable alice",),
        enable,
        _username_argument,
    ),
    Command(
        "deluser",
        "delete an account (its messages stay)",
        "Delete an account. " + DELUSER_EFFECTS,
        ("chatsecure-admin deluser alice",),
        deluser,
        _username_argument,
    ),
    Command(
        "users",
        "list accounts",
        "List every account: name, when it was created, its last login (UTC) and whether "
        "it is active or disabled.",
        ("chatsecure-admin users",),
        users,
    ),
    Command(
        "rooms",
        "list rooms",
        "List every room with its number of members.",
        ("chatsecure-admin rooms",),
        rooms,
    ),
    Command(
        "addroom",
        "create a room",
        "Create a room. Room names are 1-32 of a-z 0-9 _ -, starting with a letter or "
        "digit; capitals are folded to lower case.",
        ("chatsecure-admin addroom dev",),
        addroom,
        _room_argument,
    ),
    Command(
        "export",
        "export stored messages as txt, jsonl or csv",
        "Export one room's messages (--room) or everything one account can see: the rooms "
        "it is in and its direct messages (--user). Oldest first. Formats: txt (readable "
        "lines, times in UTC), jsonl (one JSON object per message: id, ts, from, room or "
        "to, text) and csv (header id,ts,from,room,to,text). Writes to stdout, or to "
        "--output FILE atomically (a temporary file renamed into place; an existing file "
        "is kept unless --force). --since and --until take YYYY-MM-DD (midnight UTC) or "
        "an RFC 3339 time; --until is exclusive.",
        (
            "chatsecure-admin export --room general",
            "chatsecure-admin export --user alice --since 2026-11-01 --until 2026-12-01 "
            "--format jsonl --output alice-november.jsonl",
        ),
        export,
        _export_arguments,
    ),
)
