import csv
import io
import json
import os
import re
import stat

import pytest

from chatsecure.admin.cli import main
from chatsecure.admin.commands import COMMANDS, ROOM_COMMANDS
from chatsecure.config import load_settings
from chatsecure.passwords import verify_password
from chatsecure.storage.db import make_engine
from chatsecure.storage.store import NewMessage, Store
from tests.admin.conftest import Admin

PASSWORD = "correct horse battery"
TRICKY = 'a, "quoted" text,\nand a second line, "end"'


def _store(admin: Admin) -> Store:
    settings = load_settings(admin.config)
    return Store(make_engine(settings.database.url))


def test_every_command_has_help_with_an_example():
    for command in COMMANDS:
        out, err = io.StringIO(), io.StringIO()
        assert main([command.name, "--help"], stdout=out, stderr=err) == 0
        assert "example" in out.getvalue()
        assert "chatsecure-admin" in out.getvalue()
        assert err.getvalue() == ""


def test_top_level_help_lists_the_commands():
    out = io.StringIO()
    assert main(["--help"], stdout=out, stderr=io.StringIO()) == 0
    assert all(command.name in out.getvalue() for command in COMMANDS)


def test_usage_errors_exit_2_on_the_injected_stderr():
    out, err = io.StringIO(), io.StringIO()
    assert main(["frobnicate"], stdout=out, stderr=err) == 2
    assert "invalid choice" in err.getvalue()
    assert out.getvalue() == ""
    assert main([], stdout=out, stderr=err) == 2


def test_config_errors_are_clean(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text("[server]\nprot = 1\n")
    err = io.StringIO()
    assert main(["--config", str(bad), "users"], stdout=io.StringIO(), stderr=err) == 1
    assert err.getvalue().startswith("chatsecure-admin: error: ")
    assert "[server] prot: unknown key" in err.getvalue()
    assert "Traceback" not in err.getvalue()


def test_config_comes_from_the_environment_then_the_working_directory(
    write_config, tmp_path, monkeypatch
):
    from_env = write_config(tmp_path / "env")
    write_config(tmp_path / "cwd", database={"url": "sqlite:///cwd.db"})
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv("CHATSECURE_CONFIG", raising=False)
    out = io.StringIO()
    assert main(["migrate"], stdout=out, stderr=io.StringIO()) == 0
    assert "cwd.db" in out.getvalue()
    monkeypatch.setenv("CHATSECURE_CONFIG", str(from_env))
    out = io.StringIO()
    assert main(["migrate"], stdout=out, stderr=io.StringIO()) == 0
    assert str(tmp_path / "env" / "chatsecure.db") in out.getvalue()


def test_migrate_is_idempotent(admin):
    first = admin("migrate")
    assert first.code == 0
    assert "upgraded from (empty) to" in first.out
    again = admin("migrate")
    assert again.code == 0
    assert "already at the current schema" in again.out


def test_commands_refuse_a_missing_or_old_database(admin):
    result = admin("users")
    assert result.code == 1
    assert "chatsecure-admin migrate" in result.err
    assert not (admin.config.parent / "chatsecure.db").exists()  # and did not create it
    engine = make_engine(load_settings(admin.config).database.url)
    with engine.connect():  # an empty database file, never migrated
        pass
    engine.dispose()
    result = admin("users")
    assert result.code == 1
    assert "(empty)" in result.err
    assert "migrate" in result.err


def test_adduser_from_stdin_joins_default_rooms(write_config, tmp_path, admin_for):
    admin = admin_for(write_config(tmp_path, rooms={"default": ["general", "dev"]}))
    admin("migrate")
    result = admin("adduser", "Alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert result.code == 0, result.err
    assert "Alice" in result.out
    assert PASSWORD not in result.out + result.err
    store = _store(admin)
    account = store.get_account("alice")
    assert account is not None
    assert account.name == "Alice"
    assert PASSWORD not in account.password_hash
    assert verify_password(PASSWORD, account.password_hash)
    assert [(r.name, r.joined) for r in store.list_rooms(account.id)] == [
        ("dev", True),
        ("general", True),
    ]
    cost = account.password_hash.split("$")[4]
    assert cost == "10"  # the configured bcrypt_rounds


@pytest.mark.parametrize(
    ("name", "password", "problem"),
    [
        ("ALICE", PASSWORD, "already exists"),
        (".alice", PASSWORD, "not a valid username"),
        ("a" * 33, PASSWORD, "not a valid username"),
        ("bob", "short", "at least 8 characters"),
        ("bob", "", "no password on stdin"),
    ],
)
def test_adduser_refusals(migrated, name, password, problem):
    assert migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD).code == 0
    result = migrated("adduser", name, "--password-stdin", stdin=password + "\n")
    assert result.code == 1
    assert result.err.startswith("chatsecure-admin: error: ")
    assert problem in result.err
    assert "Traceback" not in result.err
    if password:
        assert password not in result.err


def test_adduser_prompts_twice_at_a_terminal(migrated, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    answers = iter([PASSWORD, PASSWORD, PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    out, err = io.StringIO(), io.StringIO()
    argv = ["--config", str(migrated.config), "adduser", "alice"]
    assert main(argv, stdin=Terminal(), stdout=out, stderr=err) == 0
    argv[-1] = "bob"
    assert main(argv, stdin=Terminal(), stdout=out, stderr=err) == 1
    assert "differ" in err.getvalue()


def test_adduser_without_a_terminal_asks_for_password_stdin(migrated):
    result = migrated("adduser", "alice")
    assert result.code == 1
    assert "--password-stdin" in result.err


def test_passwd(migrated):
    migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD)
    result = migrated("passwd", "ALICE", "--password-stdin", stdin="a brand new secret\n")
    assert result.code == 0
    assert "alice" in result.out
    account = _store(migrated).get_account("alice")
    assert account is not None
    assert verify_password("a brand new secret", account.password_hash)
    assert migrated("passwd", "alice", "--password-stdin", stdin="tiny").code == 1
    assert "no account" in migrated("passwd", "zed", "--password-stdin", stdin=PASSWORD).err


def test_disable_enable_and_users_table(migrated):
    migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD)
    migrated("adduser", "Bob", "--password-stdin", stdin=PASSWORD)
    assert migrated("disable", "bob").code == 0
    table = migrated("users").out.splitlines()
    assert table[0].split() == ["NAME", "CREATED", "(UTC)", "LAST", "LOGIN", "(UTC)", "STATE"]
    assert table[1].split()[0] == "alice"
    assert table[1].split()[-2:] == ["never", "active"]
    assert table[2].split()[0] == "Bob"
    assert table[2].split()[-1] == "disabled"
    assert migrated("enable", "BOB").code == 0
    assert migrated("users").out.splitlines()[2].split()[-1] == "active"
    assert migrated("disable", "nobody").code == 1


def test_users_and_rooms_when_empty(migrated):
    assert "no accounts yet" in migrated("users").out
    assert "no rooms yet" in migrated("rooms").out


def test_deluser_explains_what_happens(migrated):
    migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD)
    help_text = io.StringIO()
    main(["deluser", "--help"], stdout=help_text, stderr=io.StringIO())
    result = migrated("deluser", "Alice", "--yes")
    for text in (help_text.getvalue().replace("\n", " "), result.out):
        assert "stay in the history" in " ".join(text.split())
        assert "cannot read the old one's" in " ".join(text.split())
    assert _store(migrated).get_account("alice") is None
    assert migrated("deluser", "alice", "--yes").code == 1


def test_rooms_and_addroom(migrated):
    assert migrated("addroom", "Dev").out.strip() == "created room #dev"
    assert "already exists" in migrated("addroom", "dev").err
    assert "not a valid room name" in migrated("addroom", "no spaces").err
    migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD)
    lines = migrated("rooms").out.splitlines()
    assert [line.split() for line in lines] == [
        ["ROOM", "MEMBERS", "PRIVATE", "TOPIC"],
        ["dev", "0"],
        ["general", "1"],
    ]


def test_import_users_all_generated_to_stdout(migrated):
    result = migrated("import-users", "-", stdin="username\nalice\nBob\n")
    assert result.code == 0, result.err
    rows = list(csv.reader(io.StringIO(result.out)))
    assert rows[0] == ["username", "password"]
    assert [r[0] for r in rows[1:]] == ["alice", "Bob"]
    store = _store(migrated)
    for name, password in rows[1:]:
        assert len(password) == 16
        account = store.get_account(name)
        assert account is not None
        assert verify_password(password, account.password_hash)
    assert "created 2 accounts" in result.err


def test_import_users_mixed_to_an_output_file(migrated, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text(" Username , Password\ncarol,carols password\ndave,\n", encoding="utf-8")
    output = tmp_path / "passwords.csv"
    result = migrated("import-users", str(source), "--output", str(output))
    assert result.code == 0, result.err
    assert result.out == ""
    assert "carols password" not in result.err
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(output.read_text(encoding="utf-8"))))
    assert [r[0] for r in rows] == ["username", "dave"]
    carol = _store(migrated).get_account("carol")
    assert carol is not None
    assert verify_password("carols password", carol.password_hash)
    again = migrated("import-users", str(source), "--output", str(output))
    assert again.code == 1
    assert "already exists" in again.err


def test_import_users_is_all_or_nothing(migrated):
    migrated("adduser", "taken", "--password-stdin", stdin=PASSWORD)
    result = migrated("import-users", "-", stdin="username\nnew1\nTAKEN\n")
    assert result.code == 1
    assert "taken" in result.err
    assert _store(migrated).get_account("new1") is None


def test_import_users_reports_every_bad_line(migrated):
    text = "username,password\nok,\n.bad,\ndup,\nDUP,\nweak,short\nx,y,z\n"
    result = migrated("import-users", "-", stdin=text)
    assert result.code == 1
    for expected in (
        "line 3: '.bad' is not a valid username",
        "line 5: 'DUP' is also on line 4",
        "line 6: password of 'weak': password must be at least 8 characters",
        "line 7: more values than columns",
    ):
        assert expected in result.err
    assert "short" not in result.err.replace("at least", "")
    assert _store(migrated).get_account("ok") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [("name\nalice\n", "'username' column"), ("username,pasword\na,\n", "unknown column")],
)
def test_import_users_checks_the_header(migrated, text, problem):
    result = migrated("import-users", "-", stdin=text)
    assert result.code == 1
    assert problem in result.err


def test_import_users_missing_file_is_a_clean_error(migrated, tmp_path):
    result = migrated("import-users", str(tmp_path / "nope.csv"))
    assert result.code == 1
    assert "No such file" in result.err
    assert "Traceback" not in result.err


def test_import_users_hashes_in_parallel_threads(monkeypatch):
    import threading

    from chatsecure.admin import accounts

    seen = set()

    def fake_hash(password, rounds):
        seen.add(threading.current_thread().name)
        return f"hashed-{rounds}"

    monkeypatch.setattr(accounts, "hash_password", fake_hash)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    progress: list[int] = []
    assert accounts.hash_all(["a"] * 50, 12, progress.append) == ["hashed-12"] * 50
    assert progress == list(range(1, 51))
    assert all(name.startswith("bcrypt") for name in seen)


def _seed_messages(admin: Admin) -> None:
    store = _store(admin)
    ids = {a.name: a.id for a in store.list_accounts()}
    general = store.room_id("general")
    store.insert_messages(
        [
            NewMessage(ids["alice"], "alice", "hello, world", room_id=general, room_name="general"),
            NewMessage(ids["bob"], "bob", TRICKY, room_id=general, room_name="general"),
            NewMessage(
                ids["alice"], "alice", TRICKY, recipient_id=ids["bob"], recipient_name="bob"
            ),
        ]
    )


@pytest.fixture
def chatty(migrated):
    for name in ("alice", "bob"):
        migrated("adduser", name, "--password-stdin", stdin=PASSWORD)
    migrated("addroom", "empty")
    _seed_messages(migrated)
    return migrated


def test_export_room_jsonl_to_stdout(chatty):
    result = chatty("export", "--room", "General", "--format", "jsonl")
    assert result.code == 0, result.err
    objects = [json.loads(line) for line in result.out.splitlines()]
    assert [(o["from"], o["room"], o["text"]) for o in objects] == [
        ("alice", "general", "hello, world"),
        ("bob", "general", TRICKY),
    ]
    assert objects[0]["ts"].endswith("Z")
    assert len(objects[0]["ts"]) == 24


def test_export_user_sees_rooms_and_direct_messages_csv(chatty, tmp_path):
    output = tmp_path / "bob.csv"
    result = chatty("export", "--user", "BOB", "--format", "csv", "--output", str(output))
    assert result.code == 0, result.err
    assert "exported 3 messages" in result.err
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"), newline="")))
    assert [(r["from"], r["room"], r["to"], r["text"]) for r in rows] == [
        ("alice", "general", "", "hello, world"),
        ("bob", "general", "", TRICKY),
        ("alice", "", "bob", TRICKY),
    ]
    refused = chatty("export", "--user", "bob", "--output", str(output))
    assert refused.code == 1
    assert "--force" in refused.err
    assert chatty("export", "--user", "bob", "--output", str(output), "--force").code == 0
    assert output.read_text(encoding="utf-8").startswith("[")


def test_export_txt(chatty):
    lines = chatty("export", "--user", "alice").out.splitlines()
    assert lines[0].endswith("] #general alice: hello, world")
    assert '] alice -> bob: a, "quoted" text,' in lines[3]
    assert lines[4] == '    and a second line, "end"'


def test_export_time_window(chatty):
    assert chatty("export", "--room", "general", "--since", "2999-01-01").out == ""
    assert chatty("export", "--room", "general", "--until", "2000-01-01T00:00:00Z").out == ""
    everything = chatty("export", "--room", "general", "--since", "2000-01-01").out
    assert everything.count("#general") == 2


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--room", "nowhere"], "no room named 'nowhere'"),
        (["--user", "nobody"], "no account named 'nobody'"),
        (["--room", "general", "--since", "yesterday"], "--since: 'yesterday' is not a date"),
        (["--room", "general", "--until", "2026-01-01T00:00"], "no time zone"),
    ],
)
def test_export_refusals(chatty, argv, problem):
    result = chatty("export", *argv)
    assert result.code == 1
    assert problem in result.err


def test_export_needs_exactly_one_of_room_and_user(chatty):
    assert chatty("export").code == 2
    assert chatty("export", "--room", "general", "--user", "bob").code == 2


def test_version():
    from importlib.metadata import version

    out = io.StringIO()
    assert main(["--version"], stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue() == f"chatsecure-admin {version('chatsecure')}\n"


def test_config_may_follow_the_command(write_config, tmp_path):
    config = write_config(tmp_path / "elsewhere")
    out, err = io.StringIO(), io.StringIO()
    assert main(["migrate", "--config", str(config)], stdout=out, stderr=err) == 0, err
    assert str(tmp_path / "elsewhere" / "chatsecure.db") in out.getvalue()
    # Given before the command, it is not undone by the command's own (absent) option.
    out = io.StringIO()
    assert main(["--config", str(config), "users"], stdout=out, stderr=io.StringIO()) == 0
    assert "no accounts yet" in out.getvalue()


def test_config_may_follow_every_command_and_action(write_config, tmp_path):
    config_path = write_config(tmp_path / "elsewhere")
    config = str(config_path)
    assert main(["migrate", "--config", config], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    for argv in (
        ["room", "create", "again3", "--config", config],
        ["room", "--config", config, "create", "again4"],
        ["room", "list-members", "again3", "--json", "--config", config],
    ):
        err = io.StringIO()
        assert main(argv, stdout=io.StringIO(), stderr=err) == 0, (argv, err.getvalue())
    assert [r.name for r in _store(Admin(config_path)).list_rooms()] == ["again3", "again4"]
    actions = [[c.name] for c in COMMANDS] + [["room", c.name] for c in ROOM_COMMANDS]
    for path in actions:
        out = io.StringIO()
        assert main([*path, "--help"], stdout=out, stderr=io.StringIO()) == 0
        assert "--config PATH" in out.getvalue(), path


def test_help_is_wrapped_to_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    for command in COMMANDS:
        out = io.StringIO()
        assert main([command.name, "--help"], stdout=out, stderr=io.StringIO()) == 0
        text = out.getvalue()
        # argparse wraps the usage block by its own rule; the prose after it is ours.
        prose = text.split("\n\n", 1)[1].split("\nexample")[0]
        assert max(map(len, prose.splitlines())) <= 50, prose
        # The examples stay whole, one command a line, however narrow the terminal.
        for example in command.examples:
            assert f"  {example}\n" in text + "\n"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_deluser_asks_at_a_terminal(migrated):
    migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD)
    argv = ["--config", str(migrated.config), "deluser", "alice"]
    err = io.StringIO()
    assert main(argv, stdin=Terminal("n\n"), stdout=io.StringIO(), stderr=err) == 1
    assert "Delete the account 'alice'?" in err.getvalue()
    assert "nothing was changed" in err.getvalue()
    assert _store(migrated).get_account("alice") is not None
    out = io.StringIO()
    assert main(argv, stdin=Terminal("yes\n"), stdout=out, stderr=io.StringIO()) == 0
    assert "deleted account 'alice'" in out.getvalue()
    assert _store(migrated).get_account("alice") is None


def test_deluser_without_a_terminal_needs_yes(migrated):
    migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD)
    refused = migrated("deluser", "alice", stdin="y\n")
    assert refused.code == 1
    assert "--yes" in refused.err
    assert _store(migrated).get_account("alice") is not None
    assert "no account named 'bob'" in migrated("deluser", "bob").err


def _fail_logins(admin: Admin, name: str, times: int) -> None:
    store = _store(admin)
    account = store.get_account(name)
    assert account is not None
    for _ in range(times):
        store.record_login_failure(account.id, load_settings(admin.config).auth.failure_window)


def test_users_shows_a_locked_account_and_unlock_clears_it(migrated):
    for name in ("alice", "bob"):
        migrated("adduser", name, "--password-stdin", stdin=PASSWORD)
    migrated("disable", "bob")
    max_failures = load_settings(migrated.config).auth.max_failures
    _fail_logins(migrated, "alice", max_failures - 1)
    assert migrated("users").out.splitlines()[1].split()[-1] == "active"  # one more to go
    _fail_logins(migrated, "alice", 1)
    _fail_logins(migrated, "bob", max_failures)
    alice, bob = (line.split("  ")[-1].strip() for line in migrated("users").out.splitlines()[1:])
    assert re.fullmatch(r"locked until (\d{4}-\d\d-\d\d )?\d\d:\d\d", alice), alice
    assert re.fullmatch(r"disabled, locked until (\d{4}-\d\d-\d\d )?\d\d:\d\d", bob), bob
    before = _store(migrated).get_account("alice")
    result = migrated("unlock", "ALICE")
    assert result.code == 0, result.err
    assert "password is unchanged" in result.out
    after = _store(migrated).get_account("alice")
    assert after is not None
    assert before is not None
    assert after.password_hash == before.password_hash
    assert (after.failed_logins, after.failures_since) == (0, None)
    assert migrated("users").out.splitlines()[1].split()[-1] == "active"
    assert "no account named 'zed'" in migrated("unlock", "zed").err


def test_users_and_rooms_as_json(migrated):
    assert json.loads(migrated("users", "--json").out) == []
    migrated("adduser", "alice", "--password-stdin", stdin=PASSWORD)
    migrated("addroom", "dev")
    _fail_logins(migrated, "alice", load_settings(migrated.config).auth.max_failures)
    (alice,) = json.loads(migrated("users", "--json").out)
    assert set(alice) == {"name", "created", "last_login", "disabled", "locked_until", "admin"}
    assert alice["admin"] is False
    assert alice["name"] == "alice"
    assert alice["last_login"] is None
    assert alice["disabled"] is False
    for moment in (alice["created"], alice["locked_until"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", moment), moment
    assert json.loads(migrated("rooms", "--json").out) == [
        {"name": "dev", "members": 0, "private": False, "topic": ""},
        {"name": "general", "members": 1, "private": False, "topic": ""},
    ]


def test_export_refuses_an_inverted_window(chatty):
    result = chatty("export", "--room", "general", "--since", "2026-12-01", "--until", "2026-11-01")
    assert result.code == 1
    assert result.err == (
        "chatsecure-admin: error: --since 2026-12-01 is not before --until 2026-11-01\n"
    )
