"""The host with an IRC listener: when the IRC port cannot be bound, nothing is left running."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from chatsecure.config import default_settings
from chatsecure.server.host import ServerHost
from chatsecure.server.transport.tls import server_context
from chatsecure.storage.db import make_engine, upgrade
from tests.serverproc import HOST, free_port


def test_a_taken_irc_port_is_named_and_the_main_port_is_let_go(
    tmp_path: Path, tls_files: dict[str, Path]
) -> None:
    base = default_settings()
    main_port = free_port()
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        irc_port = taken.getsockname()[1]
        settings = dataclasses.replace(
            base,
            server=dataclasses.replace(base.server, host=HOST, port=main_port),
            irc=dataclasses.replace(base.irc, enabled=True, host=HOST, port=irc_port),
            tls=dataclasses.replace(
                base.tls,
                cert_file=tls_files["cert_file"],
                key_file=tls_files["key_file"],
                ca_file=tls_files["ca_file"],
            ),
            database=dataclasses.replace(base.database, url=f"sqlite:///{tmp_path / 'c.db'}"),
        )
        engine = make_engine(settings.database.url)
        upgrade(engine)
        host = ServerHost(settings, engine, server_context(settings.tls))
        with pytest.raises(OSError, match=f"IRC port {HOST}:{irc_port}"):
            host.start()
    assert not host.running
    with socket.socket() as again:
        again.bind((HOST, main_port))  # the main listener closed its socket
    engine.dispose()
