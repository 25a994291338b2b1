"""The ``[irc]`` section: off unless asked, TLS-only by construction, checked like the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatsecure.config import ConfigError, default_settings, load_settings


def test_irc_is_off_by_default_on_port_6697():
    irc = default_settings().irc
    assert (irc.enabled, irc.host, irc.port) == (False, "127.0.0.1", 6697)


def test_the_repository_config_keeps_irc_off():
    settings = load_settings(Path(__file__).resolve().parents[2] / "config.toml")
    assert settings.irc.enabled is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("port = 0", r"\[irc\] port: 0 is out of range"),
        ('port = "6697"', r"\[irc\] port: must be a whole number"),
        ('enabled = "yes"', r"\[irc\] enabled: must be true or false"),
        ('host = "local host"', r'\[irc\] host: "local host" is not a host name'),
        ("plaintext = true", r"\[irc\] plaintext: unknown key"),
    ],
)
def test_bad_irc_settings_name_the_key(tmp_path, body, message):
    path = tmp_path / "config.toml"
    path.write_text(f"[irc]\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_irc_settings_are_read(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[irc]\nenabled = true\nhost = "::1"\nport = 6698\n', encoding="utf-8")
    irc = load_settings(path).irc
    assert (irc.enabled, irc.host, irc.port) == (True, "::1", 6698)
