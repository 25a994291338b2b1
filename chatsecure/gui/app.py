"""``chatsecure-client``: the login form, then the chat window, in one Tk root.

The network runs on its own thread; this module polls the session's queue with
``after()`` (at most ``POLL_BATCH`` events a tick, so a flood never freezes the window)
and cancels the poll when the window closes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tkinter as tk
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from tkinter import ttk

from chatsecure.client.events import LoggedIn, LoggedOut, LoginFailed, SessionEnded, TrustNeeded
from chatsecure.client.network import Credentials, ServerAddress
from chatsecure.client.profile import load_last_login
from chatsecure.client.session import ChatSession
from chatsecure.client.trust import TrustStore
from chatsecure.config import CONFIG_ENV, ConfigError, Settings, default_settings, load_settings
from chatsecure.gui.dialogs import TrustDialog
from chatsecure.gui.login import LoginFields, LoginView
from chatsecure.gui.main_window import MainWindow
from chatsecure.package import version_text

POLL_MS = 30
POLL_BATCH = 100
EXIT_USAGE = 2


@dataclass(frozen=True, slots=True)
class StartOptions:
    """Where to connect, as given on the command line, in the config or remembered."""

    host: str
    port: int
    username: str
    ca_file: Path | None


class App:
    """The one Tk root and whichever view is showing: the login form or the chat window."""

    def __init__(self, root: tk.Tk, options: StartOptions, trust: TrustStore | None = None) -> None:
        self.root = root
        self.options = options
        self.trust = trust or TrustStore()
        self.session: ChatSession | None = None
        self.login: LoginView | None = None
        self.main: MainWindow | None = None
        self.trust_dialog: TrustDialog | None = None
        self._poll_id: str | None = None
        root.geometry("1040x660")
        root.minsize(640, 400)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        style = ttk.Style(root)
        style.theme_use("clam")
        root.configure(background=style.lookup("TFrame", "background"))
        self.show_login()
        self._poll_id = root.after(POLL_MS, self._poll)

    # -- views --------------------------------------------------------------------------

    def show_login(self, message: str | None = None) -> None:
        if self.main is not None:
            self.main.destroy()
            self.main = None
        if self.login is not None:
            self.login.destroy()
        self.root.title("chatsecure — log in")
        self.login = LoginView(
            self.root,
            host=self.options.host,
            port=self.options.port,
            username=self.options.username,
            on_submit=self._connect,
            message=message,
        )
        self.login.pack(expand=True)

    def _connect(self, fields: LoginFields) -> None:
        self.options = StartOptions(fields.host, fields.port, fields.username, self.options.ca_file)
        address = ServerAddress(fields.host, fields.port, self.options.ca_file)
        self.session = ChatSession(
            address, Credentials(fields.username, fields.password), self.trust
        )
        self.session.start()

    def _show_main(self, event: LoggedIn) -> None:
        assert self.session is not None
        if self.login is not None:
            self.login.destroy()
            self.login = None
        self.root.title(f"chatsecure — {event.user}@{self.session.address.host}")
        self.main = MainWindow(self.root, self.session, self.quit)
        self.main.frame.pack(fill="both", expand=True)

    def _ask_trust(self, event: TrustNeeded) -> None:
        def answered(trusted: bool) -> None:
            self.trust_dialog = None
            if trusted and self.session is not None:
                self.session.trust_and_retry(event.fingerprint)
            elif self.login is not None:
                self.login.show_error("Not connected: the server's certificate was not trusted.")

        self.trust_dialog = TrustDialog(
            self.root, event.host, event.port, event.fingerprint, answered
        )

    # -- the poll -----------------------------------------------------------------------

    def _poll(self) -> None:
        self._poll_id = None
        session = self.session
        if session is not None:
            for update in session.poll(POLL_BATCH):
                self._dispatch(update)
        self._poll_id = self.root.after(POLL_MS, self._poll)

    def _dispatch(self, update: object) -> None:
        if isinstance(update, LoginFailed):
            self.session = None
            if self.login is not None:
                self.login.show_error(update.message)
        elif isinstance(update, TrustNeeded):
            self._ask_trust(update)
        elif isinstance(update, LoggedIn):
            if self.main is None:
                self._show_main(update)
            else:
                self.main.apply_reconnected()
        elif isinstance(update, LoggedOut | SessionEnded):
            self.session = None
            self.show_login(update.message if isinstance(update, SessionEnded) else "Logged out.")
        elif self.main is not None:
            self.main.apply(update)  # type: ignore[arg-type]

    def quit(self) -> None:
        if self._poll_id is not None:
            self.root.after_cancel(self._poll_id)
            self._poll_id = None
        if self.session is not None:
            self.session.close()
        self.root.destroy()


def start_options(args: argparse.Namespace, settings: Settings | None) -> StartOptions:
    """Arguments first, then the last successful login, then the config, then defaults."""
    last = load_last_login()
    base = settings or default_settings()
    host = args.host or (last.host if last else None) or base.server.host
    port = args.port or (last.port if last and last.host == host else None) or base.server.port
    username = last.username if last and last.host == host else ""
    ca_file = args.ca
    if ca_file is None and settings is not None and settings.tls.ca_file.is_file():
        ca_file = settings.tls.ca_file
    return StartOptions(host, port, username, ca_file)


def _settings(explicit: str | None) -> Settings | None:
    """The config if one was named or exists where the server would look; else None."""
    if not (explicit or os.environ.get(CONFIG_ENV) or Path("config.toml").is_file()):
        return None
    return load_settings(explicit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chatsecure-client", description="The chatsecure chat client."
    )
    parser.add_argument("--host", help="server host name or address")
    parser.add_argument("--port", type=int, help="server port")
    parser.add_argument(
        "--ca",
        type=Path,
        metavar="FILE",
        help="CA file to verify the server (else: trust on first use)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="a chatsecure config.toml to read [server] and [tls] from"
    )
    parser.add_argument("--version", action="version", version=version_text("chatsecure-client"))
    args = parser.parse_args(argv)
    try:
        settings = _settings(args.config)
    except ConfigError as exc:
        print(f"chatsecure-client: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.ca is not None and not args.ca.is_file():
        print(f"chatsecure-client: CA file {args.ca} not found", file=sys.stderr)
        return EXIT_USAGE
    try:
        root = tk.Tk(className="chatsecure")
    except tk.TclError as exc:
        print(f"chatsecure-client: cannot open a window: {exc}", file=sys.stderr)
        return EXIT_USAGE
    App(root, start_options(args, settings))
    root.mainloop()
    return 0
