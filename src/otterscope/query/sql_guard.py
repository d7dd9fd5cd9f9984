"""What user SQL may be: one SELECT over the views ``spans``, ``logs`` and ``metric_points``.

DuckDB parses the statement (``extract_statements`` for its type, ``json_serialize_sql``
for its tree); the tree is walked for every table it reads. Only the three views and the
statement's own CTEs may be named, and no table function (``read_csv``, ``glob``,
``duckdb_settings``...) may appear. This is the first wall; the sandbox process's settings
(no external access, locked configuration, only the tenant's files) are the second.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import orjson

from otterscope.errors import BadRequest

VIEWS = ("spans", "logs", "metric_points")
_SCHEMAS = ("", "main", "memory")


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def check(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse anything but one SELECT reading the views (BadRequest with the reason)."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise BadRequest(f"the query does not parse: {exc}") from None
    if len(statements) != 1:
        raise BadRequest(f"send exactly one statement, not {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise BadRequest(f"only SELECT is allowed, not {kind.name}")
    (serialized,) = con.execute("SELECT json_serialize_sql(?)", [query]).fetchone() or ("{}",)
    tree = orjson.loads(serialized)
    if tree.get("error"):
        raise BadRequest(f"only SELECT is allowed: {tree.get('error_message', '')}")
    nodes = list(_nodes(tree))
    ctes = {
        str(entry["key"]).lower()
        for node in nodes
        if isinstance(node.get("cte_map"), dict)
        for entry in node["cte_map"].get("map", [])
    }
    for node in nodes:
        kind_name = node.get("type")
        if kind_name == "TABLE_FUNCTION":
            raise BadRequest(
                "table functions (read_csv, read_parquet, glob, ...) are not allowed; "
                f"query the views {', '.join(VIEWS)}"
            )
        if kind_name == "BASE_TABLE":
            name = str(node.get("table_name", "")).lower()
            where = (
                str(node.get("catalog_name", "")).lower(),
                str(node.get("schema_name", "")).lower(),
            )
            if name not in (*VIEWS, *ctes) or where[1] not in _SCHEMAS or where[0] not in _SCHEMAS:
                raise BadRequest(f"unknown table {name!r}; the views are {', '.join(VIEWS)}")
