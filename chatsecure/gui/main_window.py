"""The chat window: conversations, the chat pane, who is here, and the message entry.

It draws what ``ChatSession.poll`` reports and turns clicks and keys into session calls;
it holds no protocol logic of its own.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import filedialog, ttk
from typing import TYPE_CHECKING

from chatsecure.client.notify import Notifier, shorten
from chatsecure.client.profile import ClientSettings, load_client_settings, save_client_settings
from chatsecure.client.search import SearchHit
from chatsecure.client.session import (
    Alert,
    ChatSession,
    CurrentChanged,
    ExportFailed,
    ExportFinished,
    ExportProgress,
    ImageReady,
    InviteReceived,
    LinesAdded,
    MembersChanged,
    Mentioned,
    Notice,
    PasswordResult,
    Redraw,
    Reveal,
    RoomChanged,
    SearchFailed,
    SearchFound,
    SidebarChanged,
    Status,
    TransferEnded,
    TransferProgress,
    Update,
)
from chatsecure.client.state import ChatState, Conversation, ConvKey, Kind, Line
from chatsecure.client.transfers import human_size
from chatsecure.export import FORMATS
from chatsecure.gui.dialogs import (
    AskDialog,
    ConfirmDialog,
    CreateRoomDialog,
    ExportDialog,
    InfoDialog,
    InviteDialog,
    JoinDialog,
    MembersDialog,
    PasswordDialog,
    SettingsDialog,
)
from chatsecure.gui.look import (
    LOCK_PICTURE,
    local_time,
    name_colour,
    picture_size,
    thumbnail_factor,
    xbm,
)
from chatsecure.gui.search_dialog import SearchDialog
from chatsecure.gui.transfers_panel import TransferRow

if TYPE_CHECKING:
    from chatsecure.protocol import FileInfo

DELETED_TEXT = "(message deleted)"
EDITED_MARK = " (edited)"
DIVIDER_TEXT = "── new messages ──"
ENTRY_HINT = "Enter sends, Shift+Enter: new line, Up: edit your last; /join, /leave, /msg."
EDIT_HINT = "Editing your message: Enter saves, Escape cancels."

EXPORT_TYPES = [("Text", "*.txt"), ("JSON lines", "*.jsonl"), ("CSV", "*.csv")]
HIGHLIGHT_MS = 2500  # how long an opened search result stays highlighted


def _iid(key: ConvKey) -> str:
    return f"{key.kind.value}:{key.key}"


def _key(iid: str) -> ConvKey:
    kind, _, key = iid.partition(":")
    return ConvKey(Kind(kind), key)


def export_format(path: Path) -> str:
    """The format a file name asks for; plain text unless it ends in .jsonl or .csv."""
    suffix = path.suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "txt"


class MainWindow:
    """Everything after login, in ``frame``; ``on_quit`` closes the application."""

    def __init__(
        self,
        master: tk.Tk,
        session: ChatSession,
        on_quit: Callable[[], None],
        *,
        notifier: Notifier | None = None,
    ) -> None:
        assert session.state is not None
        self.frame = ttk.Frame(master)
        self.root = master
        self.session = session
        self.state: ChatState = session.state
        self._on_quit = on_quit
        self._export_dialog: ExportDialog | None = None
        self.password_dialog: PasswordDialog | None = None
        self.dialog: tk.Toplevel | None = None  # the last one opened, for tests to drive
        self._colour_tags: set[str] = set()
        self.notifier = notifier or Notifier()
        self.settings: ClientSettings = load_client_settings(session.profile_dir)
        self.editing: int | None = None  # the id of the message being edited in the entry
        self.context_menu: tk.Menu | None = None
        self.search_dialog: SearchDialog | None = None
        self.transfer_rows: dict[int, TransferRow] = {}
        self.save_buttons: dict[str, ttk.Button] = {}  # by file id, for what is drawn now
        self._thumbnails: dict[Path, tk.PhotoImage] = {}  # Tk drops an image nobody holds
        self._highlight: str | None = None
        self._base_title = ""
        self._focus_check: str | None = None
        self.lock_image = tk.BitmapImage(master=master, data=xbm(LOCK_PICTURE, "lock"),
                                         foreground="#8a6d00")  # fmt: skip
        self._build_menu()
        self._build_layout()
        self._bind_keys()
        self.refresh_sidebar()
        self.show_current()
        self.entry.focus_set()

    # -- building -----------------------------------------------------------------------

    def _build_menu(self) -> None:
        self.menu = tk.Menu(self.root, tearoff=False)
        file_menu = tk.Menu(self.menu, tearoff=False)
        file_menu.add_command(
            label="Export conversation…", accelerator="Ctrl+E", command=self.export_conversation
        )
        file_menu.add_separator()
        file_menu.add_command(label="Log out", accelerator="Ctrl+L", command=self.logout)
        file_menu.add_command(label="Quit", accelerator="Ctrl+Q", command=self._on_quit)
        chat_menu = tk.Menu(self.menu, tearoff=False)
        chat_menu.add_command(label="Join room…", accelerator="Ctrl+J", command=self.ask_join)
        chat_menu.add_command(
            label="Leave / close conversation", accelerator="Ctrl+W", command=self.leave
        )
        chat_menu.add_command(
            label="Private chat with selected user",
            accelerator="Ctrl+P",
            command=self.chat_with_selected,
        )
        chat_menu.add_command(label="Search…", accelerator="Ctrl+F", command=self.ask_search)
        chat_menu.add_command(label="Send file…", command=self.ask_send_file)
        chat_menu.add_separator()
        chat_menu.add_command(label="Load older", accelerator="Ctrl+Up", command=self.load_older)
        chat_menu.add_command(
            label="Clear chat (this view only)", accelerator="Ctrl+K", command=self.clear
        )
        chat_menu.add_separator()
        chat_menu.add_command(
            label="Next conversation", accelerator="Ctrl+Tab", command=lambda: self.cycle(1)
        )
        chat_menu.add_command(
            label="Previous conversation",
            accelerator="Ctrl+Shift+Tab",
            command=lambda: self.cycle(-1),
        )
        account_menu = tk.Menu(self.menu, tearoff=False)
        account_menu.add_command(label="Settings…", command=self.ask_settings)
        account_menu.add_command(label="Change password…", command=self.ask_password)
        account_menu.add_command(label="Log out", accelerator="Ctrl+L", command=self.logout)
        self.menu.add_cascade(label="File", menu=file_menu, underline=0)
        self.menu.add_cascade(label="Conversation", menu=chat_menu, underline=0)
        self.room_menu = self._room_menu(self.menu)
        self.menu.add_cascade(label="Room", menu=self.room_menu, underline=0)
        self.menu.add_cascade(label="Account", menu=account_menu, underline=0)
        self.root.configure(menu=self.menu)

    def _room_menu(self, parent: tk.Misc) -> tk.Menu:
        """The room's actions, in the menu bar and on a right-click in the list."""
        menu = tk.Menu(parent, tearoff=False, postcommand=lambda: self._enable_room_menu(menu))
        menu.add_command(label="Create room…", command=self.ask_create_room)
        menu.add_separator()
        menu.add_command(label="Members…", command=self.show_members)
        menu.add_command(label="Invite…", command=self.ask_invite)
        menu.add_command(label="Set topic…", command=self.ask_topic)
        menu.add_separator()
        menu.add_command(label="Kick…", command=lambda: self.ask_kick(ban=False))
        menu.add_command(label="Ban…", command=lambda: self.ask_kick(ban=True))
        menu.add_command(label="Unban…", command=self.ask_unban)
        menu.add_separator()
        menu.add_command(label="Leave room", command=self.leave)
        self._enable_room_menu(menu)
        return menu

    def _enable_room_menu(self, menu: tk.Menu) -> None:
        """Only what this user's role allows is enabled."""
        conv = self._current()
        in_room = conv is not None and conv.is_room
        moderates = conv is not None and conv.can_moderate
        for label, allowed in (
            ("Members…", in_room),
            ("Invite…", moderates),
            ("Set topic…", moderates),
            ("Kick…", moderates),
            ("Ban…", moderates),
            ("Unban…", moderates),
            ("Leave room", in_room),
        ):
            menu.entryconfigure(label, state="normal" if allowed else "disabled")

    def _build_layout(self) -> None:
        self.status = ttk.Label(self.frame, anchor="w", padding=(8, 2))
        self.status.pack(fill="x", side="bottom")
        panes = ttk.PanedWindow(self.frame, orient="horizontal")
        panes.pack(fill="both", expand=True)
        panes.add(self._build_sidebar(panes), weight=0)
        panes.add(self._build_chat(panes), weight=1)
        panes.add(self._build_people(panes), weight=0)

    def _build_sidebar(self, panes: ttk.PanedWindow) -> ttk.Frame:
        left = ttk.Frame(panes, padding=(6, 6, 0, 6))
        ttk.Label(left, text="Conversations").pack(anchor="w")
        self.sidebar = ttk.Treeview(left, show="tree", selectmode="browse", height=12)
        self.sidebar.column("#0", width=170)
        self.sidebar.tag_configure("unread", font=("TkDefaultFont", 10, "bold"))
        self.sidebar.pack(fill="both", expand=True, pady=(4, 4))
        self.sidebar.tag_configure("mention", foreground="#b00020")
        self.sidebar.bind("<<TreeviewSelect>>", self._sidebar_selected)
        self.sidebar.bind("<Button-3>", self._sidebar_context)
        self.join_button = ttk.Button(left, text="Join room…", command=self.ask_join)
        self.join_button.pack(fill="x")
        return left

    def _build_chat(self, panes: ttk.PanedWindow) -> ttk.Frame:
        middle = ttk.Frame(panes, padding=6)
        top = ttk.Frame(middle)
        top.pack(fill="x")
        self.title_label = ttk.Label(top, font=("TkDefaultFont", 12, "bold"))
        self.title_label.pack(side="left")
        self.older_button = ttk.Button(top, text="Load older", command=self.load_older)
        self.older_button.pack(side="right")
        self.topic_label = ttk.Label(top, foreground="#555555")
        self.topic_label.pack(side="left", padx=(12, 0), fill="x", expand=True)
        # Pack manages space in packing order: the entry and hint go in before the chat
        # pane, so shrinking the window shrinks the chat, never the place to type.
        self.hint_label = ttk.Label(middle, text=ENTRY_HINT, foreground="#777777")
        self.hint_label.pack(side="bottom", anchor="w", pady=(2, 0))
        entry_frame = ttk.Frame(middle)
        entry_frame.pack(side="bottom", fill="x", pady=(6, 0))
        self.transfers = ttk.Frame(middle)
        self.transfers.pack(side="bottom", fill="x")
        self.send_button = ttk.Button(entry_frame, text="Send", command=self.send)
        self.send_button.pack(side="right", padx=(6, 0), fill="y")
        self.entry = tk.Text(entry_frame, height=3, width=20, wrap="word",
                             font=("TkDefaultFont", 10), undo=True, relief="solid",
                             borderwidth=1)  # fmt: skip
        self.entry.pack(side="left", fill="x", expand=True)
        chat_frame = ttk.Frame(middle)
        chat_frame.pack(fill="both", expand=True, pady=(4, 0))
        self.chat = tk.Text(
            chat_frame, wrap="word", state="disabled", relief="flat", padx=8, pady=6,
            font=("TkDefaultFont", 10), spacing1=2, highlightthickness=0,
        )  # fmt: skip
        scroll = ttk.Scrollbar(chat_frame, command=self.chat.yview)
        self.chat.configure(yscrollcommand=lambda first, last: self._scrolled(scroll, first, last))
        scroll.pack(side="right", fill="y")
        self.chat.pack(side="left", fill="both", expand=True)
        # Continuation lines of a multi-line message start under its text, not the time.
        self.chat.tag_configure("line", lmargin2=64)
        self.chat.tag_configure("continued", lmargin1=64, lmargin2=64)
        self.chat.tag_configure("time", foreground="#888888")
        self.chat.tag_configure("notice", foreground="#888888", font=("TkDefaultFont", 9, "italic"))
        self.chat.tag_configure("own", background="#eef4ff")
        self.chat.tag_configure("mention", background="#fff3c4")
        self.chat.tag_configure("edited", foreground="#888888", font=("TkDefaultFont", 9))
        self.chat.tag_configure(
            "deleted", foreground="#999999", font=("TkDefaultFont", 10, "italic")
        )
        self.chat.tag_configure("divider", foreground="#b00020", justify="center")
        self.chat.tag_configure("file", foreground="#1f4e8c")
        self.chat.tag_configure("found", background="#ffe08a")
        self.chat.bind("<Button-3>", self._chat_context)
        self.new_messages = ttk.Button(
            middle, text="New messages ↓", command=self.scroll_to_end, style="Toolbutton"
        )
        return middle

    def _build_people(self, panes: ttk.PanedWindow) -> ttk.Frame:
        right = ttk.Frame(panes, padding=(0, 6, 6, 6))
        ttk.Label(right, text="People here").pack(anchor="w")
        self.users = ttk.Treeview(right, show="tree", selectmode="browse", height=12)
        self.users.column("#0", width=150)
        self.users.tag_configure("offline", foreground="#999999")
        self.users.pack(fill="both", expand=True, pady=(4, 0))
        self.users.bind("<Double-1>", lambda _e: self.chat_with_selected())
        self.users.bind("<Return>", lambda _e: self.chat_with_selected())
        ttk.Label(right, text="Double-click to chat privately", foreground="#777777").pack(
            anchor="w"
        )
        return right

    def _bind_keys(self) -> None:
        self.entry.bind("<Return>", self._enter)
        self.entry.bind("<KP_Enter>", self._enter)
        self.entry.bind("<Shift-Return>", self._newline)
        self.entry.bind("<Up>", self._up)
        self.entry.bind("<Escape>", self._escape)
        self.root.bind("<FocusIn>", self._focus_in)
        self.root.bind("<FocusOut>", self._focus_out)
        keys: dict[str, Callable[[], object]] = {
            "<Control-e>": self.export_conversation,
            "<Control-f>": self.ask_search,
            "<Control-l>": self.logout,
            "<Control-q>": self._on_quit,
            "<Control-j>": self.ask_join,
            "<Control-w>": self.leave,
            "<Control-p>": self.chat_with_selected,
            "<Control-Up>": self.load_older,
            "<Control-k>": self.clear,
            "<Control-Tab>": lambda: self.cycle(1),
            "<Control-ISO_Left_Tab>": lambda: self.cycle(-1),
        }
        for sequence, action in keys.items():
            self.root.bind(sequence, self._shortcut(action))
            # The Text class binds some of these itself (Ctrl+Tab moves the focus, Ctrl+K
            # deletes a line, Ctrl+E goes to its end) and runs before the window's own
            # binding; bound on the entry too, the shortcut alone runs and stops there.
            self.entry.bind(sequence, self._shortcut(action))

    @staticmethod
    def _shortcut(action: Callable[[], object]) -> Callable[[tk.Event[tk.Misc]], str]:
        def run(_event: tk.Event[tk.Misc]) -> str:
            action()
            return "break"

        return run

    def destroy(self) -> None:
        """Take down the window's shortcuts and menu with it (the root stays, for login)."""
        if self._focus_check is not None:
            self.root.after_cancel(self._focus_check)
        if self._highlight is not None:
            self.root.after_cancel(self._highlight)
        for sequence in self.root.bind():
            self.root.unbind(sequence)
        self.root.configure(menu=tk.Menu(self.root))
        self.menu.destroy()
        self.frame.destroy()

    # -- updates from the session -----------------------------------------------------

    def apply(self, update: Update) -> None:
        if isinstance(update, LinesAdded):
            if update.added.key == self.state.current:
                self._append(update.added.lines)
                self._refresh_older_button()
        elif isinstance(update, Redraw):
            if update.key == self.state.current:
                self.show_current(keep_top=update.older > 0)
        elif isinstance(update, SidebarChanged):
            self.refresh_sidebar()
        elif isinstance(update, CurrentChanged):
            self.cancel_edit()
            self.show_current()
            self.refresh_sidebar()
        elif isinstance(update, MembersChanged):
            if update.key == self.state.current:
                self.refresh_users()
        elif isinstance(update, Status):
            self.set_status(update.text or "Connected.", error=update.text is not None)
        elif isinstance(update, PasswordResult):
            self.set_status(update.message, error=not update.ok)
            if self.password_dialog is not None and self.password_dialog.winfo_exists():
                self.password_dialog.result(update.ok, update.message)
        elif isinstance(update, ExportProgress | ExportFinished | ExportFailed):
            self._export_update(update)
        elif isinstance(update, SearchFound | SearchFailed | Reveal):
            self._search_update(update)
        elif isinstance(update, TransferProgress | TransferEnded | ImageReady):
            self._transfer_update(update)
        else:
            self._apply_additions(update)

    def _apply_additions(self, update: Update) -> None:
        if isinstance(update, RoomChanged):
            if update.key == self.state.current:
                self._show_header()
        elif isinstance(update, Notice):
            self.set_status(update.text, error=update.error)
        elif isinstance(update, Alert):
            self.dialog = InfoDialog(self.root, update.title, update.text)
            self.set_status(update.text.split("\n")[0], error=True)
        elif isinstance(update, InviteReceived):
            self.dialog = InviteDialog(self.root, update.room, update.by, update.topic, self._join)
            self.set_status(f"{update.by} invited you to #{update.room}.")
        elif isinstance(update, Mentioned):
            self._mentioned(update)

    # -- focus and notifications ------------------------------------------------------

    @property
    def focused(self) -> bool:
        return self.state.focused

    def _focus_in(self, _event: object) -> None:
        if not self.focused:
            self.set_focused(True)

    def _focus_out(self, _event: object) -> None:
        # Focus moving between our own widgets also leaves one; check once it has settled.
        if self._focus_check is None:
            self._focus_check = self.root.after(50, self._check_focus)

    def _check_focus(self) -> None:
        self._focus_check = None
        try:
            inside = self.root.focus_get() is not None
        except (KeyError, tk.TclError):  # a focused widget Tk cannot name (a popdown)
            inside = True
        if inside != self.focused:
            self.set_focused(inside)

    def set_focused(self, focused: bool) -> None:
        """The window came to the front or went to the back."""
        if focused and self._base_title:
            self.root.title(self._base_title)
            self._base_title = ""
        for update in self.session.set_focused(focused):
            self.apply(update)

    def _mentioned(self, update: Mentioned) -> None:
        if self.focused or not self.settings.notify_mentions:
            return
        title = f"{update.sender} mentioned you in {update.where}"
        if self.notifier.notify(title, update.text):
            return
        self.root.bell()
        if not self._base_title:
            self._base_title = self.root.title()
        self.root.title(f"(@) {shorten(title, 60)} — {self._base_title}")

    def apply_reconnected(self) -> None:
        self.set_status(f"Reconnected as {self.state.me}.")

    def set_status(self, text: str, *, error: bool = False) -> None:
        self.status.configure(text=text, foreground="#b00020" if error else "#333333")

    # -- drawing ------------------------------------------------------------------------

    def refresh_sidebar(self) -> None:
        wanted = self.state.ordered()
        existing = set(self.sidebar.get_children())
        for iid in existing - {_iid(c.key) for c in wanted}:
            self.sidebar.delete(iid)
        for index, conv in enumerate(wanted):
            iid = _iid(conv.key)
            label = self.sidebar_label(conv)
            tags = ("unread",) if conv.unread else ()
            if conv.mentions:
                tags = (*tags, "mention")
            image = self.lock_image if conv.private else ""
            if iid in existing:
                self.sidebar.item(iid, text=label, tags=tags, image=image)
                self.sidebar.move(iid, "", index)
            else:
                self.sidebar.insert("", index, iid=iid, text=label, tags=tags, image=image)
        current = self.state.current
        if current is not None and self.sidebar.selection() != (_iid(current),):
            self.sidebar.selection_set(_iid(current))
            self.sidebar.see(_iid(current))

    @staticmethod
    def sidebar_label(conv: Conversation) -> str:
        mark = "#" if conv.is_room else "@"
        counts = str(conv.unread) if conv.unread else ""
        if conv.mentions:
            counts += f", @{conv.mentions}"
        return f"{mark} {conv.title}" + (f"  ({counts})" if counts else "")

    def show_current(self, *, keep_top: bool = False) -> None:
        conv = self._current()
        self.save_buttons.clear()  # deleting the text destroys the buttons in it
        self.chat.configure(state="normal")
        self.chat.delete("1.0", "end")
        self.chat.configure(state="disabled")
        self.new_messages.place_forget()
        if conv is None:
            self.title_label.configure(text="No conversation — join a room (Ctrl+J)", image="")
            self.refresh_users()
            return
        self._show_header()
        self._insert(conv.lines)
        if keep_top:
            self.chat.yview_moveto(0.0)
        else:
            self.chat.see("end")
        self._refresh_older_button()
        self.refresh_users()

    def _show_header(self) -> None:
        """The room's name, a lock if it is private, and its topic."""
        conv = self._current()
        if conv is None:
            return
        if conv.is_room:
            where = f"{conv.title} (private)" if conv.private else f"# {conv.title}"
        else:
            where = f"Private chat with {conv.title}"
        image = self.lock_image if conv.is_room and conv.private else ""
        self.title_label.configure(text=where, image=image, compound="left")
        self.topic_label.configure(text=conv.topic if conv.is_room else "")
        self._enable_room_menu(self.room_menu)

    def _refresh_older_button(self) -> None:
        """A page of history may arrive after the conversation is drawn, and say there is more."""
        conv = self._current()
        has_older = conv is not None and conv.has_older
        self.older_button.configure(state="normal" if has_older else "disabled")

    def _append(self, lines: list[Line]) -> None:
        at_end = self.chat.yview()[1] >= 0.999
        self._insert(lines)
        if at_end:
            self.chat.see("end")
        else:
            self.new_messages.place(relx=0.5, rely=1.0, y=-110, anchor="s")

    def _insert(self, lines: list[Line]) -> None:
        self.chat.configure(state="normal")
        conv = self._current()
        divider = conv.divider_id if conv is not None else None
        for line in lines:
            if divider is not None and line.id == divider:
                self.chat.insert("end", f"{DIVIDER_TEXT}\n", ("divider",))
            self.chat.insert("end", f"{local_time(line.ts)}  ", ("time", "line"))
            if line.sender is None:
                self.chat.insert("end", f"— {line.text}\n", ("notice", "line"))
                continue
            tag = self._colour_tag(line.sender)
            marks: tuple[str, ...] = (f"msg{line.id}",)
            if line.own:
                marks += ("own",)
            if line.mention:
                marks += ("mention",)
            name = f"{line.sender} (you)" if line.own else line.sender
            self.chat.insert("end", name, (tag, "line", *marks))
            if line.deleted:
                self.chat.insert("end", f": {DELETED_TEXT}\n", ("line", "deleted", *marks))
                continue
            if line.file is not None:
                self._insert_file(line.file, marks)
                continue
            pieces = line.text.split("\n")
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                text = (": " if index == 0 else "") + piece
                end = "" if last and line.edited else "\n"
                self.chat.insert("end", text + end, ("line" if index == 0 else "continued", *marks))
            if line.edited:
                self.chat.insert("end", f"{EDITED_MARK}\n", ("edited", *marks))
        self.chat.configure(state="disabled")

    def _colour_tag(self, name: str) -> str:
        colour = name_colour(name)
        tag = f"name{colour}"
        if tag not in self._colour_tags:
            self.chat.tag_configure(tag, foreground=colour, font=("TkDefaultFont", 10, "bold"))
            self._colour_tags.add(tag)
        return tag

    def _scrolled(self, scrollbar: ttk.Scrollbar, first: float, last: float) -> None:
        scrollbar.set(first, last)
        if float(last) >= 0.999:
            self.new_messages.place_forget()

    def scroll_to_end(self) -> None:
        self.chat.see("end")
        self.new_messages.place_forget()

    def refresh_users(self) -> None:
        self.users.delete(*self.users.get_children())
        conv = self._current()
        if conv is None or not conv.is_room:
            return
        for member in conv.sorted_members():
            you = " (you)" if self.state.is_me(member.name) else ""
            text = f"{'●' if member.online else '○'} {member.name}{you}"
            self.users.insert("", "end", iid=member.name, text=text,
                              tags=() if member.online else ("offline",))  # fmt: skip

    # -- actions ------------------------------------------------------------------------

    def _current(self) -> Conversation | None:
        key = self.state.current
        return self.state.conversations.get(key) if key else None

    def _sidebar_selected(self, _event: object = None) -> None:
        selection = self.sidebar.selection()
        if not selection:
            return
        key = _key(selection[0])
        if key != self.state.current and key in self.state.conversations:
            for update in self.session.select(key):
                self.apply(update)
            self.entry.focus_set()

    def select(self, key: ConvKey) -> None:
        for update in self.session.select(key):
            self.apply(update)

    def cycle(self, step: int) -> None:
        ordered = [c.key for c in self.state.ordered()]
        if ordered and self.state.current in ordered:
            index = ordered.index(self.state.current)
            self.select(ordered[(index + step) % len(ordered)])

    def _enter(self, _event: object) -> str:
        self.send()
        return "break"

    def _newline(self, _event: object) -> str:
        self.entry.insert("insert", "\n")
        return "break"

    def send(self) -> None:
        text = self.entry.get("1.0", "end-1c")
        if self.editing is not None:
            self._save_edit(text)
            return
        if not text.strip():
            return
        before = self.state.current
        error = self.session.submit(text)
        if error:
            self.set_status(error, error=True)
            return
        self.entry.delete("1.0", "end")
        if self.state.current != before:  # /msg opened another conversation
            self.apply(CurrentChanged(self.state.current))
        else:
            self.scroll_to_end()  # one's own words are worth following down

    # -- editing and deleting messages ------------------------------------------------

    def _up(self, _event: object) -> str | None:
        """Up in an empty entry edits one's last message here, as in Slack."""
        if self.editing is not None or self.entry.get("1.0", "end-1c"):
            return None  # Text's own Up: move the cursor
        line = self.session.last_own_message()
        if line is None or line.id is None:
            return None
        self.start_edit(line)
        return "break"

    def _escape(self, _event: object) -> str | None:
        if self.editing is None:
            return None
        self.cancel_edit()
        return "break"

    def start_edit(self, line: Line) -> None:
        if line.id is None:
            return
        self.editing = line.id
        self.entry.delete("1.0", "end")
        self.entry.insert("1.0", line.text)
        self.entry.configure(background="#fff8e1")
        self.hint_label.configure(text=EDIT_HINT, foreground="#b26a00")
        self.send_button.configure(text="Save")
        self.entry.focus_set()

    def cancel_edit(self) -> None:
        if self.editing is None:
            return
        self.editing = None
        self.entry.delete("1.0", "end")
        self.entry.configure(background="white")
        self.hint_label.configure(text=ENTRY_HINT, foreground="#777777")
        self.send_button.configure(text="Send")

    def _save_edit(self, text: str) -> None:
        conv = self._current()
        index = conv.line_of(self.editing) if conv is not None and self.editing else None
        if conv is None or index is None:
            self.cancel_edit()
            return
        if text == conv.lines[index].text:
            self.cancel_edit()  # nothing changed: nothing to send
            return
        error = self.session.edit(conv.lines[index].id or 0, text)
        if error:
            self.set_status(error, error=True)
            return
        self.cancel_edit()

    def line_at(self, index: str) -> Line | None:
        """The message drawn at a Text index such as ``@x,y``."""
        conv = self._current()
        if conv is None:
            return None
        for tag in self.chat.tag_names(index):
            if tag.startswith("msg") and tag[3:].isdigit():
                where = conv.line_of(int(tag[3:]))
                return conv.lines[where] if where is not None else None
        return None

    def message_menu(self, line: Line) -> tk.Menu:
        """What may be done with one message: edit and delete one's own; a moderator
        deletes anyone's in the room."""
        menu = tk.Menu(self.root, tearoff=False)
        menu.add_command(
            label="Edit",
            command=lambda: self.start_edit(line),
            state="normal" if self.session.can_edit(line) else "disabled",
        )
        menu.add_command(
            label="Delete…",
            command=lambda: self.ask_delete(line),
            state="normal" if self.session.can_delete(line) else "disabled",
        )
        menu.add_separator()
        menu.add_command(label="Copy text", command=lambda: self._copy(line.text))
        return menu

    def _chat_context(self, event: tk.Event[tk.Misc]) -> str | None:
        line = self.line_at(f"@{event.x},{event.y}")
        if line is None:
            return None
        if self.context_menu is not None:
            self.context_menu.destroy()
        self.context_menu = self.message_menu(line)
        self.context_menu.tk_popup(event.x_root, event.y_root)
        return "break"

    def _copy(self, text: str) -> None:
        self.root.clipboard_clear()
        self.root.clipboard_append(text)

    def ask_delete(self, line: Line) -> None:
        if line.id is None:
            return
        message_id = line.id
        whose = "your message" if line.own else f"{line.sender}'s message"
        preview = shorten(line.text, 80)
        self.dialog = ConfirmDialog(
            self.root,
            "delete message",
            f"Delete {whose} for everyone?\n\n“{preview}”\n\nIts text is erased from the "
            "server; this cannot be undone.",
            "Delete",
            lambda: self.session.delete(message_id),
        )

    # -- rooms --------------------------------------------------------------------------

    def _sidebar_context(self, event: tk.Event[tk.Misc]) -> str | None:
        """Right-click on a room: select it, then offer the room menu."""
        iid = self.sidebar.identify_row(event.y)
        if not iid:
            return None
        key = _key(iid)
        if key != self.state.current and key in self.state.conversations:
            self.select(key)
        if key.kind is not Kind.ROOM:
            return "break"
        if self.context_menu is not None:
            self.context_menu.destroy()
        self.context_menu = self._room_menu(self.root)
        self.context_menu.tk_popup(event.x_root, event.y_root)
        return "break"

    def ask_create_room(self) -> None:
        self.dialog = CreateRoomDialog(
            self.root,
            lambda name, private, topic: self.session.create_room(
                name, private=private, topic=topic
            ),
        )

    def _members(self, conv: Conversation) -> list[str]:
        return [m.name for m in conv.sorted_members() if not self.state.is_me(m.name)]

    def ask_invite(self) -> None:
        self.dialog = AskDialog(
            self.root, "invite", "Invite user:", "Invite",
            lambda user, _reason: self.session.invite(user),
        )  # fmt: skip

    def ask_topic(self) -> None:
        conv = self._current()
        self.dialog = AskDialog(
            self.root, "set topic", "Topic:", "Set",
            lambda topic, _reason: self.session.set_topic(topic),
            initial=conv.topic if conv is not None else "",
        )  # fmt: skip

    def ask_kick(self, *, ban: bool) -> None:
        conv = self._current()
        if conv is None:
            return
        word = "Ban" if ban else "Kick"
        self.dialog = AskDialog(
            self.root, word.lower(), f"{word} user:", word,
            lambda user, reason: self.session.kick(user, reason, ban=ban),
            choices=self._members(conv), with_reason=True,
        )  # fmt: skip

    def ask_unban(self) -> None:
        self.dialog = AskDialog(
            self.root, "unban", "Unban user:", "Unban",
            lambda user, _reason: self.session.unban(user),
        )  # fmt: skip

    def show_members(self) -> None:
        conv = self._current()
        if conv is None or not conv.is_room:
            return
        on_role = self.session.set_role if conv.can_set_roles else None
        self.dialog = MembersDialog(self.root, conv.title, conv.sorted_members(), on_role)

    def ask_settings(self) -> None:
        self.dialog = SettingsDialog(self.root, self.settings.notify_mentions, self._save_settings)

    def _save_settings(self, notify_mentions: bool) -> None:
        self.settings = ClientSettings(notify_mentions=notify_mentions)
        try:
            save_client_settings(self.settings, self.session.profile_dir)
        except OSError as exc:
            self.set_status(f"Could not save the settings: {exc.strerror or exc}.", error=True)
            return
        self.set_status("Settings saved.")

    def ask_join(self) -> None:
        self.dialog = JoinDialog(self.root, self._join)

    def _join(self, room: str) -> None:
        error = self.session.join(room)
        if error:
            self.set_status(error, error=True)

    def leave(self) -> None:
        error = self.session.leave()
        if error:
            self.set_status(error, error=True)
        self.refresh_sidebar()
        self.show_current()

    def chat_with_selected(self) -> None:
        selection = self.users.selection()
        if not selection or self.state.is_me(selection[0]):
            self.set_status("Pick someone in the list of people first.", error=True)
            return
        self.session.open_direct(selection[0])
        self.refresh_sidebar()
        self.show_current()
        self.entry.focus_set()

    def load_older(self) -> None:
        if self.session.load_older():
            self.set_status("Loading older messages…")
        else:
            self.set_status("This is the beginning of the conversation.")

    def clear(self) -> None:
        for update in self.session.clear():
            self.apply(update)
        self.set_status("Cleared this view only; the server keeps the messages.")

    def ask_password(self) -> None:
        self.password_dialog = self.dialog = PasswordDialog(
            self.root, self.state.me, self.session.change_password
        )

    def logout(self) -> None:
        self.set_status("Logging out…")
        self.session.logout()

    def export_conversation(self) -> None:
        conv = self._current()
        if conv is None:
            self.set_status("No conversation to export.", error=True)
            return
        chosen = filedialog.asksaveasfilename(
            parent=self.root,
            title="Export conversation",
            initialfile=f"{conv.title}.txt",
            defaultextension=".txt",
            filetypes=EXPORT_TYPES,
        )
        if chosen:
            self.start_export(Path(chosen))

    def start_export(self, path: Path) -> None:
        conv = self._current()
        error = self.session.start_export(path, export_format(path))
        if error or conv is None:
            self.set_status(error or "No conversation to export.", error=True)
            return
        what = f"#{conv.title}" if conv.is_room else f"the chat with {conv.title}"
        self._export_dialog = self.dialog = ExportDialog(
            self.root, what, self.session.cancel_export
        )

    def _export_update(self, update: ExportProgress | ExportFinished | ExportFailed) -> None:
        dialog = self._export_dialog
        if isinstance(update, ExportProgress):
            text = f"{update.count} messages fetched…"
        elif isinstance(update, ExportFinished):
            text = f"Saved {update.count} messages to {update.path}."
        else:
            text = update.message
        self.set_status(text, error=isinstance(update, ExportFailed))
        if dialog is None or not dialog.winfo_exists():
            return
        if isinstance(update, ExportProgress):
            dialog.fetched(update.count)
        else:
            dialog.finished(text)

    # -- search -------------------------------------------------------------------------

    def ask_search(self) -> None:
        """Ctrl+F: the search window, scoped to the conversation on screen (or all)."""
        if self.search_dialog is not None and self.search_dialog.winfo_exists():
            self.search_dialog.lift()
            self.search_dialog.entry.focus_set()
            return
        conv = self._current()
        key = conv.key if conv is not None else None
        where = None if conv is None else f"#{conv.title}" if conv.is_room else conv.title

        def search(q: str, this_only: bool, before: int | None) -> str | None:
            return self.session.search(q, key if this_only else None, before)

        self.search_dialog = self.dialog = SearchDialog(self.root, where, search,
                                                        self.open_result)  # fmt: skip

    def open_result(self, hit: SearchHit) -> None:
        for update in self.session.open_message(hit):
            self.apply(update)

    def _search_update(self, update: SearchFound | SearchFailed | Reveal) -> None:
        if isinstance(update, Reveal):
            if update.key == self.state.current:
                self.reveal(update.message_id)
            return
        dialog = self.search_dialog
        if dialog is None or not dialog.winfo_exists():
            return
        if isinstance(update, SearchFound):
            dialog.show(update.hits, update.more, appended=update.appended)
        else:
            dialog.show_error(update.message)

    def reveal(self, message_id: int) -> None:
        """Scroll to a message and light it up for a moment."""
        ranges = self.chat.tag_ranges(f"msg{message_id}")
        if not ranges:
            return
        self.chat.tag_remove("found", "1.0", "end")
        self.chat.tag_add("found", ranges[0], ranges[-1])
        self.chat.tag_raise("found")
        self.chat.see(ranges[-1])
        self.chat.see(ranges[0])
        if self._highlight is not None:
            self.root.after_cancel(self._highlight)
        self._highlight = self.root.after(HIGHLIGHT_MS, self._unhighlight)

    def _unhighlight(self) -> None:
        self._highlight = None
        self.chat.tag_remove("found", "1.0", "end")

    # -- files --------------------------------------------------------------------------

    def ask_send_file(self) -> None:
        """Send file…: pick a file and share it here. (Tk has no drag and drop of its own.)"""
        if self._current() is None:
            self.set_status("Pick a conversation first.", error=True)
            return
        chosen = filedialog.askopenfilename(parent=self.root, title="Send file")
        if chosen:
            error = self.session.send_file(Path(chosen))
            if error:
                self.set_status(error, error=True)

    def ask_save_file(self, info: FileInfo) -> None:
        chosen = filedialog.asksaveasfilename(parent=self.root, title="Save file",
                                              initialfile=info.name)  # fmt: skip
        if chosen:
            error = self.session.save_file(info, Path(chosen))
            if error:
                self.set_status(error, error=True)

    def _insert_file(self, info: FileInfo, marks: tuple[str, ...]) -> None:
        """A shared file: its name and size, a Save… button, and a thumbnail for pictures."""
        self.chat.insert("end", f": {info.name} ({human_size(info.size)}) ",
                         ("line", "file", *marks))  # fmt: skip
        button = ttk.Button(self.chat, text="Save…", style="Toolbutton", cursor="hand2",
                            command=lambda: self.ask_save_file(info))  # fmt: skip
        self.chat.window_create("end", window=button, padx=4)
        self.save_buttons[info.id] = button
        self.chat.insert("end", "\n", marks)
        path = self.session.image_path(info)
        image = self.thumbnail(path) if path is not None else None
        if image is not None:
            self.chat.image_create("end", image=image, padx=64, pady=4)
            self.chat.insert("end", "\n", marks)

    def thumbnail(self, path: Path) -> tk.PhotoImage | None:
        """The picture at ``path`` made at most 200 pixels wide and high, or ``None``."""
        if path in self._thumbnails:
            return self._thumbnails[path]
        try:
            with path.open("rb") as f:
                size = picture_size(f.read(32))
            factor = thumbnail_factor(*size) if size is not None else None
            if factor is None:
                return None
            full = tk.PhotoImage(master=self.root, file=str(path))
        except (OSError, tk.TclError):
            return None
        image = full.subsample(factor) if factor > 1 else full
        self._thumbnails[path] = image
        return image

    def _transfer_update(self, update: TransferProgress | TransferEnded | ImageReady) -> None:
        if isinstance(update, ImageReady):
            conv = self._current()
            if conv is not None and any(
                line.file is not None and line.file.id == update.file_id for line in conv.lines
            ):
                top = self.chat.yview()[0]
                at_end = self.chat.yview()[1] >= 0.999
                self.show_current()
                if not at_end:
                    self.chat.yview_moveto(top)
            return
        row = self.transfer_rows.get(update.transfer)
        if isinstance(update, TransferProgress):
            if row is None:
                row = self.transfer_rows[update.transfer] = TransferRow(
                    self.transfers, update.name, upload=update.upload,
                    on_cancel=lambda: self.cancel_transfer(update.transfer),
                )  # fmt: skip
                row.pack(fill="x")
            row.progress(update.done, update.total)
            return
        self.set_status(update.text, error=not update.ok)
        if row is not None:
            row.ended(update.text, ok=update.ok)
            row.bind("<Destroy>", lambda _e: self.transfer_rows.pop(update.transfer, None))

    def cancel_transfer(self, transfer: int) -> None:
        for update in self.session.cancel_transfer(transfer):
            self.apply(update)
