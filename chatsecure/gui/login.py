"""The login form: host, port, username, password; Enter connects."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import ttk

from chatsecure.client.validation import (
    host_error,
    parse_port,
    password_error,
    port_error,
    username_error,
)

PAD = 6


@dataclass(frozen=True, slots=True)
class LoginFields:
    host: str
    port: int
    username: str
    password: str


class LoginView(ttk.Frame):
    """The form; ``on_submit`` gets checked fields, errors are shown with ``show_error``."""

    def __init__(
        self,
        master: tk.Misc,
        *,
        host: str,
        port: int,
        username: str,
        on_submit: Callable[[LoginFields], None],
        message: str | None = None,
    ) -> None:
        super().__init__(master, padding=24)
        self._on_submit = on_submit
        ttk.Label(self, text="Log in to chatsecure", font=("TkDefaultFont", 14, "bold")).grid(
            row=0, column=0, columnspan=2, pady=(0, 12), sticky="w"
        )
        self.host_entry = self._field(1, "Server host:", host)
        self.port_entry = self._field(2, "Port:", str(port), width=8)
        self.username_entry = self._field(3, "Username:", username)
        self.password_entry = self._field(4, "Password:", "", show="•")
        self.connect_button = ttk.Button(self, text="Connect", command=self.submit)
        self.connect_button.grid(row=5, column=1, sticky="e", pady=(12, 0))
        self.error_label = ttk.Label(self, foreground="#b00020", wraplength=420, justify="left")
        self.error_label.grid(row=6, column=0, columnspan=2, sticky="w", pady=(12, 0))
        self.columnconfigure(1, weight=1)
        if message:
            self.show_error(message)
        for entry in (self.host_entry, self.port_entry, self.username_entry, self.password_entry):
            entry.bind("<Return>", lambda _e: self.submit())
            entry.bind("<KP_Enter>", lambda _e: self.submit())
        first_empty = self.password_entry if username else self.username_entry
        first_empty.focus_set()

    def _field(self, row: int, label: str, value: str, **options: object) -> ttk.Entry:
        ttk.Label(self, text=label).grid(row=row, column=0, sticky="w", pady=PAD // 2)
        entry = ttk.Entry(self, width=options.pop("width", 32), **options)  # type: ignore[arg-type]
        entry.insert(0, value)
        entry.grid(row=row, column=1, sticky="w", padx=(PAD, 0), pady=PAD // 2)
        return entry

    def submit(self) -> None:
        if str(self.connect_button["state"]) == "disabled":
            return
        host = self.host_entry.get().strip()
        port = self.port_entry.get()
        username = self.username_entry.get().strip()
        password = self.password_entry.get()
        checks = (
            (host_error(host), self.host_entry),
            (port_error(port), self.port_entry),
            (username_error(username), self.username_entry),
            (password_error(password), self.password_entry),
        )
        for error, entry in checks:
            if error:
                self.show_error(error)
                entry.focus_set()
                return
        self.set_busy(True)
        self.error_label.configure(text="Connecting…", foreground="#555555")
        self._on_submit(LoginFields(host, parse_port(port) or 0, username, password))

    def set_busy(self, busy: bool) -> None:
        self.connect_button.configure(state="disabled" if busy else "normal")

    def show_error(self, message: str) -> None:
        self.set_busy(False)
        self.error_label.configure(text=message, foreground="#b00020")
