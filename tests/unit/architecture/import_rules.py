"""The rules of imports in `app`, and the checks that enforce them (with grimp's import graph).

grimp reads every import statement, also those inside functions and under `if TYPE_CHECKING:`, so
an import hidden there counts like any other: that is where cycles used to hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import grimp

#: Layers of each container, highest first: a layer may import the layers below it, never one above.
#: A set holds siblings that must not import each other either; a tuple holds siblings that may.
LAYERS: dict[str, Sequence[str | set[str] | tuple[str, ...]]] = {
    "app": ("__main__", "cli", "ui", "core"),
    "app.core": (
        "settings",
        {"api", "chat"},
        "inference",
        {"hub", "remote"},
        {"tools", "media"},
        "models",
        "system",
        {"platform", "values"},
    ),
    "app.ui": (
        "shell",
        ("chat", "conversations", "hub", "models", "remote", "api", "inference", "tools"),
        "common",
    ),
}


def build(package: str = "app") -> grimp.ImportGraph:
    """The import graph of `package` (imports inside functions and under TYPE_CHECKING included)."""
    return grimp.build_graph(package, cache_dir=None)


def cycles(graph: grimp.ImportGraph, modules: Iterable[str] | None = None) -> list[list[str]]:
    """Every group of modules that import each other in a circle (strongly connected components of two
    or more modules, or a module importing itself), each sorted, found with Tarjan's algorithm."""
    nodes = sorted(modules if modules is not None else graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        # An explicit stack instead of recursion: (module, iterator over what it imports).
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            advanced = False
            for nxt in todo:
                if nxt not in edges:
                    continue  # outside the modules checked
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in edges[node]:
                    found.append(sorted(group))
    return sorted(found)


def _layer(entry: str | set[str] | tuple[str, ...]) -> grimp.Layer | str:
    if isinstance(entry, str):
        return entry
    return grimp.Layer(*sorted(entry), independent=isinstance(entry, set))


def upward_imports(graph: grimp.ImportGraph, layers: dict[str, Sequence[object]] = LAYERS) -> list[str]:
    """Each import that runs up the layers (or across independent siblings), as one line naming the
    importing module, the imported module and the line."""
    out = []
    for container, entries in layers.items():
        illegal = graph.find_illegal_dependencies_for_layers(
            layers=[_layer(e) for e in entries],  # type: ignore[arg-type]
            containers={container},
        )
        for dependency in sorted(illegal, key=lambda d: (d.importer, d.imported)):
            for route in dependency.routes:
                for head in sorted(route.heads):
                    for tail in sorted(route.tails):
                        details = graph.get_import_details(importer=head, imported=tail)
                        where = ", ".join(f"line {d['line_number']}" for d in details) or "indirectly"
                        out.append(
                            f"{head} imports {tail} ({where}): {dependency.importer} is below "
                            f"{dependency.imported} in {container}"
                        )
    return sorted(set(out))
