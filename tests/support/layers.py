"""The layer rules of the code, checked on its import graph (grimp, the engine of
import-linter). Every import counts, including those inside functions: an import
placed in a function to hide a cycle is still a cycle.

``violations(root)`` returns one line per broken rule for the packages under the
namespace ``root`` (``edgebench``, or a renamed copy in a test that breaks a rule
on purpose).
"""

from __future__ import annotations

import grimp

#: What the collector may import of the agent: the package root (its version), the
#: user-facing errors, and the wire contract.
COLLECTOR_MAY_IMPORT = ("agent", "agent.errors", "agent.wire")
#: What the measured loop must never reach, even indirectly.
LOOP = "agent.measure.loop"
LOOP_MUST_NOT_REACH = ("agent.publish", "agent.service", "agent.cli", "agent.report", "collector")
#: External packages the measured loop must never load.
LOOP_MUST_NOT_LOAD = ("paho", "matplotlib", "psycopg", "jinja2")


def build(root: str) -> grimp.ImportGraph:
    return grimp.build_graph(
        f"{root}.agent", f"{root}.collector", f"{root}.models", include_external_packages=True, cache_dir=None
    )


def cycles(graph: grimp.ImportGraph, root: str) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    mods = sorted(m for m in graph.modules if m.startswith(root + "."))
    adj = {m: sorted(t for t in graph.find_modules_directly_imported_by(m) if t.startswith(root + ".")) for m in mods}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in mods:
        if start in index:
            continue
        work = [(start, iter(adj[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(adj[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on_stack.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(root: str = "edgebench", graph: grimp.ImportGraph | None = None) -> list[str]:
    graph = graph or build(root)
    out = [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph, root)]
    allowed = tuple(f"{root}.{p}" for p in COLLECTOR_MAY_IMPORT)
    for m in sorted(graph.modules):
        if not m.startswith(f"{root}.collector"):
            continue
        for t in sorted(graph.find_modules_directly_imported_by(m)):
            if t.startswith(f"{root}.agent") and not (t == allowed[0] or _under(t, allowed[1:])):
                out.append(f"the collector imports the agent beyond its wire contract: {m} -> {t}")
    for m in sorted(graph.modules):
        if _under(m, (f"{root}.agent.wire",)):
            for t in graph.find_modules_directly_imported_by(m):
                if t.startswith(f"{root}.") and not _under(t, (f"{root}.agent.wire", f"{root}.agent.errors")):
                    out.append(f"the wire contract imports beyond itself: {m} -> {t}")
        if m.startswith(f"{root}.agent"):
            for t in graph.find_modules_directly_imported_by(m):
                if t.startswith(f"{root}.collector"):
                    out.append(f"the agent imports the collector: {m} -> {t}")
    loop = f"{root}.{LOOP}"
    reached = graph.find_upstream_modules(loop) if loop in graph.modules else set()  # what the loop imports
    banned = tuple(f"{root}.{p}" for p in LOOP_MUST_NOT_REACH) + LOOP_MUST_NOT_LOAD
    for t in sorted(reached):
        if _under(t, banned):
            out.append(f"the measured loop ({loop}) reaches {t}")
    return out
