import dataclasses
import re
from pathlib import Path

import pytest

from chatsecure.config import CONFIG_ENV, ConfigError, Settings, load_settings, locate_config


def _load(tmp_path: Path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_the_repository_config_is_the_defaults():
    repo_config = Path(__file__).resolve().parent.parent / "config.toml"
    settings = load_settings(repo_config)
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 5443
    assert settings.auth.bcrypt_rounds == 12
    assert settings.history.on_login == 50
    assert settings.rooms.default == ("general",)
    assert settings.rooms.users_can_create is True
    assert settings.limits.max_frame_bytes == 65536
    assert settings.limits.max_text_chars == 4000
    assert settings.limits.login_timeout == 30
    assert settings.files.enabled is True
    assert settings.files.max_bytes == 25 * 1024 * 1024
    assert settings.files.quota_bytes == 1024 * 1024 * 1024
    assert settings.files.upload_timeout == 900
    assert settings.files.dir == repo_config.parent / "files"


def test_an_empty_file_gives_the_defaults(tmp_path):
    settings = _load(tmp_path, "")
    assert settings.tls.cert_file == tmp_path / "certs/server.pem"
    assert settings.database.url == f"sqlite:///{tmp_path / 'chatsecure.db'}"


def test_relative_paths_resolve_against_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    settings = _load(
        tmp_path,
        '[tls]\ncert_file = "a/b.pem"\nkey_file = "/abs/k.key"\n'
        '[database]\nurl = "sqlite:///data/chat.db"\n',
    )
    assert settings.tls.cert_file == tmp_path / "a/b.pem"
    assert settings.tls.key_file == Path("/abs/k.key")
    assert settings.tls.ca_file == tmp_path / "certs/ca.pem"
    assert settings.database.url == f"sqlite:///{tmp_path / 'data/chat.db'}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/chat.db",
        "sqlite://",
        "postgresql+psycopg://u:p@db/chat",
        "postgresql+psycopg://chat@/chat?host=/run/postgresql",
    ],
)
def test_absolute_memory_and_server_urls_pass_unchanged(tmp_path, url):
    assert _load(tmp_path, f'[database]\nurl = "{url}"\n').database.url == url


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("[server]\nport = 0\n", "[server] port", "out of range"),
        ("[server]\nport = 70000\n", "[server] port", "out of range"),
        ('[server]\nport = "5443"\n', "[server] port", "whole number"),
        ("[server]\nport = true\n", "[server] port", "whole number"),
        ("[auth]\nbcrypt_rounds = 9\n", "[auth] bcrypt_rounds", "out of range"),
        ("[auth]\nbcrypt_rounds = 17\n", "[auth] bcrypt_rounds", "out of range"),
        ("[rooms]\nusers_can_create = 1\n", "[rooms] users_can_create", "true or false"),
        ('[rooms]\ndefault = "general"\n', "[rooms] default", "list of strings"),
        ('[rooms]\ndefault = ["Bad Room"]\n', "[rooms] default", "not a room name"),
        ('[tls]\nprofile = "old"\n', "[tls] profile", "not one of"),
        ("[tls]\ncert_file = 3\n", "[tls] cert_file", "file path"),
        ('[database]\nurl = "not a url"\n', "[database] url", "not a database URL"),
        ('[database]\nurl = "mysql://u@db/chat"\n', "[database] url", "SQLite"),
        ('[database]\nurl = "postgresql+psycopg2://u@db/c"\n', "[database] url", "psycopg driver"),
        ("[database]\npool_size = 0\n", "[database] pool_size", "out of range"),
        ("[database]\nmax_overflow = -1\n", "[database] max_overflow", "out of range"),
        ('[database]\npool_timeout = "30"\n', "[database] pool_timeout", "a number"),
        ('[server]\nhost = ""\n', "[server] host", "non-empty"),
        ("[history]\non_login = 501\n", "[history] on_login", "out of range"),
        ("[limits]\nlogin_timeout = 0\n", "[limits] login_timeout", "out of range"),
        ('[logging]\nformat = "xml"\n', "[logging] format", "not one of"),
        ("[logging]\nfile = 1\n", "[logging] file", "file path"),
        ('[metrics]\nlisten = "9464"\n', "[metrics] listen", "not HOST:PORT"),
        ('[metrics]\nlisten = "127.0.0.1:0"\n', "[metrics] listen", "not HOST:PORT"),
        ('[metrics]\nlisten = "::1:9464"\n', "[metrics] listen", "not a host"),
        ('[metrics]\nlisten = ""\n', "[metrics] listen", "non-empty"),
        ("[files]\nmax_bytes = 0\n", "[files] max_bytes", "out of range"),
        ("[files]\nquota_bytes = 1.5\n", "[files] quota_bytes", "whole number"),
        ("[files]\nupload_timeout = 0\n", "[files] upload_timeout", "out of range"),
        ('[files]\nenabled = "yes"\n', "[files] enabled", "true or false"),
        ("[files]\ndir = 7\n", "[files] dir", "file path"),
    ],
)
def test_a_bad_value_names_file_key_and_problem(tmp_path, text, where, problem):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    assert str(tmp_path / "config.toml") in message
    assert where in message
    assert problem in message


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[history]\nretain_days = true\n", "must be a whole number, not true"),
        ("[server]\nport = false\n", "must be a whole number, not false"),
        ('[server]\nport = "5443"\n', 'must be a whole number, not "5443"'),
        ("[rooms]\nusers_can_create = 1\n", "must be true or false, not 1"),
        ('[files]\nenabled = "yes"\n', 'must be true or false, not "yes"'),
        ('[rooms]\ndefault = "general"\n', 'must be a list of strings, not "general"'),
        ("[rooms]\ndefault = [1, true]\n", "must be a list of strings, not [1, true]"),
        ("[tls]\ncert_file = { a = 1 }\n", "must be a file path string, not { a = 1 }"),
        ('[rooms]\ndefault = ["Bad Room"]\n', '"Bad Room" is not a room name'),
        ('[tls]\nprofile = "old"\n', '"old" is not one of "intermediate", "modern"'),
        ('[cluster]\nnode_name = "a b"\n', '"a b" is not a node name'),
        ('[metrics]\nlisten = "9464"\n', '"9464" is not HOST:PORT'),
        ('[server]\nhost = "a\\tb"\n', '"a\\tb" is not a host name'),
    ],
)
def test_a_bad_value_is_quoted_as_toml_writes_it(tmp_path, text, said):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    assert said in message
    assert "True" not in message  # no Python spellings
    assert "'" not in message


def test_an_unknown_key_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\[server\] prot: unknown key"):
        _load(tmp_path, "[server]\nprot = 5443\n")


def test_an_unknown_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section \[sever\]"):
        _load(tmp_path, "[sever]\nport = 5443\n")


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, "[server\n")
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_location_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert locate_config(None) == tmp_path / "config.toml"
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "env.toml"))
    assert locate_config(None) == tmp_path / "env.toml"
    assert locate_config("explicit.toml") == tmp_path / "explicit.toml"


def test_the_write_config_fixture_makes_a_valid_scratch_config(write_config, tmp_path):
    path = write_config(tmp_path / "x", rooms={"default": ["general", "dev"]})
    settings = load_settings(path)
    assert settings.auth.bcrypt_rounds == 10
    assert settings.rooms.default == ("general", "dev")
    assert settings.tls.key_file == tmp_path / "x/certs/server.key"


def test_log_file_and_metrics_address(tmp_path):
    settings = _load(
        tmp_path, '[logging]\nfile = "logs/server.log"\n[metrics]\nlisten = "[::1]:9464"\n'
    )
    assert settings.logging.file == tmp_path / "logs/server.log"
    assert settings.metrics.listen == "[::1]:9464"
    defaults = _load(tmp_path, "")
    assert defaults.logging.file is None
    assert defaults.metrics.listen is None


def test_files_defaults_and_a_relative_dir_beside_the_config(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    files = _load(tmp_path, "").files
    assert files.enabled is True
    assert files.dir == tmp_path / "files"
    assert files.max_bytes == 25 * 1024 * 1024
    assert files.quota_bytes == 1024 * 1024 * 1024
    assert files.upload_timeout == 900
    moved = _load(tmp_path, '[files]\ndir = "data/blobs"\nmax_bytes = 1024\n').files
    assert moved.dir == tmp_path / "data/blobs"
    assert moved.max_bytes == 1024
    assert _load(tmp_path, '[files]\ndir = "/srv/files"\n').files.dir == Path("/srv/files")


def test_the_readmes_configuration_table_names_every_key():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `\[(\w+)\]` \| (.*) \|$", readme, re.MULTILINE))
    defaults = Settings()
    for part in dataclasses.fields(Settings):
        if part.name == "path":
            continue
        section = part.name
        assert section in rows, f"README's configuration table has no [{section}]"
        keys = [f.name for f in dataclasses.fields(getattr(defaults, section))]
        missing = [key for key in keys if f"`{key}`" not in rows[section]]
        assert not missing, f"README's [{section}] row does not name {missing}"
