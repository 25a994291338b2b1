"""A real chatsecure server in a subprocess, for the client and GUI tests.

Each server gets a scratch folder with its own config, SQLite database (migrated in
code) and accounts made with the store; certificates come from a throwaway test CA.
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chatsecure.passwords import hash_password
from chatsecure.storage.db import make_engine, upgrade
from chatsecure.storage.store import Store

HOST = "127.0.0.1"
START_TIMEOUT = 20.0


def password_of(user: str) -> str:
    return f"pw-{user.lower()}-Secret!"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certs(folder: Path, label: str = "server") -> Certs:
    """A fresh CA and a server certificate for 127.0.0.1 and localhost signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{label} test CA"))
        .issuer_name(_name(f"{label} test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certs(folder / f"{label}-ca.pem", folder / f"{label}.pem", folder / f"{label}.key")
    certs.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    certs.key.chmod(0o600)
    return certs


class ServerProcess:
    """One server: start, stop, kill, restart (optionally with other certificates)."""

    def __init__(self, directory: Path, certs: Certs, **auth: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.certs = certs
        self.port = free_port()
        self.auth = {"bcrypt_rounds": 10, "max_failures": 3, **auth}
        self.db_url = f"sqlite:///{directory / 'chat.db'}"
        self.log_path = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.write_config()
        self.store = Store(make_engine(self.db_url))
        upgrade(self.store.engine)

    def write_config(self) -> None:
        auth = "\n".join(f"{k} = {v}" for k, v in self.auth.items())
        (self.directory / "config.toml").write_text(
            f'[server]\nhost = "{HOST}"\nport = {self.port}\n\n'
            f'[tls]\ncert_file = "{self.certs.cert}"\nkey_file = "{self.certs.key}"\n'
            f'ca_file = "{self.certs.ca}"\n\n'
            f'[database]\nurl = "{self.db_url}"\n\n[auth]\n{auth}\n'
            'max_failures_per_address = 100000\n\n[rooms]\ndefault = ["general"]\n\n'
            "[limits]\nmessages_per_second = 1000\nmessage_burst = 1000\n",
            encoding="utf-8",
        )

    def add_user(self, name: str, rooms: tuple[str, ...] = ("general",)) -> str:
        self.store.create_account(name, hash_password(password_of(name), 10), rooms)
        return password_of(name)

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatsecure.server.app", "--config", "config.toml"],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while f"listening on {HOST}:{self.port}" not in self._output(offset):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start:\n{self._output(offset)}")
            time.sleep(0.02)

    def _output(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self, certs: Certs | None = None) -> None:
        self.stop()
        if certs is not None:
            self.certs = certs
            self.write_config()
        self.start()

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self.store.engine.dispose()
