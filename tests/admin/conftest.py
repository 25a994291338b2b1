"""Drive ``chatsecure-admin`` through ``main`` with injected streams."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatsecure.admin.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str


class Admin:
    """``admin("adduser", "alice", stdin="pw\\n")`` runs one command against one config."""

    def __init__(self, config: Path) -> None:
        self.config = config

    def __call__(self, *argv: str, stdin: str = "") -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["--config", str(self.config), *argv], stdin=io.StringIO(stdin), stdout=out, stderr=err
        )
        return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def admin_for() -> type[Admin]:
    return Admin


@pytest.fixture
def admin(config_path: Path) -> Admin:
    return Admin(config_path)


@pytest.fixture
def migrated(admin: Admin) -> Admin:
    assert admin("migrate").code == 0
    return admin
