"""``chatsecure-server``: start-up errors are one clear line; SIGTERM stops it cleanly."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chatsecure.package import version
from chatsecure.server import app
from chatsecure.server.transport import certificate_fingerprint
from chatsecure.storage.db import make_engine, upgrade
from tests.conftest import write_config
from tests.serverproc import HOST, free_port, spawn
from tests.transport.conftest import TIMEOUT, TlsFiles, client_context, connect, make_settings

pytestmark = pytest.mark.timeout(60)


def server_config(folder: Path, tls_files: TlsFiles, port: int, *, migrated: bool) -> Path:
    database_url = f"sqlite:///{folder / 'chat.db'}"
    if migrated:
        engine = make_engine(database_url)
        upgrade(engine)
        engine.dispose()
    return write_config(
        folder,
        server={"host": HOST, "port": port},
        tls={"cert_file": tls_files.cert, "key_file": tls_files.key, "ca_file": tls_files.ca},
        database={"url": database_url},
        logging={"level": "WARNING"},
    )


def test_a_configuration_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[server]\nport = 0\n", encoding="utf-8")
    assert app.main(["--config", str(config)]) == 2
    assert "[server] port" in capsys.readouterr().err


def test_an_unmigrated_database_exits_2(
    tmp_path: Path, tls_files: TlsFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    config = server_config(tmp_path, tls_files, free_port(), migrated=False)
    assert app.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "there is no database at" in err
    assert "chatsecure-admin migrate" in err
    assert not (tmp_path / "chatsecure.db").exists()  # refusing did not create it


def test_a_missing_certificate_exits_2(
    tmp_path: Path, tls_files: TlsFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = TlsFiles(tls_files.ca, tmp_path / "none.pem", tmp_path / "none.key")
    config = server_config(tmp_path, absent, free_port(), migrated=True)
    assert app.main(["--config", str(config)]) == 2
    assert "chatsecure-admin gencert" in capsys.readouterr().err


def test_banner_shows_no_database_password(tls_files: TlsFiles) -> None:
    out = io.StringIO()
    settings = make_settings(tls_files, database={"url": "postgresql://chat:s3cret@db/chat"})
    app.print_banner(out, settings, ["[::1]:5443"], "AB:CD")
    text = out.getvalue()
    assert "s3cret" not in text
    assert "[::1]:5443" in text
    assert "TLS 1.2, TLS 1.3" in text
    assert "AB:CD" in text


def test_serves_and_stops_on_sigterm(tmp_path: Path, tls_files: TlsFiles) -> None:
    port = free_port()
    config = server_config(tmp_path, tls_files, port, migrated=True)
    server = spawn(
        [sys.executable, "-m", "chatsecure.server.app", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        banner = [server.stdout.readline() for _ in range(5)]
        assert banner[0].strip() == f"chatsecure-server {version()} listening on 127.0.0.1:{port}"
        assert certificate_fingerprint(tls_files.cert) in "".join(banner)
        client = connect(("127.0.0.1", port), client_context(tls_files), read_hello=False)
        assert b'"type":"hello"' in client.read_line()
        began = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert b'"reason":"shutdown"' in client.read_until_eof()
        client.close()
        assert server.wait(TIMEOUT) == 0
        assert time.monotonic() - began < 5.0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(TIMEOUT)
        if server.stdout is not None:
            server.stdout.close()
        if server.stderr is not None:
            server.stderr.close()
