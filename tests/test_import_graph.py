"""The import graph of the gateway and its plug-ins: plug-ins depend only on the kernel, and
no module-level import cycle exists.

Parsed with ``ast`` (nothing is imported). An edge is an ``import``/``from … import`` at a
module's top level, including those under a top-level ``if``/``try`` and under
``if TYPE_CHECKING:`` (an annotation-only cycle is still two modules that cannot be
understood apart). Imports inside functions are *not* edges: a lazy import is how a module
names an optional SDK or a plug-in by registry without loading it at start-up, and it cannot
take part in an import-time cycle. ``from pkg import name`` is an edge to ``pkg.name`` when
that is a module, else to ``pkg``; a package's ``__init__`` running before its submodules is
not counted as an edge (every package would be in a cycle with its own modules).

Rules:
1. No plug-in module (``harnesses``, ``compute``, ``judges``) imports ``cerver.services``,
   ``cerver.api`` or ``cerver.proxy``: plug-ins see the kernel (``cerver.types``,
   ``cerver.errors``, ``cerver.providers``…) and their own SDKs only.
2. The gateway's services and API (``cerver.services``, ``cerver.api``, ``cerver.gateway``)
   import a plug-in package's public modules only (``base``, ``tools``…), never a private one
   (``harnesses._loop``, ``harnesses._cli_tools``…) nor the ``retry``/``relay`` internals:
   what both sides need lives in the kernel or is reached through the registries.
   :data:`KNOWN_REACHES` lists the arrows still to move, each with why; the test fails when
   one is fixed, so the list only shrinks.
3. No cycle among the modules of ``cerver``, ``harnesses``, ``compute`` and ``judges``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cerver", "harnesses", "compute", "judges")
PLUGINS = ("harnesses", "compute", "judges")
FORBIDDEN_TO_PLUGINS = ("cerver.services", "cerver.api", "cerver.proxy")
GATEWAY_SIDE = ("cerver.services", "cerver.api", "cerver.gateway")
PLUGIN_INTERNALS = ("harnesses.retry", "compute.relay")
KNOWN_REACHES = {
    "cerver.api.compat.history -> harnesses._loop": "text_entry/tool_call_entry build neutral "
    "transcript entries; they belong in the kernel (cerver.types)",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # run by Alembic, never imported by the gateway's modules
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _top_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try):
            pending.extend(node.body)
            pending.extend(node.orelse)
            if isinstance(node, ast.Try):
                pending.extend(node.finalbody)
                for handler in node.handlers:
                    pending.extend(handler.body)


def _resolve(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    targets = set()
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        targets.add(candidate if candidate in MODULES else base)
    return targets


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _top_level_imports(tree):
            for target in _resolve(module, node, path.name == "__init__.py"):
                # The closest module of ours: ``a.b.c`` where only ``a.b`` is a file.
                while target and target not in MODULES:
                    target = target.rpartition(".")[0]
                if target and target != module:
                    edges.add(target)
        graph[module] = edges
    return graph


GRAPH = _graph()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_sees_the_known_edges() -> None:
    # A parser that found nothing would pass every rule: check it reads real imports.
    assert "cerver.types" in GRAPH["harnesses.base"]
    assert "cerver.proxy.listener" in GRAPH["cerver.proxy.service"]
    assert "cerver.providers" in GRAPH["cerver.settings"]


@pytest.mark.parametrize("plugin", PLUGINS)
def test_plugins_import_only_the_kernel(plugin: str) -> None:
    arrows = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _within(module, plugin)
        for target in targets
        if any(_within(target, forbidden) for forbidden in FORBIDDEN_TO_PLUGINS)
    )
    assert not arrows, "plug-ins must not import the gateway's services, API or proxy:\n" + (
        "\n".join(arrows)
    )


def _internal(target: str) -> bool:
    parts = target.split(".")
    return parts[0] in PLUGINS and (
        any(p.startswith("_") for p in parts[1:]) or target in PLUGIN_INTERNALS
    )


def test_services_import_no_plugin_internals() -> None:
    arrows = {
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if any(_within(module, side) for side in GATEWAY_SIDE)
        for target in targets
        if _internal(target)
    }
    new = sorted(arrows - set(KNOWN_REACHES))
    assert not new, "the gateway reaches into plug-in internals:\n" + "\n".join(new)
    fixed = sorted(set(KNOWN_REACHES) - arrows)
    assert not fixed, "fixed, remove from KNOWN_REACHES:\n" + "\n".join(fixed)


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "module-level import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
