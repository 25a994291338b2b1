"""Each layer imports only what it may (style.md: the layers are visible in the imports).

Each check runs in a fresh interpreter, so what one layer pulls in is not hidden by
what another test already imported.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest


def _imported_by(module: str) -> set[str]:
    code = (
        "import json, sys; before = set(sys.modules); "
        f"import {module}; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out))


def _top_levels(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_protocol_uses_only_the_standard_library_and_names():
    pulled = _imported_by("chatsecure.protocol")
    ours = {m for m in pulled if m.startswith("chatsecure")}
    assert ours <= {"chatsecure", "chatsecure.names"} | {
        m for m in ours if m.startswith("chatsecure.protocol")
    }
    third_party = _top_levels(pulled) - set(sys.stdlib_module_names) - {"chatsecure"}
    assert not third_party


def _direct_imports(package: str) -> set[str]:
    """Modules imported by the source files of ``package`` themselves (not by libraries)."""
    root = Path(__file__).resolve().parent.parent / package.replace(".", "/")
    files = [root.with_suffix(".py")] if root.with_suffix(".py").is_file() else root.rglob("*.py")
    found: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found


@pytest.mark.parametrize(
    "layer", ["chatsecure.protocol", "chatsecure.server.core", "chatsecure.storage"]
)
def test_no_sockets_tls_or_widgets_below_the_transport(layer):
    imported = _top_levels(_direct_imports(layer))
    assert not imported & {"socket", "ssl", "selectors", "tkinter"}


def test_storage_knows_nothing_of_the_protocol_or_the_server():
    pulled = _imported_by("chatsecure.storage.store")
    assert not any(
        m.startswith(("chatsecure.protocol", "chatsecure.server", "chatsecure.client"))
        for m in pulled
    )


def test_core_does_not_reach_up_to_transport_or_gui():
    pulled = _imported_by("chatsecure.server.core.chat")
    assert not any(
        m.startswith(("chatsecure.server.transport", "chatsecure.gui", "chatsecure.client"))
        for m in pulled
    )
    assert "tkinter" not in pulled
