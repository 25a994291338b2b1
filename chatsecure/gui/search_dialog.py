"""The search window (Ctrl+F): words to find, in this conversation or all, and the results.

It stays open while results are opened, so several can be looked at in turn. What it
asks goes to the session through ``on_search``; what comes back is shown by ``show``.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from chatsecure.client.search import SearchHit
from chatsecure.gui.dialogs import Dialog
from chatsecure.gui.look import local_time

# (words, this conversation only, older than this id) -> an error to show, or None
OnSearch = Callable[[str, bool, int | None], str | None]


class SearchDialog(Dialog):
    def __init__(self, master: tk.Misc, where: str | None, on_search: OnSearch,
                 on_open: Callable[[SearchHit], None]) -> None:  # fmt: skip
        super().__init__(master, "search")
        self.resizable(True, True)
        self._on_search = on_search
        self._on_open = on_open
        self.hits: list[SearchHit] = []
        self._asked: tuple[str, bool] = ("", False)
        top = ttk.Frame(self.body)
        top.pack(fill="x")
        ttk.Label(top, text="Find:").pack(side="left")
        self.entry = ttk.Entry(top, width=40)
        self.entry.pack(side="left", fill="x", expand=True, padx=6)
        self.search_button = ttk.Button(top, text="Search", command=self.submit)
        self.search_button.pack(side="left")
        scope = ttk.Frame(self.body)
        scope.pack(fill="x", pady=(6, 0))
        self.scope = tk.StringVar(self, "this" if where else "all")
        self.this_radio = ttk.Radiobutton(
            scope, text=f"This conversation ({where})" if where else "This conversation",
            value="this", variable=self.scope, state="normal" if where else "disabled",
        )  # fmt: skip
        self.this_radio.pack(side="left")
        self.all_radio = ttk.Radiobutton(scope, text="All conversations", value="all",
                                         variable=self.scope)  # fmt: skip
        self.all_radio.pack(side="left", padx=(12, 0))
        columns = ("where", "author", "time", "text")
        self.results = ttk.Treeview(self.body, columns=columns, show="headings", height=12,
                                    selectmode="browse")  # fmt: skip
        for column, title, width in (("where", "Where", 110), ("author", "From", 100),
                                     ("time", "When", 120), ("text", "Message", 380)):  # fmt: skip
            self.results.heading(column, text=title, anchor="w")
            self.results.column(column, width=width, stretch=column == "text")
        self.results.pack(fill="both", expand=True, pady=(8, 0))
        bottom = ttk.Frame(self.body)
        bottom.pack(fill="x", pady=(6, 0))
        self.more_button = ttk.Button(bottom, text="More results", command=self.more,
                                      state="disabled")  # fmt: skip
        self.more_button.pack(side="right")
        self.status_label = ttk.Label(bottom, text="Words match whole words; \"quote\" phrases.",
                                      foreground="#555555")  # fmt: skip
        self.status_label.pack(side="left")
        self.entry.bind("<Return>", lambda _e: self.submit())
        self.results.bind("<Double-1>", lambda _e: self.open_selected())
        self.results.bind("<Return>", lambda _e: self.open_selected())
        self.entry.focus_set()

    def submit(self) -> None:
        self._asked = (self.entry.get(), self.scope.get() == "this")
        self._ask(None)

    def more(self) -> None:
        if self.hits:
            self._ask(self.hits[-1].id)

    def _ask(self, before: int | None) -> None:
        q, this_only = self._asked
        error = self._on_search(q, this_only, before)
        if error:
            self.show_error(error)
            return
        self.more_button.configure(state="disabled")
        self.status_label.configure(text="Searching…", foreground="#555555")

    def show(self, hits: tuple[SearchHit, ...], more: bool, *, appended: bool) -> None:
        if not appended:
            self.results.delete(*self.results.get_children())
            self.hits = []
        for hit in hits:
            self.results.insert(
                "",
                "end",
                iid=str(len(self.hits)),
                values=(hit.where, hit.author, local_time(hit.ts), hit.snippet),
            )
            self.hits.append(hit)  # fmt: skip
        count = len(self.hits)
        text = f"{count} result{'s' if count != 1 else ''}" + (" (more older)" if more else "")
        self.status_label.configure(text=text if count else "No messages match.",
                                    foreground="#333333")  # fmt: skip
        self.more_button.configure(state="normal" if more else "disabled")
        if not appended and count:
            self.results.selection_set("0")
            self.results.focus("0")

    def show_error(self, message: str) -> None:
        self.status_label.configure(text=message, foreground="#b00020")

    def open_selected(self) -> None:
        selection = self.results.selection()
        if selection:
            self._on_open(self.hits[int(selection[0])])
