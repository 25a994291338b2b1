"""Trust on first use: a pin holds for the server, however its address is spelled.

The client (``ChatSession`` and its network thread, as the GUI runs them) connects to a
live server without a CA file. With ``127.0.0.1`` pinned, ``127.1`` or ``2130706433`` is
the same server: the pinned certificate logs in without a prompt, and any other
certificate is refused as CHANGED. Were each spelling its own pin, an impersonator
would only need the victim to type another spelling to get a harmless-looking
first-use prompt instead of the warning.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from chatsecure.client.events import Failure, LoggedIn, LoginFailed, TrustNeeded
from chatsecure.client.network import Credentials, ServerAddress
from chatsecure.client.session import ChatSession
from chatsecure.client.trust import TrustStore, fingerprint
from tests.client.helpers import Driver
from tests.e2e.conftest import ServerProcess
from tests.serverproc import HOST, password_of

# Spellings of 127.0.0.1 that the resolver accepts, and so does the client.
SPELLINGS = ["127.1", "127.0.1", "0x7f.0.0.1", "2130706433", "127.000.000.001"]
IMPOSTOR = ":".join(["AB"] * 32)


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def server_fingerprint(server: ServerProcess) -> str:
    return fingerprint(ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((HOST, server.port))))


def connect(server: ServerProcess, host: str, user: str, trust: TrustStore) -> Driver:
    address = ServerAddress(host, server.port, None)  # no CA: trust on first use
    session = ChatSession(address, Credentials(user, password_of(user)), trust)
    session.start()
    return Driver(session)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_pin_of_an_address_holds_for_every_spelling_of_it(
    server: ServerProcess, tmp_path: Path, spelling: str
) -> None:
    user = server.new_user()
    trusted = TrustStore(tmp_path / "trusted.json")
    trusted.remember(HOST, server.port, server_fingerprint(server))
    driver = connect(server, spelling, user, trusted)
    driver.wait(LoggedIn)  # no prompt: it is the pinned server
    driver.session.close()

    # Pinned to another certificate, the server's own now looks like an impostor's.
    other = TrustStore(tmp_path / "other.json")
    other.remember(HOST, server.port, IMPOSTOR)
    driver = connect(server, spelling, user, other)
    refused = driver.wait((LoginFailed, TrustNeeded))
    driver.session.close()
    assert isinstance(refused, LoginFailed), refused
    assert refused.kind is Failure.CERT_CHANGED
    assert other.pinned(HOST, server.port) == IMPOSTOR  # nothing was re-pinned


def test_pin_files_written_before_keep_working(server: ServerProcess, tmp_path: Path) -> None:
    """Old files keep their keys; a key in another spelling still names its server."""
    user = server.new_user()
    path = tmp_path / "known_servers.json"
    for key in (f"{HOST}:{server.port}", f"127.1:{server.port}"):
        path.write_text(json.dumps({key: server_fingerprint(server)}), encoding="utf-8")
        driver = connect(server, HOST, user, TrustStore(path))
        driver.wait(LoggedIn)
        driver.session.close()
    # Two spellings pinned to different certificates: neither is trusted.
    path.write_text(
        json.dumps(
            {f"{HOST}:{server.port}": server_fingerprint(server), f"127.1:{server.port}": IMPOSTOR}
        ),
        encoding="utf-8",
    )
    driver = connect(server, HOST, user, TrustStore(path))
    refused = driver.wait((LoginFailed, TrustNeeded))
    driver.session.close()
    assert isinstance(refused, LoginFailed), refused
    assert refused.kind is Failure.CERT_CHANGED
