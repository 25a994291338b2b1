"""GUI tests: a private Xvfb display, real servers on loopback, and apps to drive.

Xvfb is started here for the whole session on a free display; if it is missing the tests
fail (never skip): install it with ``apt-get install -y xvfb``.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import time
import tkinter as tk
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import pytest

from chatsecure.client.trust import TrustStore
from chatsecure.gui.app import App, StartOptions
from tests.client.conftest import (  # noqa: F401 - fixtures shared with the client tests
    certs,
    new_user,
    other_certs,
    own_server,
    private_config,
    shared_server,
)
from tests.client.server import ServerProcess
from tests.serverproc import HOST, password_of, spawn

TIMEOUT = 15.0


def _free_display() -> int:
    for number in range(90, 400):
        if (
            not Path(f"/tmp/.X{number}-lock").exists()
            and not Path(f"/tmp/.X11-unix/X{number}").exists()
        ):
            return number
    raise RuntimeError("no free X display number")


@pytest.fixture(scope="session", autouse=True)
def xvfb() -> Iterator[str]:
    """``DISPLAY`` pointing at a fresh Xvfb for the whole session."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.fail("Xvfb is not installed; GUI tests need it: apt-get install -y xvfb")
    number = _free_display()
    process = spawn(
        [binary, f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"Xvfb :{number} did not start")
        time.sleep(0.05)
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    yield f":{number}"
    if previous is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = previous
    process.terminate()
    process.wait(10)


class HasRoot(Protocol):
    """A window to pump: a client ``App`` or the server console."""

    @property
    def root(self) -> tk.Tk: ...


def pump(
    app: HasRoot | Sequence[HasRoot], until: Callable[[], object], timeout: float = TIMEOUT
) -> None:
    """Run the Tk event loops of ``app`` until ``until()`` is true."""
    apps = app if isinstance(app, Sequence) else [app]
    deadline = time.monotonic() + timeout
    while True:
        for each in apps:
            each.root.update()
        if until():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {until}")
        time.sleep(0.01)


class Apps:
    """Makes client windows; each is torn down at the end of the test."""

    def __init__(self, trust_path: Path) -> None:
        self.apps: list[App] = []
        self.trust_path = trust_path

    def __call__(self, server: ServerProcess, username: str = "", *, ca: bool = True) -> App:
        root = tk.Tk()
        options = StartOptions(HOST, server.port, username, server.certs.ca if ca else None)
        app = App(root, options, TrustStore(self.trust_path))
        self.apps.append(app)
        root.update()
        return app

    def logged_in(self, server: ServerProcess, username: str) -> App:
        app = self(server, username)
        login(app, username)
        return app

    def close(self) -> None:
        for app in self.apps:
            if app.root.winfo_exists():
                app.quit()
        # Free the Tcl interpreters here, on the Tk thread: if the garbage collector found
        # them later on a network thread, Tcl would abort the process.
        self.apps.clear()
        gc.collect()


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[Apps]:
    made = Apps(tmp_path / "known_servers.json")
    yield made
    made.close()


def login(app: App, username: str, password: str | None = None) -> None:
    """Fill the form, press Connect, and wait for the chat window."""
    form = app.login
    assert form is not None
    form.username_entry.delete(0, "end")
    form.username_entry.insert(0, username)
    form.password_entry.insert(0, password if password is not None else password_of(username))
    form.connect_button.invoke()
    pump(app, lambda: app.main is not None)
    pump(app, lambda: app.main is not None and app.main.state.current is not None)


def chat_text(app: App) -> str:
    assert app.main is not None
    return app.main.chat.get("1.0", "end-1c")


def login_error(app: App, username: str, password: str) -> str:
    """Try to log in and return the error shown on the form."""
    form = app.login
    assert form is not None
    form.username_entry.delete(0, "end")
    form.username_entry.insert(0, username)
    form.password_entry.delete(0, "end")
    form.password_entry.insert(0, password)
    form.connect_button.invoke()
    pump(app, lambda: str(form.connect_button["state"]) == "normal")
    return str(form.error_label["text"])
