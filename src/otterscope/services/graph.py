"""The service map: Cytoscape.js elements from the store's calls, and the cycles in it.

Nodes are the services seen in the window plus virtual nodes for callees that do not report
(a database, a message broker, an external host), whose id is ``<type>:<name>`` so it never
collides with a service name. A call whose ``peer.service`` names a service that does report
is an edge to that service. Edges carry the call count, the failed calls and the p99 of the
calling span's duration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]

MAX_CYCLES = 100
# The depth-first search for cycles visits at most this many paths: the number of
# elementary cycles grows exponentially with a dense graph, and the answer is capped anyway.
MAX_CYCLE_STEPS = 200_000


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str  # a node id
    calls: int
    errors: int
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Graph:
    nodes: list[dict[str, Any]]  # Cytoscape node data
    edges: list[Edge]


def build(services: Sequence[dict[str, Any]], calls: Iterable[Row]) -> Graph:
    """The map from ``catalog.services`` entries and ``Store.dependencies`` rows."""
    known = {s["name"] for s in services}
    nodes: dict[str, dict[str, Any]] = {
        s["name"]: {
            "id": s["name"],
            "label": s["name"],
            "type": "service",
            "virtual": False,
            "spanCount": s["spanCount"],
            "errorRate": s["errorRate"],
            "p99Ms": s["p99Ms"],
        }
        for s in services
    }
    merged: dict[tuple[str, str], Edge] = {}
    for row in calls:
        source, target, kind = str(row["source"]), str(row["target"]), str(row["target_type"])
        if kind != "service" or target not in known:
            if kind == "service":
                kind = "external"  # a peer.service that never reports
            node_id = f"{kind}:{target}"
            nodes.setdefault(
                node_id, {"id": node_id, "label": target, "type": kind, "virtual": True}
            )
            target = node_id
        if source not in nodes:  # only when the source's own spans fell out of the window
            nodes[source] = {"id": source, "label": source, "type": "service", "virtual": False}
        p99 = None if row["p99_ns"] is None else float(row["p99_ns"]) / 1e6
        seen = merged.get((source, target))
        if seen is None:
            merged[(source, target)] = Edge(
                source, target, int(row["calls"]), int(row["errors"]), p99
            )
        else:  # two kinds of call between the same nodes: p99s cannot be merged exactly
            worst = max((x for x in (seen.p99_ms, p99) if x is not None), default=None)
            merged[(source, target)] = Edge(
                source,
                target,
                seen.calls + int(row["calls"]),
                seen.errors + int(row["errors"]),
                worst,
            )
    return Graph([nodes[k] for k in sorted(nodes)], [merged[k] for k in sorted(merged)])


def elements(graph: Graph) -> dict[str, Any]:
    """Cytoscape.js elements JSON."""
    return {
        "nodes": [{"data": node} for node in graph.nodes],
        "edges": [
            {
                "data": {
                    "id": f"{e.source}->{e.target}",
                    "source": e.source,
                    "target": e.target,
                    "callCount": e.calls,
                    "errorCount": e.errors,
                    "p99Ms": e.p99_ms,
                }
            }
            for e in graph.edges
        ],
    }


def cycles(edges: Iterable[Edge], limit: int = MAX_CYCLES) -> tuple[list[list[str]], bool]:
    """The elementary cycles (each listed from its smallest node, in call order, the last
    node calling the first), at most ``limit``; and whether some were left out.

    Every cycle is found exactly once: from its smallest node, through larger nodes only.
    """
    out: dict[str, list[str]] = {}
    for e in edges:
        if e.source != e.target:
            out.setdefault(e.source, []).append(e.target)
    order = sorted(set(out) | {t for ts in out.values() for t in ts})
    rank = {node: i for i, node in enumerate(order)}
    for targets in out.values():
        targets.sort(key=rank.__getitem__)
    found: list[list[str]] = []
    steps = 0
    for start in order:
        low = rank[start]
        path = [start]
        on_path = {start}
        stack = [iter(out.get(start, ()))]
        while stack:
            steps += 1
            if steps > MAX_CYCLE_STEPS:
                return found, True
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                on_path.discard(path.pop())
                continue
            if nxt == start:
                if len(found) == limit:
                    return found, True
                found.append(list(path))
            elif rank[nxt] > low and nxt not in on_path:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(out.get(nxt, ())))
    return found, False


def neighbours(graph: Graph, service: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(upstream, downstream) of a service: who calls it, and what it calls."""
    types = {n["id"]: n for n in graph.nodes}

    def entry(node_id: str, e: Edge) -> dict[str, Any]:
        node = types.get(node_id, {"label": node_id, "type": "service", "virtual": False})
        return {
            "id": node_id,
            "name": node["label"],
            "type": node["type"],
            "virtual": node["virtual"],
            "callCount": e.calls,
            "errorCount": e.errors,
            "p99Ms": e.p99_ms,
        }

    upstream = [entry(e.source, e) for e in graph.edges if e.target == service]
    downstream = [entry(e.target, e) for e in graph.edges if e.source == service]
    return upstream, downstream
