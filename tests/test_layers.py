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


def _imported_by(module: str, *, after: tuple[str, ...] = ()) -> set[str]:
    """What importing ``module`` adds to a fresh interpreter that imported ``after`` first."""
    first = "".join(f"import {m}; " for m in after)
    code = (
        f"import json, sys; {first}before = set(sys.modules); "
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
    pulled = _imported_by("chatsecure.server.core.service")
    assert not any(
        m.startswith(
            (
                "chatsecure.server.transport",
                "chatsecure.server.ops",
                "chatsecure.gui",
                "chatsecure.client",
            )
        )
        for m in pulled
    )
    assert "tkinter" not in pulled
    assert "prometheus_client" not in _top_levels(pulled)  # metrics observe it from outside


def _within(modules: set[str], packages: tuple[str, ...]) -> set[str]:
    return {m for m in modules if m in packages or m.startswith(tuple(f"{p}." for p in packages))}


def test_the_chat_service_knows_no_wire_format_socket_tls_or_widgets():
    """What the service adds to a fresh interpreter, over the store and config it is given.

    SQLAlchemy itself imports ``socket`` and ``ssl`` (through asyncio), so those are
    judged above what the layers below already brought.
    """
    below = ("chatsecure.storage.store", "chatsecure.config")
    pulled = _imported_by("chatsecure.server.core.service", after=below)
    assert "chatsecure.server.core.sessions" in pulled
    forbidden = ("chatsecure.protocol", "chatsecure.server.json", "socket", "ssl", "tkinter")
    assert not _within(pulled, forbidden)
    everything = _imported_by("chatsecure.server.core.service")
    assert (
        not _within(everything, ("chatsecure.protocol", "chatsecure.server", "tkinter"))
        - {m for m in everything if m.startswith("chatsecure.server.core")}
        - {"chatsecure.server"}
    )


def _server_packages() -> list[str]:
    root = Path(__file__).resolve().parent.parent / "chatsecure" / "server"
    return sorted(
        f"chatsecure.server.{p.stem}"
        for p in root.iterdir()
        if (p.is_dir() and (p / "__init__.py").is_file())
        or (p.suffix == ".py" and p.stem != "__init__")
    )


def test_the_json_adapter_is_the_only_server_package_speaking_the_protocol():
    speakers = {
        package
        for package in _server_packages()
        if any(m.startswith("chatsecure.protocol") for m in _direct_imports(package))
    }
    assert speakers == {"chatsecure.server.json"}


def _module_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (relative imports resolved)."""
    base = Path(__file__).resolve().parent.parent
    files = {
        ".".join(f.relative_to(base).with_suffix("").parts).removesuffix(".__init__"): f
        for f in (base / package.replace(".", "/")).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    module = ".".join([*parts, module] if module else parts)
                found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in ``graph``, or None (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circles_in_the_server():
    graph = _module_graph("chatsecure.server")
    assert "chatsecure.server.core.service" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_circle_check_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
