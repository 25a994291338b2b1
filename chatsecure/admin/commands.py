"""The ``chatsecure-admin`` subcommands: thin adapters from arguments to library calls.

Each command is a ``Command``: its name, the help a person reads, examples, the arguments
it takes and the function that runs it. ``cli.py`` builds the parser from ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import alembic.util
from cryptography import x509

from chatsecure.admin import accounts
from chatsecure.admin.base import CommandError, Context, Progress
from chatsecure.admin.checks import EXPIRY_WARNING_DAYS, Finding, Level, run_checks
from chatsecure.admin.status import (
    SHOWN,
    StatusError,
    certificate_note,
    greet,
    reachable_host,
    scrape,
)
from chatsecure.atomicfile import atomic_write
from chatsecure.config import DEFAULT_CONFIG_NAME, ConfigError
from chatsecure.export import (
    FORMATS,
    ExportFile,
    ExportRecord,
    export_to_path,
    saved_file_name,
    write_records,
)
from chatsecure.lockout import locked_until
from chatsecure.names import (
    SEARCH_MAX_CHARS,
    TOPIC_MAX_CHARS,
    USERNAME_MAX,
    is_valid_username,
    line_problem,
    normalize_room,
    username_key,
)
from chatsecure.package import shipped
from chatsecure.passwords import check_policy, hash_password
from chatsecure.storage.backup import copy_database, restore_database, sqlite_file
from chatsecure.storage.blobs import (
    PRIVATE_FILE_MODE,
    PRIVATE_FOLDER_MODE,
    LocalBlobs,
    sweep_unreferenced,
)
from chatsecure.storage.db import (
    current_revision,
    head_revision,
    is_known_revision,
    newer_schema_advice,
    upgrade,
)
from chatsecure.storage.models import ROLES
from chatsecure.storage.search import parse_terms
from chatsecure.storage.store import (
    ADMIN_ORIGIN,
    AccountRecord,
    MessageRow,
    NoSuchAccountError,
    RoomRecord,
    Store,
    utcnow,
)
from chatsecure.timestamps import format_ts, parse_date
from chatsecure.tls_certs import (
    SERVER_DEFAULT_DAYS,
    SERVER_MAX_DAYS,
    CertificatePaths,
    certificate_names,
    fingerprint,
    issue_server_certificate,
    load_ca,
    load_certificate,
    make_dev_certificates,
    write_dev_certificates,
    write_server_certificate,
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


def _rfc3339(moment: datetime | None) -> str | None:
    """A stored (naive UTC) time for JSON: ``2026-11-21T10:00:00Z``."""
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z" if moment else None


def _json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="a JSON array, for scripts")


def _say_json(ctx: Context, value: object) -> None:
    ctx.say(json.dumps(value, indent=2, ensure_ascii=False))


def _confirm(ctx: Context, question: str) -> None:
    """Ask at the terminal; CommandError unless the answer is yes (or no one can answer)."""
    if not ctx.stdin.isatty():
        raise CommandError(
            "stdin is not a terminal, so there is no one to confirm; add --yes to go ahead"
        )
    ctx.stderr.write(f"{question} [y/N] ")
    ctx.stderr.flush()
    if ctx.stdin.readline().strip().lower() not in ("y", "yes"):
        raise CommandError("not confirmed; nothing was changed")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


# -- migrate -----------------------------------------------------------------------------


def _migrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-backup",
        action="store_true",
        help="change the schema without taking a backup first",
    )


def migrate(ctx: Context, args: argparse.Namespace) -> None:
    engine = ctx.engine()
    before = current_revision(engine)
    if before is not None and not is_known_revision(before):
        raise CommandError(newer_schema_advice(before, f"the database {ctx.database()}"))
    if before not in (None, head_revision()) and not args.no_backup:
        _backup_before_migrating(ctx, before)
    try:
        upgrade(engine)
    except alembic.util.CommandError as exc:
        raise CommandError(f"cannot migrate {ctx.database()}: {exc}") from None
    after = current_revision(engine)
    if before == after:
        ctx.say(f"{ctx.database()}: already at the current schema ({after})")
    else:
        ctx.say(f"{ctx.database()}: upgraded from {before or '(empty)'} to {after}")


def _backup_before_migrating(ctx: Context, revision: str) -> None:
    database = sqlite_file(ctx.settings.database.url)
    if database is None:
        raise CommandError(
            f"migrate backs up a SQLite database before changing its schema; back up "
            f"{ctx.database()} with its own tool (pg_dump for PostgreSQL), then run: "
            "chatsecure-admin migrate --no-backup"
        )
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    target = database.with_name(f"{database.stem}.{revision}.{stamp}{database.suffix}.bak")
    copy_database(database, target, overwrite=False)
    ctx.note(f"backed up the schema {revision} database to {target}")


# -- backup and restore ------------------------------------------------------------------


def _sqlite_database(ctx: Context, tool: str) -> Path:
    """The configured SQLite file; CommandError naming ``tool`` for any other database."""
    database = sqlite_file(ctx.settings.database.url)
    if database is None:
        raise CommandError(
            f"{ctx.database()} is not a SQLite file: use its own tool ({tool} for PostgreSQL)"
        )
    return database


def _backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="where to write the copy")
    parser.add_argument("--force", action="store_true", help="replace an existing FILE")


def backup(ctx: Context, args: argparse.Namespace) -> None:
    database = _sqlite_database(ctx, "pg_dump")
    try:
        copy_database(database, args.file, overwrite=args.force)
    except FileExistsError:
        raise CommandError(f"{args.file} already exists; add --force to replace it") from None
    ctx.say(f"backed up {database} to {args.file} (mode 0600)")


def _restore_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", type=Path, help="a file made by backup")


def restore(ctx: Context, args: argparse.Namespace) -> None:
    database = _sqlite_database(ctx, "pg_restore or psql")
    revision = restore_database(args.file, database)
    ctx.say(f"restored {database} from {args.file}")
    if revision != head_revision():
        ctx.say(f"the backup has the older schema {revision}; now run: chatsecure-admin migrate")


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
    replace = parser.add_mutually_exclusive_group()
    replace.add_argument(
        "--force",
        action="store_true",
        help="renew the server certificate and key with the existing CA (clients keep "
        "trusting it); without --hostname the new certificate keeps the old one's names",
    )
    replace.add_argument(
        "--new-ca",
        action="store_true",
        help="replace the CA too: every client then needs the new ca_file",
    )


def gencert(ctx: Context, args: argparse.Namespace) -> None:
    tls = ctx.settings.tls
    paths = CertificatePaths.beside_ca(tls.cert_file, tls.key_file, tls.ca_file)
    try:
        if args.force:
            server = _renew_server_certificate(paths, args.hostname, args.days)
        else:
            certs = make_dev_certificates(args.hostname, args.days)
            write_dev_certificates(certs, paths, overwrite=args.new_ca)
            server = certs.server_cert
            ctx.say(f"CA certificate:     {paths.ca_file}  (give this to clients to verify)")
            ctx.say(f"CA key:             {paths.ca_key_file}  (mode 0600; keep it secret)")
    except (OSError, ValueError) as exc:
        raise CommandError(_certificate_problem(exc)) from None
    ctx.say(f"server certificate: {paths.cert_file}")
    ctx.say(f"server key:         {paths.key_file}  (mode 0600)")
    ctx.say(f"valid until:        {server.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    ctx.say(f"SHA-256 fingerprint: {fingerprint(server)}")


def _renew_server_certificate(
    paths: CertificatePaths, hostnames: Sequence[str], days: int
) -> x509.Certificate:
    """A new server key and certificate signed by the existing CA, which stays as it is."""
    ca_cert, ca_key = load_ca(paths)
    if not hostnames and paths.cert_file.exists():
        hostnames = certificate_names(load_certificate(paths.cert_file))
    cert, key = issue_server_certificate(ca_cert, ca_key, hostnames, days)
    write_server_certificate(cert, key, paths)
    return cert


def _certificate_problem(exc: OSError | ValueError) -> str:
    if isinstance(exc, FileExistsError):
        return (
            f"{exc}; add --force to renew the server certificate with the existing CA, or "
            "--new-ca to replace the CA as well (every client then needs the new ca_file)"
        )
    if isinstance(exc, FileNotFoundError):
        return (
            f"{exc.filename}: not found, so there is no CA to renew with; "
            "make one with --new-ca (every client then needs the new ca_file)"
        )
    if isinstance(exc, OSError):
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


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
    pw_hash = hash_password(password, ctx.settings.auth.bcrypt_rounds)
    store.create_account(name, pw_hash, rooms, admin=args.admin)
    ctx.say(
        f"created {'server admin' if args.admin else 'account'} {name!r}"
        + (f" in rooms {', '.join(rooms)}" if rooms else "")
    )


def _adduser_arguments(parser: argparse.ArgumentParser) -> None:
    _password_arguments(parser)
    parser.add_argument(
        "--admin", action="store_true", help="a server admin, who may moderate every room"
    )


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
    ctx.say(f"changed the password of {account.name!r}; the server ends its sessions")


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


ERASE_EFFECTS = (
    "With --erase, every message the account sent is deleted too, in its rooms and its "
    "direct conversations: this cannot be undone. Messages others sent it stay."
)


def _deluser_arguments(parser: argparse.ArgumentParser) -> None:
    _username_argument(parser)
    parser.add_argument(
        "--erase",
        action="store_true",
        help="also delete every message the account sent (an erasure request)",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask (for scripts)")


def deluser(ctx: Context, args: argparse.Namespace) -> None:
    effects = (
        "The account, its room memberships and every message it sent are deleted, in its "
        "rooms and its direct conversations: this cannot be undone. Messages others sent "
        "it stay."
        if args.erase
        else DELUSER_EFFECTS
    )
    if not args.yes:
        name = _existing_account(ctx, args.name).name
        _confirm(ctx, f"Delete the account {name!r}? {effects}")
    try:
        account = ctx.store().delete_account(args.name, erase=args.erase)
    except NoSuchAccountError:
        raise CommandError(f"there is no account named {args.name!r}") from None
    ctx.say(f"deleted account {account.name!r}. {effects}")
    if args.erase:
        _sweep_files(ctx)


def _sweep_files(ctx: Context) -> None:
    """Delete the files that deleted messages shared, unless another message shares the
    same bytes (a file used in the last minutes stays for the server's own sweep)."""
    files = ctx.settings.files
    if not files.enabled:
        return
    removed = sweep_unreferenced(ctx.store(), LocalBlobs(files.dir))
    if removed:
        ctx.note(f"deleted {removed} file{'' if removed == 1 else 's'} no message shares any more")


def set_admin(ctx: Context, args: argparse.Namespace) -> None:
    account = _existing_account(ctx, args.name)
    admin = args.state == "on"
    ctx.store().set_admin(account.name, admin)
    if admin:
        ctx.say(f"{account.name!r} is a server admin: they may moderate every room")
    else:
        ctx.say(f"{account.name!r} is no longer a server admin")


def _admin_arguments(parser: argparse.ArgumentParser) -> None:
    _username_argument(parser)
    parser.add_argument("state", choices=("on", "off"), help="on: make an admin; off: no longer")


def unlock(ctx: Context, args: argparse.Namespace) -> None:
    account = _existing_account(ctx, args.name)
    ctx.store().clear_login_failures(account.name)
    ctx.say(
        f"unlocked {account.name!r}: its failed logins are forgotten; the password is unchanged"
    )


def _lock_end(ctx: Context, account: AccountRecord, now: datetime) -> datetime | None:
    """When the account's login throttle ends, if it is throttled now."""
    until = locked_until(account.failed_logins, account.failures_since, ctx.settings.auth)
    return until if until is not None and until > now else None


def _state(account: AccountRecord, lock_end: datetime | None, now: datetime) -> str:
    states = ["disabled"] if account.disabled else []
    if lock_end is not None:
        shown = f"{lock_end:%H:%M}" if lock_end.date() == now.date() else _when(lock_end)
        states.append(f"locked until {shown}")
    return ", ".join(states) or "active"


def users(ctx: Context, args: argparse.Namespace) -> None:
    records = ctx.store().list_accounts()
    now = utcnow()
    locks = [_lock_end(ctx, a, now) for a in records]
    if args.json:
        _say_json(
            ctx,
            [
                {
                    "name": a.name,
                    "created": _rfc3339(a.created_at),
                    "last_login": _rfc3339(a.last_login_at),
                    "disabled": a.disabled,
                    "locked_until": _rfc3339(lock),
                    "admin": a.is_admin,
                }
                for a, lock in zip(records, locks, strict=True)
            ],
        )
        return
    if not records:
        ctx.say("no accounts yet; add one with: chatsecure-admin adduser NAME")
        return
    ctx.say(
        _table(
            ("NAME", "CREATED (UTC)", "LAST LOGIN (UTC)", "STATE"),
            (
                (a.name, _when(a.created_at), _when(a.last_login_at), _state(a, lock, now))
                for a, lock in zip(records, locks, strict=True)
            ),
        )
    )


# -- rooms -------------------------------------------------------------------------------


def rooms(ctx: Context, args: argparse.Namespace) -> None:
    summaries = ctx.store().list_rooms()
    if args.json:
        _say_json(
            ctx,
            [
                {"name": r.name, "members": r.members, "private": r.private, "topic": r.topic}
                for r in summaries
            ],
        )
        return
    if not summaries:
        ctx.say("no rooms yet; add one with: chatsecure-admin addroom NAME")
        return
    ctx.say(
        _table(
            ("ROOM", "MEMBERS", "PRIVATE", "TOPIC"),
            ((r.name, str(r.members), "yes" if r.private else "", r.topic) for r in summaries),
        )
    )


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


# -- room moderation ---------------------------------------------------------------------

# Who the journal and the members' frames say made a change from here: no account or
# node can have these names (usernames have no parentheses, node names no colon).
ADMIN_ACTOR = "(admin)"


def _room_name(name: str) -> str:
    room = normalize_room(name)
    if room is None:
        raise CommandError(
            f"{name!r} is not a valid room name: use 1-32 of a-z 0-9 _ - "
            "starting with a letter or digit"
        )
    return room


def _existing_room(store: Store, name: str) -> RoomRecord:
    room = store.room(_room_name(name))
    if room is None:
        raise CommandError(f"there is no room named {name!r}")
    return room


def _user(ctx: Context, name: str) -> AccountRecord:
    if not is_valid_username(name):
        raise CommandError(f"{name!r} is not a valid username")
    return _existing_account(ctx, name)


def _short_text(text: str, what: str) -> str:
    """A topic or a reason: one line of at most TOPIC_MAX_CHARS without control
    characters, as the protocol allows (empty clears a topic)."""
    if any("\ud800" <= c <= "\udfff" for c in text):  # undecodable bytes in argv
        raise CommandError(f"{what}: not valid UTF-8")
    if len(text) > TOPIC_MAX_CHARS:
        raise CommandError(f"{what}: at most {TOPIC_MAX_CHARS} characters, not {len(text)}")
    problem = line_problem(text)
    if problem is not None:
        raise CommandError(f"{what} has {problem}: it must be one line without control characters")
    return text


def room_create(ctx: Context, args: argparse.Namespace) -> None:
    room = _room_name(args.name)
    topic = _short_text(args.topic, "--topic")
    owner = _user(ctx, args.owner) if args.owner is not None else None
    ctx.store().create_room(
        room,
        creator_id=owner.id if owner else None,
        private=args.private,
        topic=topic,
        origin=ADMIN_ORIGIN,
    )
    kind = "private room" if args.private else "room"
    ctx.say(f"created {kind} #{room}" + (f", owned by {owner.name!r}" if owner else ""))


def room_topic(ctx: Context, args: argparse.Namespace) -> None:
    store = ctx.store()
    room = _existing_room(store, args.name)
    topic = _short_text(args.text, "TEXT")
    store.set_topic(room.id, topic, by=ADMIN_ACTOR, origin=ADMIN_ORIGIN)
    ctx.say(f"set the topic of #{room.name}" if topic else f"cleared the topic of #{room.name}")


def room_role(ctx: Context, args: argparse.Namespace) -> None:
    store = ctx.store()
    room = _existing_room(store, args.name)
    account = _user(ctx, args.user)
    if not store.set_role(room.id, account.id, args.role, by=ADMIN_ACTOR, origin=ADMIN_ORIGIN):
        raise CommandError(f"{account.name!r} is not a member of #{room.name}")
    ctx.say(f"{account.name!r} is now {args.role} of #{room.name}")


def _remove(ctx: Context, args: argparse.Namespace, *, ban: bool) -> None:
    store = ctx.store()
    room = _existing_room(store, args.name)
    account = _user(ctx, args.user)
    reason = _short_text(args.reason, "--reason")
    if store.role_of(account.id, room.id) == "owner":  # as the protocol: owners stay
        raise CommandError(
            f"{account.name!r} owns #{room.name}; make them a member first: "
            f"chatsecure-admin room role {room.name} {account.name} member"
        )
    removed = store.remove_member(
        room.id, account.id, by=ADMIN_ACTOR, reason=reason, ban=ban, origin=ADMIN_ORIGIN
    )
    if not removed:
        raise CommandError(f"{account.name!r} is not a member of #{room.name}")
    if ban:
        ctx.say(f"banned {account.name!r} from #{room.name}: they cannot join until unbanned")
    else:
        ctx.say(f"kicked {account.name!r} out of #{room.name}; they may join again")


def room_kick(ctx: Context, args: argparse.Namespace) -> None:
    _remove(ctx, args, ban=False)


def room_ban(ctx: Context, args: argparse.Namespace) -> None:
    _remove(ctx, args, ban=True)


def room_unban(ctx: Context, args: argparse.Namespace) -> None:
    store = ctx.store()
    room = _existing_room(store, args.name)
    account = _user(ctx, args.user)
    if not store.unban(room.id, account.id, origin=ADMIN_ORIGIN):
        raise CommandError(f"{account.name!r} is not banned from #{room.name}")
    ctx.say(f"unbanned {account.name!r}: they may join #{room.name} again")


def room_list_members(ctx: Context, args: argparse.Namespace) -> None:
    store = ctx.store()
    room = _existing_room(store, args.name)
    members = store.room_members(room.id)
    if args.json:
        _say_json(ctx, [{"name": m.name, "role": m.role} for m in members])
    elif not members:
        ctx.say(f"#{room.name} has no members")
    else:
        ctx.say(_table(("NAME", "ROLE"), ((m.name, m.role) for m in members)))


def _room_and_user(parser: argparse.ArgumentParser) -> None:
    _room_argument(parser)
    parser.add_argument("user", metavar="USER", help="the account's name (any letter case)")


def _kick_arguments(parser: argparse.ArgumentParser) -> None:
    _room_and_user(parser)
    parser.add_argument(
        "--reason", default="", help=f"told to them (at most {TOPIC_MAX_CHARS} characters)"
    )


def _room_create_arguments(parser: argparse.ArgumentParser) -> None:
    _room_argument(parser)
    parser.add_argument(
        "--private", action="store_true", help="invisible to all but its members and invitees"
    )
    parser.add_argument(
        "--topic", default="", help=f"the room's topic (at most {TOPIC_MAX_CHARS} characters)"
    )
    parser.add_argument("--owner", metavar="USER", help="an account that owns the room")


def _room_topic_arguments(parser: argparse.ArgumentParser) -> None:
    _room_argument(parser)
    parser.add_argument("text", metavar="TEXT", help="the new topic; '' clears it")


def _room_role_arguments(parser: argparse.ArgumentParser) -> None:
    _room_and_user(parser)
    parser.add_argument("role", choices=ROLES, help="the member's new role")


def _room_list_members_arguments(parser: argparse.ArgumentParser) -> None:
    _room_argument(parser)
    _json_argument(parser)


ROOM_COMMANDS = (
    Command(
        "create",
        "create a room",
        "Create a room, public or --private (invisible to everyone but its members and "
        "the accounts invited into it), with an optional --topic and --owner.",
        (
            "chatsecure-admin room create dev",
            "chatsecure-admin room create ops --private --topic 'on call' --owner alice",
        ),
        room_create,
        _room_create_arguments,
    ),
    Command(
        "topic",
        "set or clear a room's topic",
        "Set a room's topic (one line, at most 300 characters); '' clears it. Members "
        "online see the change at once.",
        (
            "chatsecure-admin room topic dev 'release on Friday'",
            "chatsecure-admin room topic dev ''",
        ),
        room_topic,
        _room_topic_arguments,
    ),
    Command(
        "role",
        "give a member a role",
        "Make a member of the room its owner, a moderator (may invite, set the topic, "
        "kick and ban members) or a plain member.",
        ("chatsecure-admin room role ops bob moderator",),
        room_role,
        _room_role_arguments,
    ),
    Command(
        "kick",
        "remove a member from a room",
        "Remove a member from the room; they are told, with the --reason if given, and "
        "may join again (a private room needs a new invite).",
        ("chatsecure-admin room kick dev bob --reason 'off topic'",),
        room_kick,
        _kick_arguments,
    ),
    Command(
        "ban",
        "remove an account from a room and keep it out",
        "Ban an account from the room: it is removed if it is a member, and cannot join "
        "until unbanned. Works for non-members too.",
        ("chatsecure-admin room ban dev mallory --reason spam",),
        room_ban,
        _kick_arguments,
    ),
    Command(
        "unban",
        "lift a ban",
        "Lift an account's ban from the room: it may join again (a private room still "
        "needs an invite).",
        ("chatsecure-admin room unban dev mallory",),
        room_unban,
        _room_and_user,
    ),
    Command(
        "list-members",
        "list a room's members and their roles",
        "List the room's members by name with their roles; --json prints a JSON array of "
        "objects with name and role.",
        ("chatsecure-admin room list-members ops", "chatsecure-admin room list-members ops --json"),
        room_list_members,
        _room_list_members_arguments,
    ),
)


def _examples(command: Command) -> str:
    lines = "\n".join(f"  {line}" for line in command.examples)
    return f"example{'s' if len(command.examples) > 1 else ''}:\n{lines}"


def _room_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    for command in ROOM_COMMANDS:
        sub = actions.add_parser(
            command.name,
            help=command.summary,
            description=command.description,
            epilog=_examples(command),
        )
        command.arguments(sub)
        sub.set_defaults(room_action=command.run)


def room(ctx: Context, args: argparse.Namespace) -> None:
    args.room_action(ctx, args)


# -- retention ---------------------------------------------------------------------------

PURGE_BATCH = 1000  # messages per transaction: a running server's writes never wait long


def _purge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--before",
        metavar="DATE",
        required=True,
        help="delete messages older than this: YYYY-MM-DD (midnight UTC) or RFC 3339",
    )
    parser.add_argument("--room", metavar="NAME", help="only this room's messages")
    parser.add_argument("--yes", action="store_true", help="do not ask (for scripts)")


def purge(ctx: Context, args: argparse.Namespace) -> None:
    before = _date_option(args.before, "--before")
    assert before is not None  # the option is required
    store = ctx.store()
    room = _existing_room(store, args.room) if args.room is not None else None
    where = f"in #{room.name}" if room else "in every room and direct conversation"
    if not args.yes:
        _confirm(
            ctx,
            f"Delete every message {where} sent before {format_ts(before)}? This cannot be undone.",
        )
    progress = Progress(ctx.stderr, "deleted")
    deleted = 0
    while batch := store.purge_messages(
        before, room_id=room.id if room else None, batch=PURGE_BATCH
    ):
        deleted += batch
        progress(deleted)
    progress.finish()
    if deleted:
        store.compact_search_index()  # or the index keeps the purged messages' words
    ctx.say(
        f"deleted {deleted} message{'' if deleted == 1 else 's'} {where} before {format_ts(before)}"
    )
    _sweep_files(ctx)


# -- search ------------------------------------------------------------------------------

SEARCH_MAX_LIMIT = 100


def _positive(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number above 0")
    return number


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user", metavar="NAME", required=True, help="search what this account may read"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--room", metavar="NAME", help="only this room (the user must be in it)")
    where.add_argument(
        "--with", dest="peer", metavar="USER", help="only the direct conversation with USER"
    )
    parser.add_argument(
        "--limit",
        type=_positive,
        default=20,
        metavar="N",
        help=f"at most this many results, 1-{SEARCH_MAX_LIMIT} (default: 20)",
    )
    parser.add_argument(
        "--before", type=_positive, metavar="ID", help="only messages older than this id"
    )
    parser.add_argument(
        "words", metavar="WORDS", nargs="+", help='words and "quoted phrases", all required'
    )


def search(ctx: Context, args: argparse.Namespace) -> None:
    q = " ".join(args.words).strip()
    if len(q) > SEARCH_MAX_CHARS:
        raise CommandError(f"WORDS: at most {SEARCH_MAX_CHARS} characters")
    if not parse_terms(q):
        raise CommandError("WORDS: there is no word to search for")
    if args.limit > SEARCH_MAX_LIMIT:
        raise CommandError(f"--limit: at most {SEARCH_MAX_LIMIT}")
    store = ctx.store()
    account = _user(ctx, args.user)
    room = _existing_room(store, args.room) if args.room is not None else None
    if room is not None and store.role_of(account.id, room.id) is None:
        raise CommandError(f"{account.name!r} is not a member of #{room.name}")
    peer = _user(ctx, args.peer) if args.peer is not None else None
    found, more = store.search(
        account.id,
        q,
        room_id=room.id if room else None,
        peer_id=peer.id if peer else None,
        before=args.before,
        limit=args.limit,
    )
    for message in found:
        if message.room is not None:
            where = f"#{message.room}"
        else:  # the other party of the user's direct conversation
            mine = username_key(message.sender) == username_key(account.name)
            where = f"->{message.to if mine else message.sender}"
        text = "\n    ".join(message.text.splitlines()) or message.text
        ctx.say(f"{message.id}  {format_ts(message.ts_ms)}  {where}  {message.sender}: {text}")
    if not found:
        ctx.note("no messages match")
    elif more:
        ctx.note(f"more: add --before {found[-1].id} for older ones")


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
    parser.add_argument(
        "--force", action="store_true", help="replace an existing --output file (and files)"
    )
    parser.add_argument(
        "--with-files",
        metavar="DIR",
        type=Path,
        help="also copy the files the messages share into DIR (made 0700 if missing)",
    )


def export_records(rows: Iterable[MessageRow]) -> Iterator[ExportRecord]:
    """Store rows as export records (the store keeps milliseconds; exports show RFC 3339)."""
    for row in rows:
        edited_ms = row[6]
        yield ExportRecord(
            row[0],
            format_ts(row[1]),
            row[2],
            row[4],
            row[5],
            row[3],
            None if edited_ms is None else format_ts(edited_ms),
            row[7],
            None if row[8] is None else ExportFile._make(row[8:]),
        )


class FileCopier:
    """Copies the files of exported records into a folder as they stream past.

    Each is saved as ``saved_file_name`` (never a path from the stored name), 0600 in a
    0700 folder. A file whose bytes are gone from the file store is reported, not fatal.
    """

    def __init__(self, ctx: Context, folder: Path, *, replace: bool) -> None:
        self.ctx = ctx
        self.folder = folder
        self.replace = replace
        self.blobs = LocalBlobs(ctx.settings.files.dir)
        self.copied = 0
        self.missing = 0

    def __call__(self, records: Iterable[ExportRecord]) -> Iterator[ExportRecord]:
        for record in records:
            if record.file is not None:
                self._copy(record.id, record.file)
            yield record

    def _copy(self, message_id: int, file: ExportFile) -> None:
        target = self.folder / saved_file_name(file)
        try:
            source = self.blobs.open(file.sha256)
        except (FileNotFoundError, ValueError):
            self.missing += 1
            self.ctx.note(f"the file {file.id} of message {message_id} is gone from the file store")
            return
        if self.replace:
            target.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            fd = os.open(target, flags, PRIVATE_FILE_MODE)
        except FileExistsError:
            source.close()
            raise CommandError(f"{target} already exists; add --force to replace it") from None
        with source, open(fd, "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)
        self.copied += 1


def _files_folder(folder: Path) -> None:
    """Make the folder the files go to, 0700, unless it is there."""
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--with-files: {folder} is not a folder")
    folder.mkdir(mode=PRIVATE_FOLDER_MODE, parents=True, exist_ok=True)


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
    if since is not None and until is not None and since >= until:
        raise CommandError(f"--since {args.since} is not before --until {args.until}")
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
    records = export_records(rows)
    copier: FileCopier | None = None
    if args.with_files is not None:
        _files_folder(args.with_files)
        copier = FileCopier(ctx, args.with_files, replace=args.force)
        records = copier(records)
    if output is None:
        write_records(records, ctx.stdout, args.format, progress)
        progress.finish()
    else:
        count = export_to_path(
            records, output, args.format, overwrite=args.force, progress=progress
        )
        progress.finish()
        ctx.note(f"exported {count} messages to {output}")
    if copier is not None:
        missing = f" ({copier.missing} gone from the file store)" if copier.missing else ""
        ctx.note(f"copied {copier.copied} files to {args.with_files}{missing}")


# -- setting up and checking -------------------------------------------------------------


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        metavar="DIR",
        type=Path,
        nargs="?",
        default=Path(),
        help="the folder for config.toml, created if need be (default: this one)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing config.toml")


def init(ctx: Context, args: argparse.Namespace) -> None:
    target: Path = args.dir / DEFAULT_CONFIG_NAME
    args.dir.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(target, overwrite=args.force) as f:
            f.write(shipped(DEFAULT_CONFIG_NAME).read_text(encoding="utf-8"))
    except FileExistsError:
        raise CommandError(f"{target} already exists; add --force to replace it") from None
    found_by_default = target.resolve() == (Path.cwd() / DEFAULT_CONFIG_NAME).resolve()
    option = "" if found_by_default else f" --config {shlex.quote(str(target))}"
    ctx.say(f"wrote {target}, every setting with its default and a comment.")
    ctx.say("Paths in it are relative to its folder. Set [server] host and port, then run:")
    for step in (
        f"chatsecure-admin{option} gencert --hostname chat.example.org",
        f"chatsecure-admin{option} migrate",
        f"chatsecure-admin{option} adduser NAME",
        f"chatsecure-admin{option} check",
        f"chatsecure-server{option}",
    ):
        ctx.say(f"  {step}")


def check(ctx: Context, args: argparse.Namespace) -> None:
    try:
        settings = ctx.settings
    except ConfigError as exc:
        ctx.say(str(Finding(Level.FAIL, "config", str(exc))))
        raise CommandError("the configuration cannot be used") from None
    findings = run_checks(settings)
    for finding in findings:
        ctx.say(str(finding))
    failed = sum(f.level is Level.FAIL for f in findings)
    if failed:
        raise CommandError(f"{failed} of {len(findings)} checks failed")


def status(ctx: Context, args: argparse.Namespace) -> None:
    settings = ctx.settings
    host = reachable_host(settings.server.host)
    try:
        greeting = greet(host, settings.server.port)
    except StatusError as exc:
        raise CommandError(str(exc)) from None
    ctx.say(f"server: chatsecure {greeting.server_version or '(version not said)'}")
    ctx.say(f"certificate: {certificate_note(settings, greeting.fingerprint)}")
    ctx.say(f"messages stored: {ctx.store().message_count()}")
    listen = settings.metrics.listen
    if listen is None:
        ctx.say("uptime, sessions: not known; set [metrics] listen to see them")
        return
    try:
        samples = scrape(listen)
    except StatusError as exc:
        raise CommandError(str(exc)) from None
    started = samples.get("chatsecure_start_time_seconds")
    if started is not None:
        uptime = timedelta(seconds=round(utcnow().timestamp() - started))
        ctx.say(f"uptime: {uptime}")
    for name, label in SHOWN.items():
        if name in samples:
            ctx.say(f"{label}: {samples[name]:.0f}")


COMMANDS = (
    Command(
        "init",
        "write a commented config.toml with every default",
        "Write DIR/config.toml (mode 0600): every setting with its default value and a "
        "comment on what it does. Relative paths in it (certificates, the SQLite database) "
        "are relative to its folder. An existing file is kept unless --force. Then it "
        "prints the commands that get a server running.",
        ("chatsecure-admin init", "chatsecure-admin init /etc/chatsecure"),
        init,
        _init_arguments,
    ),
    Command(
        "check",
        "check the setup: config, certificate, file modes, schema, port",
        "Check what the server needs, one line each, OK, WARN or FAIL: the configuration "
        "loads; the certificate and key load and match; days until the certificate "
        f"expires (WARN under {EXPIRY_WARNING_DAYS}); whether [server] host is among its "
        "names; the modes of the private keys and the database files (FAIL if every user "
        "may read them, WARN for the group); the schema; whether the port is free (WARN "
        "when a server already listens there). Exits 1 if any check fails, so it can "
        "guard a start (systemd's ExecStartPre=).",
        ("chatsecure-admin check", "chatsecure-admin --config /etc/chatsecure/config.toml check"),
        check,
    ),
    Command(
        "status",
        "ask the running server: version, uptime, sessions, messages",
        "Connect to the running server over TLS as a client does and read its hello: "
        "its version, and whether the certificate it presents is [tls] cert_file (if "
        "not, a renewed one waits for a reload). Then the messages in the database and, "
        "from the server's metrics endpoint ([metrics] listen), its uptime, connections "
        "and sessions. Exits 1 if the server does not answer.",
        ("chatsecure-admin status",),
        status,
    ),
    Command(
        "migrate",
        "create the database or upgrade it to the current schema",
        "Create the database, or upgrade it to the current schema. Safe to run again: a "
        "database that is already current is left as it is. Before it changes the schema "
        "of a SQLite database it backs it up beside itself (NAME.REVISION.TIME.db.bak), "
        "unless --no-backup; another database must be backed up with its own tool first. "
        "Every other command that uses the database refuses to run until it is current.",
        ("chatsecure-admin migrate",),
        migrate,
        _migrate_arguments,
    ),
    Command(
        "backup",
        "copy the database, even while the server runs",
        "Copy the SQLite database to FILE: a consistent snapshot of everything committed, "
        "taken while the server goes on serving (SQLite's online backup API). The copy is "
        "checked with PRAGMA integrity_check and written to a temporary file renamed into "
        "place, mode 0600 (it holds every message). An existing FILE is kept unless "
        "--force. For PostgreSQL use pg_dump instead.",
        (
            "chatsecure-admin backup /var/backups/chatsecure.db",
            'chatsecure-admin backup "chatsecure-$(date +%F).db"',
        ),
        backup,
        _backup_arguments,
    ),
    Command(
        "restore",
        "replace the database with a backup (server stopped)",
        "Replace the SQLite database with FILE, a file made by backup. FILE is checked "
        "first: a sound SQLite file (integrity_check) with a chatsecure schema this version "
        "knows; an older schema is restored and then needs migrate. Refuses while the "
        "server, or anything else, has the database open: stop the server first. The "
        "database is replaced in one rename, mode 0600, keeping its owner, and its stale "
        "-wal and -shm files are removed.",
        ("chatsecure-admin restore /var/backups/chatsecure.db",),
        restore,
        _restore_arguments,
    ),
    Command(
        "gencert",
        "make a development CA and a server certificate signed by it",
        "Make a local certificate authority and a server certificate it signs (ECDSA "
        "P-256), written to the [tls] cert_file, key_file and ca_file paths, with the CA's "
        "key beside ca_file (ca.key). Private keys are created mode 0600. Clients verify "
        "the server with ca_file. Existing files are kept unless one of: --force renews "
        "the server certificate with the existing CA, so clients go on trusting it; "
        "--new-ca makes a new CA too, so every client needs the new ca_file.",
        (
            "chatsecure-admin gencert",
            "chatsecure-admin gencert --hostname chat.example.org --hostname 192.0.2.10",
            "chatsecure-admin gencert --force     # renew, same CA and names",
        ),
        gencert,
        _gencert_arguments,
    ),
    Command(
        "adduser",
        "create an account",
        "Create an account; it joins the [rooms] default rooms. The password is prompted "
        "for twice, or read as one line from stdin with --password-stdin. It must have at "
        "least 8 characters and must not be the name. Names are unique regardless of case. "
        "With --admin the account is a server admin, who may moderate every room.",
        (
            "chatsecure-admin adduser alice",
            "chatsecure-admin adduser root --admin",
            "printf '%s\\n' \"$PASSWORD\" | chatsecure-admin adduser alice --password-stdin",
        ),
        adduser,
        _adduser_arguments,
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
        "unlock",
        "let a throttled account log in again now",
        "Forget an account's failed logins, so the per-account throttle no longer refuses "
        "it; the password stays as it is. The per-address throttle is not affected: it "
        "ends with its window.",
        ("chatsecure-admin unlock alice",),
        unlock,
        _username_argument,
    ),
    Command(
        "deluser",
        "delete an account (its messages stay)",
        "Delete an account, after asking at the terminal (--yes does not ask). "
        + DELUSER_EFFECTS
        + " "
        + ERASE_EFFECTS,
        (
            "chatsecure-admin deluser alice",
            "chatsecure-admin deluser alice --yes",
            "chatsecure-admin deluser alice --erase",
        ),
        deluser,
        _deluser_arguments,
    ),
    Command(
        "admin",
        "make an account a server admin, or not",
        "Turn an account's server admin right on or off. A server admin may moderate "
        "every room (invite, topic, roles, kick, ban, delete messages) as if its owner.",
        ("chatsecure-admin admin alice on", "chatsecure-admin admin alice off"),
        set_admin,
        _admin_arguments,
    ),
    Command(
        "users",
        "list accounts",
        "List every account: name, when it was created, its last login (UTC) and its "
        "state: active, disabled, or locked until HH:MM (UTC) after too many failed "
        "logins (unlock lifts it). --json prints a JSON array of objects with name, "
        "created, last_login, disabled, locked_until (times in RFC 3339 or null) and "
        "admin (a server admin).",
        ("chatsecure-admin users", "chatsecure-admin users --json"),
        users,
        _json_argument,
    ),
    Command(
        "rooms",
        "list rooms",
        "List every room, private ones too, with its number of members and its topic; "
        "--json prints a JSON array of objects with name, members, private and topic.",
        ("chatsecure-admin rooms", "chatsecure-admin rooms --json"),
        rooms,
        _json_argument,
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
        "room",
        "create and moderate rooms: create, topic, role, kick, ban, unban, list-members",
        "Create a room (public or private) and moderate any room as a server admin would: "
        "set its topic, give members roles, kick, ban and unban accounts, and list its "
        "members. Changes reach a running server's sessions within seconds. Run "
        "'chatsecure-admin room ACTION --help' for an action's details.",
        (
            "chatsecure-admin room create ops --private --owner alice",
            "chatsecure-admin room ban dev mallory --reason spam",
            "chatsecure-admin room list-members ops",
        ),
        room,
        _room_arguments,
    ),
    Command(
        "purge",
        "delete old messages",
        "Delete every message sent before --before (YYYY-MM-DD is midnight UTC), "
        "everywhere or in one --room, after asking at the terminal (--yes does not ask). "
        "Messages go in batches of 1000, so a running server is never held up. For "
        "deletion on a schedule, set [history] retain_days.",
        (
            "chatsecure-admin purge --before 2026-01-01",
            "chatsecure-admin purge --before 2026-06-01 --room random --yes",
        ),
        purge,
        _purge_arguments,
    ),
    Command(
        "search",
        "search the messages an account may read",
        "Search what --user may read: the rooms it is in now and its direct conversations, "
        "or one --room it is in, or its direct conversation --with another account. Every "
        "word must appear, as a whole word, in any letter case and with or without accents; "
        '"quoted phrases" (quote them from the shell too) must appear as written. Deleted '
        "messages never match; an edited one matches its new text. Newest first, one "
        "line each: id, time (UTC), #room or ->peer, sender and text. When there are "
        "more, stderr says which --before gets the next page.",
        (
            "chatsecure-admin search --user alice deploy friday",
            "chatsecure-admin search --user alice --room dev '\"release notes\"'",
            "chatsecure-admin search --user alice --with bob --limit 50 --before 1042 lunch",
        ),
        search,
        _search_arguments,
    ),
    Command(
        "export",
        "export stored messages as txt, jsonl or csv",
        "Export one room's messages (--room) or everything one account can see: the rooms "
        "it is in and its direct messages (--user). Oldest first. Formats: txt (readable "
        "lines, times in UTC), jsonl (one JSON object per message: id, ts, from, room or "
        "to, text, and edited_ts for an edited message; a deleted one has no text but "
        "deleted: true) and csv (header id,ts,from,room,to,text,edited_ts,deleted). Writes "
        "to stdout, or to "
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
