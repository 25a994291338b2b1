"""Small windows: trust a certificate, join or create a room, moderate it, change the
password, settings, export progress, notices and confirmations.

None of them waits in a nested event loop (no ``wait_window``): each calls back when a
button is pressed, so the main loop, the network poll and the tests keep running.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from chatsecure.client.state import Member
from chatsecure.client.validation import new_password_error, room_error, topic_error
from chatsecure.names import normalize_room


class Dialog(tk.Toplevel):
    """A transient window with an error line; Escape cancels."""

    def __init__(self, master: tk.Misc, title: str) -> None:
        super().__init__(master)
        self.title(f"chatsecure — {title}")
        self.transient(master.winfo_toplevel())
        self.resizable(False, False)
        self.body = ttk.Frame(self, padding=16)
        self.body.pack(fill="both", expand=True)
        self.error_label = ttk.Label(self.body, foreground="#b00020", wraplength=460)
        self.bind("<Escape>", lambda _e: self.destroy())

    def buttons(self, row: int, ok_text: str, on_ok: Callable[[], None]) -> ttk.Button:
        frame = ttk.Frame(self.body)
        frame.grid(row=row, column=0, columnspan=2, sticky="e", pady=(12, 0))
        self.cancel_button = ttk.Button(frame, text="Cancel", command=self.destroy)
        self.cancel_button.pack(side="right")
        self.ok_button = ttk.Button(frame, text=ok_text, command=on_ok)
        self.ok_button.pack(side="right", padx=(0, 6))
        self.error_label.grid(row=row + 1, column=0, columnspan=2, sticky="w", pady=(8, 0))
        self.bind("<Return>", lambda _e: on_ok())
        return self.ok_button

    def show_error(self, message: str) -> None:
        self.error_label.configure(text=message, foreground="#b00020")


class TrustDialog(Dialog):
    """First contact with a server whose certificate no CA vouches for."""

    def __init__(
        self,
        master: tk.Misc,
        host: str,
        port: int,
        fingerprint: str,
        on_answer: Callable[[bool], None],
    ) -> None:
        super().__init__(master, "trust this server?")
        self._on_answer = on_answer
        text = (
            f"You have not connected to {host}:{port} before, and no CA file was given "
            "to verify its certificate.\n\nCompare this SHA-256 fingerprint with the one "
            "the administrator gave you (chatsecure-server prints it when it starts):"
        )
        ttk.Label(self.body, text=text, wraplength=460, justify="left").grid(
            row=0, column=0, columnspan=2, sticky="w"
        )
        shown = ttk.Entry(self.body, width=64, font=("TkFixedFont", 9))
        shown.insert(0, fingerprint)
        shown.configure(state="readonly")
        shown.grid(row=1, column=0, columnspan=2, sticky="we", pady=8)
        ttk.Label(
            self.body,
            text="Trust it only if it matches. It will be remembered for this server.",
            wraplength=460,
        ).grid(row=2, column=0, columnspan=2, sticky="w")
        self.buttons(3, "Trust and connect", lambda: self._answer(True))
        self.cancel_button.configure(text="Do not trust", command=lambda: self._answer(False))
        self.protocol("WM_DELETE_WINDOW", lambda: self._answer(False))
        self.bind("<Escape>", lambda _e: self._answer(False))
        self.cancel_button.focus_set()

    def _answer(self, trusted: bool) -> None:
        self.destroy()
        self._on_answer(trusted)


class JoinDialog(Dialog):
    def __init__(self, master: tk.Misc, on_join: Callable[[str], None]) -> None:
        super().__init__(master, "join a room")
        self._on_join = on_join
        ttk.Label(self.body, text="Room name:").grid(row=0, column=0, sticky="w")
        self.entry = ttk.Entry(self.body, width=32)
        self.entry.grid(row=0, column=1, sticky="we", padx=(6, 0))
        ttk.Label(
            self.body, text="A room that does not exist yet is created.", foreground="#555555"
        ).grid(row=1, column=0, columnspan=2, sticky="w", pady=(6, 0))
        self.buttons(2, "Join", self.submit)
        self.entry.focus_set()

    def submit(self) -> None:
        name = self.entry.get().strip()
        error = room_error(name)
        if error:
            self.show_error(error)
            return
        self.destroy()
        self._on_join(normalize_room(name) or name)


class PasswordDialog(Dialog):
    def __init__(
        self, master: tk.Misc, username: str, on_change: Callable[[str, str], None]
    ) -> None:
        super().__init__(master, "change password")
        self._username = username
        self._on_change = on_change
        self.old_entry = self._row(0, "Current password:")
        self.new_entry = self._row(1, "New password:")
        self.again_entry = self._row(2, "New password again:")
        self.buttons(3, "Change", self.submit)
        self.old_entry.focus_set()

    def _row(self, row: int, label: str) -> ttk.Entry:
        ttk.Label(self.body, text=label).grid(row=row, column=0, sticky="w", pady=3)
        entry = ttk.Entry(self.body, width=28, show="•")
        entry.grid(row=row, column=1, sticky="we", padx=(6, 0), pady=3)
        return entry

    def submit(self) -> None:
        old, new, again = self.old_entry.get(), self.new_entry.get(), self.again_entry.get()
        error = new_password_error(self._username, old, new, again)
        if error:
            self.show_error(error)
            return
        self.ok_button.configure(state="disabled")
        self.error_label.configure(text="Changing…", foreground="#555555")
        self._on_change(old, new)

    def result(self, ok: bool, message: str) -> None:
        if ok:
            self.destroy()
        else:
            self.ok_button.configure(state="normal")
            self.show_error(message)


class ExportDialog(Dialog):
    """Progress while the history is fetched page by page; Cancel stops it."""

    def __init__(self, master: tk.Misc, what: str, on_cancel: Callable[[], None]) -> None:
        super().__init__(master, "export")
        self._on_cancel = on_cancel
        self._running = True
        ttk.Label(self.body, text=f"Exporting {what}…").grid(row=0, column=0, sticky="w")
        self.progress = ttk.Progressbar(self.body, mode="indeterminate", length=360)
        self.progress.grid(row=1, column=0, sticky="we", pady=8)
        self.progress.start(15)
        self.status_label = ttk.Label(self.body, text="Fetching history…", wraplength=360)
        self.status_label.grid(row=2, column=0, sticky="w")
        self.button = ttk.Button(self.body, text="Cancel", command=self.cancel)
        self.button.grid(row=3, column=0, sticky="e", pady=(12, 0))
        self.protocol("WM_DELETE_WINDOW", self.cancel)
        self.bind("<Escape>", lambda _e: self.cancel())

    def cancel(self) -> None:
        if self._running:
            self._on_cancel()
        self.destroy()

    def fetched(self, count: int) -> None:
        self.status_label.configure(text=f"{count} messages fetched…")

    def finished(self, message: str) -> None:
        self._running = False
        self.progress.stop()
        self.progress.configure(mode="determinate", value=100)
        self.status_label.configure(text=message)
        self.button.configure(text="Close")


class CreateRoomDialog(Dialog):
    """A new room, public or private, with an optional topic."""

    def __init__(self, master: tk.Misc, on_create: Callable[[str, bool, str], str | None]) -> None:
        super().__init__(master, "create a room")
        self._on_create = on_create
        ttk.Label(self.body, text="Room name:").grid(row=0, column=0, sticky="w", pady=3)
        self.name_entry = ttk.Entry(self.body, width=32)
        self.name_entry.grid(row=0, column=1, sticky="we", padx=(6, 0), pady=3)
        ttk.Label(self.body, text="Topic:").grid(row=1, column=0, sticky="w", pady=3)
        self.topic_entry = ttk.Entry(self.body, width=32)
        self.topic_entry.grid(row=1, column=1, sticky="we", padx=(6, 0), pady=3)
        self.private = tk.BooleanVar(self, value=False)
        self.private_check = ttk.Checkbutton(
            self.body, text="Private (only people you invite can find and join it)",
            variable=self.private,
        )  # fmt: skip
        self.private_check.grid(row=2, column=0, columnspan=2, sticky="w", pady=(6, 0))
        self.buttons(3, "Create", self.submit)
        self.name_entry.focus_set()

    def submit(self) -> None:
        name = self.name_entry.get().strip()
        topic = self.topic_entry.get().strip()
        error = room_error(name) or topic_error(topic)
        if not error:
            error = self._on_create(normalize_room(name) or name, self.private.get(), topic)
        if error:
            self.show_error(error)
            return
        self.destroy()


class AskDialog(Dialog):
    """One text field (and optionally a reason): Invite…, Set topic…, Kick…, Ban…."""

    def __init__(
        self,
        master: tk.Misc,
        title: str,
        label: str,
        ok_text: str,
        on_ok: Callable[[str, str], str | None],
        *,
        initial: str = "",
        choices: list[str] | None = None,
        with_reason: bool = False,
    ) -> None:
        super().__init__(master, title)
        self._on_ok = on_ok
        ttk.Label(self.body, text=label).grid(row=0, column=0, sticky="w", pady=3)
        self.entry = ttk.Combobox(self.body, width=36, values=choices or [])
        self.entry.insert(0, initial)
        self.entry.grid(row=0, column=1, sticky="we", padx=(6, 0), pady=3)
        self.reason_entry: ttk.Entry | None = None
        if with_reason:
            ttk.Label(self.body, text="Reason (optional):").grid(row=1, column=0, sticky="w")
            self.reason_entry = ttk.Entry(self.body, width=36)
            self.reason_entry.grid(row=1, column=1, sticky="we", padx=(6, 0), pady=3)
        self.buttons(2, ok_text, self.submit)
        self.entry.focus_set()

    def submit(self) -> None:
        reason = self.reason_entry.get() if self.reason_entry is not None else ""
        error = self._on_ok(self.entry.get().strip(), reason)
        if error:
            self.show_error(error)
            return
        self.destroy()


class MembersDialog(Dialog):
    """Who is in the room and their roles; an owner can make moderators."""

    def __init__(
        self,
        master: tk.Misc,
        room: str,
        members: list[Member],
        on_role: Callable[[str, str], str | None] | None,
    ) -> None:
        super().__init__(master, f"members of #{room}")
        self._on_role = on_role
        self.tree = ttk.Treeview(self.body, columns=("role",), height=12, selectmode="browse")
        self.tree.heading("#0", text="Member")
        self.tree.heading("role", text="Role")
        self.tree.column("#0", width=200)
        self.tree.column("role", width=110)
        self.tree.grid(row=0, column=0, columnspan=2, sticky="nsew")
        for member in members:
            state = "online" if member.online else "offline"
            self.tree.insert(
                "", "end", iid=member.name, text=f"{member.name} ({state})",
                values=(member.role or "member",),
            )  # fmt: skip
        buttons = ttk.Frame(self.body)
        buttons.grid(row=1, column=0, columnspan=2, sticky="e", pady=(12, 0))
        self.close_button = ttk.Button(buttons, text="Close", command=self.destroy)
        self.close_button.pack(side="right")
        if on_role is not None:
            self.member_button = ttk.Button(
                buttons, text="Make member", command=lambda: self._role("member")
            )
            self.member_button.pack(side="right", padx=(0, 6))
            self.moderator_button = ttk.Button(
                buttons, text="Make moderator", command=lambda: self._role("moderator")
            )
            self.moderator_button.pack(side="right", padx=(0, 6))
        self.error_label.grid(row=2, column=0, columnspan=2, sticky="w", pady=(8, 0))

    def _role(self, role: str) -> None:
        selection = self.tree.selection()
        if not selection or self._on_role is None:
            self.show_error("Pick a member first.")
            return
        error = self._on_role(selection[0], role)
        if error:
            self.show_error(error)
        else:
            self.tree.set(selection[0], "role", role)


class ConfirmDialog(Dialog):
    """A yes-or-no question that calls back only on yes."""

    def __init__(
        self, master: tk.Misc, title: str, text: str, ok_text: str, on_ok: Callable[[], None]
    ) -> None:
        super().__init__(master, title)
        self._on_ok = on_ok
        ttk.Label(self.body, text=text, wraplength=420, justify="left").grid(
            row=0, column=0, columnspan=2, sticky="w"
        )
        self.buttons(1, ok_text, self.confirm)
        self.cancel_button.focus_set()

    def confirm(self) -> None:
        self.destroy()
        self._on_ok()


class InfoDialog(Dialog):
    """A notice the person should not miss: removed from a room, banned."""

    def __init__(self, master: tk.Misc, title: str, text: str) -> None:
        super().__init__(master, title)
        self.text_label = ttk.Label(self.body, text=text, wraplength=420, justify="left")
        self.text_label.grid(row=0, column=0, sticky="w")
        self.ok_button = ttk.Button(self.body, text="OK", command=self.destroy)
        self.ok_button.grid(row=1, column=0, sticky="e", pady=(12, 0))
        self.bind("<Return>", lambda _e: self.destroy())
        self.ok_button.focus_set()


class InviteDialog(Dialog):
    """An invitation to a room: join it now, or not."""

    def __init__(
        self, master: tk.Misc, room: str, by: str, topic: str, on_join: Callable[[str], None]
    ) -> None:
        super().__init__(master, "invitation")
        self._room = room
        self._on_join = on_join
        text = f"{by} invited you to #{room}." + (f"\nTopic: {topic}" if topic else "")
        self.text_label = ttk.Label(self.body, text=text, wraplength=420, justify="left")
        self.text_label.grid(row=0, column=0, columnspan=2, sticky="w")
        self.buttons(1, "Join", self.join)
        self.cancel_button.configure(text="Not now")

    def join(self) -> None:
        self.destroy()
        self._on_join(self._room)


class SettingsDialog(Dialog):
    def __init__(
        self, master: tk.Misc, notify_mentions: bool, on_save: Callable[[bool], None]
    ) -> None:
        super().__init__(master, "settings")
        self._on_save = on_save
        self.notify = tk.BooleanVar(self, value=notify_mentions)
        self.notify_check = ttk.Checkbutton(
            self.body,
            text="Notify me when someone mentions @me while the window is in the background",
            variable=self.notify,
        )
        self.notify_check.grid(row=0, column=0, columnspan=2, sticky="w")
        self.buttons(1, "Save", self.submit)

    def submit(self) -> None:
        self.destroy()
        self._on_save(self.notify.get())
