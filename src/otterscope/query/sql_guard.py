"""What user SQL may be: one SELECT over the views ``spans``, ``logs`` and ``metric_points``.

DuckDB parses the statement (``extract_statements`` for its type, ``json_serialize_sql``
for its tree); the tree is walked for every table it reads. Only the three views and the
statement's own CTEs may be named, and no table function (``read_csv``, ``glob``,
``duckdb_settings``...) may appear, and ``current_setting`` only names a setting outright and
never one that shows a path of the server (``allowed_paths``, ``temp_directory``...). This
is the first wall; the sandbox process's settings (no external access, locked
configuration, only the tenant's files) are the second.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import duckdb
import orjson

from otterscope.errors import BadRequest

VIEWS = ("spans", "logs", "metric_points")
_SCHEMAS = ("", "main", "memory")
_PATH_NAME = re.compile(r"(directory|directories|path|paths|file)$")
# Values with a slash that name no file: a time zone, the client library's version.
_NOT_PATHS = ("timezone", "duckdb_api")


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from _nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _nodes(value)


def hidden_settings(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The settings ``current_setting`` may not show: those naming files or directories."""
    rows = con.execute("SELECT name, value FROM duckdb_settings()").fetchall()
    return frozenset(
        str(name).lower()
        for name, value in rows
        if _PATH_NAME.search(str(name).lower())
        or ("/" in str(value or "") and str(name).lower() not in _NOT_PATHS)
    )


def _string_constant(node: Any) -> str | None:
    if not isinstance(node, dict) or node.get("class") != "CONSTANT":
        return None
    literal = node.get("literal")
    if isinstance(literal, dict) and literal.get("kind") == "STRING":
        return str(literal.get("text"))
    value = node.get("value")  # the older form of a serialized constant
    if isinstance(value, dict) and isinstance(value.get("value"), str):
        return str(value["value"])
    return None


def _check_setting(node: dict[str, Any], hidden: frozenset[str]) -> None:
    if isinstance(node.get("arguments"), list):
        arguments = [a.get("expression") for a in node["arguments"] if isinstance(a, dict)]
    else:
        arguments = list(node.get("children") or [])
    name = _string_constant(arguments[0]) if len(arguments) == 1 else None
    if name is None:
        raise BadRequest("current_setting takes the name of a setting as a string literal")
    if name.lower() in hidden or _PATH_NAME.search(name.lower()):
        raise BadRequest(f"the setting {name!r} names paths of the server and is not shown")


def check(con: duckdb.DuckDBPyConnection, query: str, hidden: frozenset[str] = frozenset()) -> str:
    """Refuse anything but one SELECT reading the views (BadRequest with the reason); the
    statement's text, without a trailing ``;``."""
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
        if str(node.get("function_name", "")).lower() == "current_setting":
            _check_setting(node, hidden)
        if kind_name == "BASE_TABLE":
            name = str(node.get("table_name", "")).lower()
            where = (
                str(node.get("catalog_name", "")).lower(),
                str(node.get("schema_name", "")).lower(),
            )
            if name not in (*VIEWS, *ctes) or where[1] not in _SCHEMAS or where[0] not in _SCHEMAS:
                raise BadRequest(f"unknown table {name!r}; the views are {', '.join(VIEWS)}")
    return re.sub(r"[\s;]+$", "", statements[0].query)
