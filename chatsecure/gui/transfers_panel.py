"""Files going up or coming down: one row each, with a progress bar and a Cancel button.

A finished row stays for a few seconds with what happened, then goes.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from chatsecure.client.transfers import human_size

LINGER_MS = 4000


class TransferRow(ttk.Frame):
    def __init__(self, master: tk.Misc, name: str, *, upload: bool,
                 on_cancel: Callable[[], None]) -> None:  # fmt: skip
        super().__init__(master, padding=(0, 2))
        self.name = name
        self.upload = upload
        self.finished = False
        self.label = ttk.Label(self, anchor="w")
        self.label.pack(side="left", fill="x", expand=True)
        self.cancel_button = ttk.Button(self, text="Cancel", command=on_cancel)
        self.cancel_button.pack(side="right")
        self.bar = ttk.Progressbar(self, mode="determinate", length=220)
        self.bar.pack(side="right", padx=6)
        self.progress(0, 0)

    def progress(self, done: int, total: int) -> None:
        verb = "Sending" if self.upload else "Fetching"
        self.bar.configure(maximum=max(total, 1), value=done)
        amount = f"{human_size(done)} of {human_size(total)}" if total else "reading…"
        self.label.configure(text=f"{verb} {self.name}: {amount}")

    def ended(self, text: str, *, ok: bool) -> None:
        self.finished = True
        if ok:
            self.bar.configure(value=float(self.bar.cget("maximum")))
        self.label.configure(text=text, foreground="#333333" if ok else "#b00020")
        self.cancel_button.configure(state="disabled")
        self.after(LINGER_MS, self.destroy)
