"""The server console window: start and stop the hosted server, watch and act on sessions.

Core threads never touch a widget: the observer only puts what arrived on a
``queue.Queue`` (so do the worker threads that stop the server or disable an account),
and the Tk thread drains at most ``POLL_BATCH`` items per ``after()`` tick into the
``ConsoleModel``, then redraws what changed. The poll is cancelled when the window closes.
"""

from __future__ import annotations

import queue
import ssl
import sys
import threading
import time
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from tkinter import messagebox, ttk

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from chatsecure.config import Settings
from chatsecure.server.console.model import (
    LOG_LIMIT,
    Change,
    ConsoleModel,
    LogEntry,
    LogFilter,
    LogKind,
    SessionRow,
)
from chatsecure.server.core import events
from chatsecure.server.host import ServerHost
from chatsecure.server.transport import format_address, tls_versions

TITLE = "chatsecure — server console"
POLL_MS = 50
POLL_BATCH = 200
ALL_KINDS = "all kinds"
NOT_LOGGED_IN = "(logging in)"
ALERT_KINDS = (LogKind.LOGIN_FAILED, LogKind.ERROR)

Confirm = Callable[[str, str, str], bool]  # title, question, detail


@dataclass(frozen=True, slots=True)
class _Arrived:
    """A service event and the wall-clock time the observer got it."""

    at: float
    event: events.ServerEvent


@dataclass(frozen=True, slots=True)
class _Stopped:
    at: float


@dataclass(frozen=True, slots=True)
class _ActionFailed:
    at: float
    description: str


_Item = _Arrived | _Stopped | _ActionFailed


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _date_time(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


class ServerConsole:
    """The window over a ``ServerHost``; the server starts as soon as it opens."""

    def __init__(
        self,
        root: tk.Tk,
        settings: Settings,
        engine: Engine,
        context: ssl.SSLContext,
        fingerprint: str,
        *,
        confirm: Confirm | None = None,
    ) -> None:
        self.root = root
        self.model = ConsoleModel()
        self.stopping = False
        self.closing = False
        self.closed = False
        self._queue: queue.Queue[_Item] = queue.Queue()
        self.host = ServerHost(settings, engine, context, self._observe)
        self._confirm = confirm or self._ask
        self._poll_id: str | None = None
        self._log_filter = LogFilter()
        self._shown_log_rows = 0

        root.title(TITLE)
        root.geometry("1000x700")
        root.minsize(760, 480)
        root.protocol("WM_DELETE_WINDOW", self.close)
        style = ttk.Style(root)
        style.theme_use("clam")
        root.configure(background=style.lookup("TFrame", "background"))
        frame = ttk.Frame(root, padding=10)
        frame.pack(fill="both", expand=True)
        frame.columnconfigure(0, weight=1)
        self._build_server_box(frame, settings, fingerprint).grid(row=0, column=0, sticky="ew")
        self._build_counters(frame).grid(row=1, column=0, sticky="ew", pady=(8, 0))
        panes = ttk.PanedWindow(frame, orient="vertical")
        panes.grid(row=2, column=0, sticky="nsew", pady=(8, 0))
        frame.rowconfigure(2, weight=1)
        panes.add(self._build_sessions(panes), weight=1)
        panes.add(self._build_log(panes), weight=2)

        self.start()
        self._poll_id = root.after(POLL_MS, self._poll)

    # -- layout ---------------------------------------------------------------------------

    def _build_server_box(
        self, parent: tk.Misc, settings: Settings, fingerprint: str
    ) -> ttk.LabelFrame:
        box = ttk.LabelFrame(parent, text="Server", padding=8)
        box.columnconfigure(1, weight=1)
        buttons = ttk.Frame(box)
        buttons.grid(row=0, column=0, columnspan=2, sticky="w", pady=(0, 6))
        self.start_button = ttk.Button(buttons, text="Start", command=self.start)
        self.start_button.pack(side="left")
        self.stop_button = ttk.Button(buttons, text="Stop", command=self.stop)
        self.stop_button.pack(side="left", padx=(6, 12))
        self.status_label = ttk.Label(buttons, text="", font="TkHeadingFont")
        self.status_label.pack(side="left")

        self.address_label = self._field(box, 1, "Listening on", "")
        profile = settings.tls.profile
        self.tls_label = self._field(box, 2, "TLS", f"{tls_versions(profile)} ({profile} profile)")
        self.fingerprint_label = self._field(box, 3, "Certificate SHA-256", fingerprint)
        database = make_url(settings.database.url).render_as_string(hide_password=True)
        self.database_label = self._field(box, 4, "Database", database)
        return box

    @staticmethod
    def _field(box: ttk.LabelFrame, row: int, name: str, value: str) -> ttk.Entry:
        """A read-only entry, so an admin can copy the fingerprint or address."""
        ttk.Label(box, text=f"{name}:").grid(row=row, column=0, sticky="w", padx=(0, 8))
        entry = ttk.Entry(box)
        entry.grid(row=row, column=1, sticky="ew", pady=1)
        ServerConsole._set_entry(entry, value)
        return entry

    @staticmethod
    def _set_entry(entry: ttk.Entry, value: str) -> None:
        entry.configure(state="normal")
        entry.delete(0, "end")
        entry.insert(0, value)
        entry.configure(state="readonly")

    def _build_counters(self, parent: tk.Misc) -> ttk.Frame:
        counters = ttk.Frame(parent)
        self.online_label = ttk.Label(counters)
        self.online_label.pack(side="left")
        self.rate_label = ttk.Label(counters)
        self.rate_label.pack(side="left", padx=24)
        self.stored_label = ttk.Label(counters)
        self.stored_label.pack(side="left")
        return counters

    def _build_sessions(self, parent: tk.Misc) -> ttk.LabelFrame:
        box = ttk.LabelFrame(parent, text="Connected sessions", padding=8)
        box.columnconfigure(0, weight=1)
        box.rowconfigure(0, weight=1)
        columns = ("user", "address", "since", "rooms")
        self.sessions = ttk.Treeview(
            box, columns=columns, show="headings", selectmode="browse", height=6
        )
        for column, heading, width in (
            ("user", "User", 140),
            ("address", "Address", 140),
            ("since", "Connected since", 160),
            ("rooms", "Rooms", 300),
        ):
            self.sessions.heading(column, text=heading, anchor="w")
            self.sessions.column(column, width=width, stretch=column == "rooms")
        self.sessions.grid(row=0, column=0, sticky="nsew")
        scroll = ttk.Scrollbar(box, orient="vertical", command=self.sessions.yview)
        scroll.grid(row=0, column=1, sticky="ns")
        self.sessions.configure(yscrollcommand=scroll.set)
        self.sessions.bind("<<TreeviewSelect>>", lambda _e: self._update_buttons())
        actions = ttk.Frame(box)
        actions.grid(row=1, column=0, columnspan=2, sticky="w", pady=(6, 0))
        self.disconnect_button = ttk.Button(
            actions, text="Disconnect", command=self.disconnect_selected
        )
        self.disconnect_button.pack(side="left")
        self.disable_button = ttk.Button(
            actions, text="Disable account…", command=self.disable_selected
        )
        self.disable_button.pack(side="left", padx=6)
        return box

    def _build_log(self, parent: tk.Misc) -> ttk.LabelFrame:
        box = ttk.LabelFrame(parent, text="Event log", padding=8)
        box.columnconfigure(0, weight=1)
        box.rowconfigure(1, weight=1)
        bar = ttk.Frame(box)
        bar.grid(row=0, column=0, columnspan=2, sticky="ew", pady=(0, 6))
        ttk.Label(bar, text="Show:").pack(side="left")
        self.kind_var = tk.StringVar(box, ALL_KINDS)
        self.kind_filter = ttk.Combobox(
            bar,
            textvariable=self.kind_var,
            values=[ALL_KINDS, *LogKind],
            state="readonly",
            width=14,
        )
        self.kind_filter.pack(side="left", padx=(4, 12))
        ttk.Label(bar, text="Containing:").pack(side="left")
        self.text_var = tk.StringVar(box, "")
        self.text_filter = ttk.Entry(bar, textvariable=self.text_var, width=24)
        self.text_filter.pack(side="left", padx=(4, 12))
        self.show_text_var = tk.BooleanVar(box, False)
        self.show_text_check = ttk.Checkbutton(
            bar, text="Show message text", variable=self.show_text_var, command=self._refilter
        )
        self.show_text_check.pack(side="left")
        for variable in (self.kind_var, self.text_var):
            variable.trace_add("write", lambda *_: self._refilter())

        self.log_view = ttk.Treeview(
            box, columns=("time", "kind", "detail"), show="headings", selectmode="none"
        )
        for column, heading, width in (
            ("time", "Time", 80),
            ("kind", "Kind", 100),
            ("detail", "Detail", 600),
        ):
            self.log_view.heading(column, text=heading, anchor="w")
            self.log_view.column(column, width=width, stretch=column == "detail")
        self.log_view.tag_configure("alert", foreground="#b00020")
        self.log_view.grid(row=1, column=0, sticky="nsew")
        scroll = ttk.Scrollbar(box, orient="vertical", command=self.log_view.yview)
        scroll.grid(row=1, column=1, sticky="ns")
        self.log_view.configure(yscrollcommand=scroll.set)
        return box

    # -- server control -------------------------------------------------------------------

    def start(self) -> None:
        if self.host.running or self.stopping:
            return
        try:
            addresses = self.host.start()
        except OSError as exc:
            settings = self.host.settings.server
            where = format_address(settings.host, settings.port)
            self._show(self.model.fault(time.time(), f"cannot listen on {where}: {exc}"))
        else:
            stored = self.host.store.message_count()
            self._set_entry(self.address_label, ", ".join(addresses))
            self._show(self.model.server_started(time.time(), ", ".join(addresses), stored))
        self._update_buttons()

    def stop(self) -> None:
        """Stop off the Tk thread (it waits for clients to take their ``bye``)."""
        if not self.host.running or self.stopping:
            return
        self.stopping = True
        self._update_buttons()

        def stop_server() -> None:
            try:
                self.host.stop()
            finally:
                self._queue.put(_Stopped(time.time()))

        threading.Thread(target=stop_server, name="console-stop", daemon=True).start()

    def close(self) -> None:
        """Closing the window stops the server gracefully first, then destroys it."""
        self.closing = True
        if self.host.running or self.stopping:
            self.stop()
            return
        if self._poll_id is not None:
            self.root.after_cancel(self._poll_id)
            self._poll_id = None
        self.closed = True
        self.root.destroy()

    # -- admin actions on the selected session --------------------------------------------

    def selected_row(self) -> SessionRow | None:
        selection = self.sessions.selection()
        return self.model.sessions.get(int(selection[0])) if selection else None

    def disconnect_selected(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.host.disconnect(row.session)  # the row goes when Disconnected arrives

    def disable_selected(self) -> None:
        row = self.selected_row()
        if row is None or row.user is None:
            return
        user = row.user
        detail = (
            "All its sessions end now, and it cannot log in until it is enabled again "
            "with chatsecure-admin enable."
        )
        if not self._confirm("Disable account", f"Disable the account {user!r}?", detail):
            return

        def disable() -> None:
            try:
                self.host.disable_account(user)
            except Exception as exc:
                self._queue.put(_ActionFailed(time.time(), f"could not disable {user}: {exc}"))

        threading.Thread(target=disable, name="console-disable", daemon=True).start()

    def _ask(self, title: str, question: str, detail: str) -> bool:
        return messagebox.askyesno(title, question, detail=detail, icon="warning", parent=self.root)

    # -- events in ------------------------------------------------------------------------

    def _observe(self, event: events.ServerEvent) -> None:
        """Runs on the service's threads: hand on, nothing else."""
        self._queue.put(_Arrived(time.time(), event))

    def _poll(self) -> None:
        self._poll_id = None
        for _ in range(POLL_BATCH):
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            self._take(item)
            if self.closed:
                return
        self._update_counters()
        self._poll_id = self.root.after(POLL_MS, self._poll)

    def _take(self, item: _Item) -> None:
        if isinstance(item, _Arrived):
            self._show(self.model.apply(item.event, item.at))
        elif isinstance(item, _ActionFailed):
            self._show(self.model.fault(item.at, item.description))
        else:
            self.stopping = False
            self._show(self.model.server_stopped(item.at))
            self._set_entry(self.address_label, "(not listening)")
            self._update_buttons()
            if self.closing:
                self.close()

    # -- drawing --------------------------------------------------------------------------

    def _show(self, change: Change) -> None:
        for row in change.rows:
            values = (
                row.user or NOT_LOGGED_IN,
                row.address,
                _date_time(row.since),
                ", ".join(row.rooms),
            )
            iid = str(row.session)
            if self.sessions.exists(iid):
                self.sessions.item(iid, values=values)
            else:
                self.sessions.insert("", "end", iid=iid, values=values)
        for session in change.removed:
            if self.sessions.exists(str(session)):
                self.sessions.delete(str(session))
        if change.entry is not None and self._log_filter.matches(
            change.entry, self.show_text_var.get()
        ):
            self._append_log(change.entry)
        if change.rows or change.removed:
            self._update_buttons()

    def _append_log(self, entry: LogEntry) -> None:
        at_bottom = self.log_view.yview()[1] >= 1.0
        tags = ("alert",) if entry.kind in ALERT_KINDS else ()
        item = self.log_view.insert(
            "",
            "end",
            values=(_clock(entry.at), entry.kind, entry.detail(self.show_text_var.get())),
            tags=tags,
        )
        self._shown_log_rows += 1
        if self._shown_log_rows > LOG_LIMIT:
            self.log_view.delete(self.log_view.get_children()[0])
            self._shown_log_rows -= 1
        if at_bottom:  # follow new entries unless the admin scrolled back to read
            self.log_view.see(item)

    def _refilter(self) -> None:
        chosen = self.kind_var.get()
        kind = None if chosen == ALL_KINDS else LogKind(chosen)
        self._log_filter = LogFilter(kind, self.text_var.get())
        self.log_view.delete(*self.log_view.get_children())
        self._shown_log_rows = 0
        for entry in self.model.visible_log(self._log_filter, self.show_text_var.get()):
            self._append_log(entry)

    def log_lines(self) -> list[str]:
        """The log as shown, one ``time kind detail`` line per row (for tests and copying)."""
        return [
            " ".join(str(v) for v in self.log_view.item(item, "values"))
            for item in self.log_view.get_children()
        ]

    def _update_buttons(self) -> None:
        running = self.host.running and not self.stopping
        self.start_button.configure(state="disabled" if running or self.stopping else "normal")
        self.stop_button.configure(state="normal" if running else "disabled")
        status = "Stopping…" if self.stopping else "Running" if running else "Stopped"
        self.status_label.configure(text=status, foreground="#2e7d32" if running else "#b00020")
        row = self.selected_row()
        self.disconnect_button.configure(state="normal" if running and row else "disabled")
        can_disable = running and row is not None and row.user is not None
        self.disable_button.configure(state="normal" if can_disable else "disabled")

    def _update_counters(self) -> None:
        now = time.time()
        for label, text in (
            (self.online_label, f"Online users: {self.model.online_users()}"),
            (self.rate_label, f"Messages per minute: {self.model.messages_per_minute(now)}"),
            (self.stored_label, f"Total stored: {self.model.total_stored}"),
        ):
            if label.cget("text") != text:
                label.configure(text=text)


def run_console(
    settings: Settings,
    engine: Engine,
    context: ssl.SSLContext,
    fingerprint: str,
    stop: threading.Event,
) -> bool:
    """``chatsecure-server --gui``: the window until it is closed or ``stop`` is set.

    False if no window could be opened (said on stderr). ``stop`` is set by the caller's
    signal handlers, installed before this runs, so a signal that comes once the server
    listens still stops it gracefully.
    """
    try:
        root = tk.Tk()
    except tk.TclError as exc:
        print(f"chatsecure-server: cannot open the console window: {exc}", file=sys.stderr)
        return False
    console = ServerConsole(root, settings, engine, context, fingerprint)

    def watch_stop() -> None:
        # Signal handlers run between Python bytecodes; this tick makes sure some run.
        if stop.is_set():
            console.close()
        elif not console.closed:
            root.after(200, watch_stop)

    root.after(200, watch_stop)
    root.mainloop()
    return True
