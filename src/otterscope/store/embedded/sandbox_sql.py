"""The SQL views user queries see (``POST /api/query``): one per signal, over a tenant's own
data as exported for the sandbox; and the statement that takes a query's answer out of
DuckDB column by column, each in the shape ``query.sql_encode`` chose.

The same rules as ``sql``: fixed text and names the store made; the only user text is the
checked statement the sandbox wraps, which runs in the sandbox alone.
"""

from __future__ import annotations

from otterscope.otlp.schema import SCHEMAS

VIEWS = {"spans": "traces", "logs": "logs", "metric_points": "metrics"}
VIEW_OF = {signal: view for view, signal in VIEWS.items()}
# Stored as bytes: shown as lowercase hex, as everywhere in the API.
HEX_COLUMNS = ("trace_id", "span_id", "parent_span_id")
# Stored as JSON text: typed JSON, so ``attributes->>'http.route'`` works.
JSON_COLUMNS = (
    "attributes",
    "resource_attributes",
    "resource_entity_refs",
    "scope_attributes",
    "events",
    "links",
    "body",
    "metric_metadata",
    "quantile_values",
    "exemplars",
)
HIDDEN_COLUMNS = ("tenant", "ingest_seq")


def columns(signal: str) -> list[str]:
    """The columns of a signal's view, in order."""
    return [f.name for f in SCHEMAS[signal] if f.name not in HIDDEN_COLUMNS]


def view(signal: str, source: str) -> str:
    """CREATE VIEW for one signal over ``source`` (a FROM-able union from ``sql.source``)."""
    shown = []
    for name in columns(signal):
        if name in HEX_COLUMNS:
            shown.append(f"lower(hex({name})) AS {name}")
        elif name in JSON_COLUMNS:
            shown.append(f"CAST({name} AS JSON) AS {name}")
        else:
            shown.append(name)
    return f"CREATE VIEW {VIEW_OF[signal]} AS SELECT {', '.join(shown)} FROM {source}"


# How an answer column leaves DuckDB (``query.sql_encode`` picks one per column type).
SHAPES = {
    "value": "#{i}",
    "base64": "base64(#{i})",
    "json": "to_json(#{i})",
}


def answer(statement: str, shapes: list[str]) -> str:
    """The user's statement (already checked to be one SELECT, without its trailing ``;``)
    as a subquery, each column taken by position in the given shape.

    Its own lines around it: a trailing ``--`` comment cannot swallow the parenthesis.
    """
    taken = ", ".join(SHAPES[shape].format(i=i) for i, shape in enumerate(shapes, 1))
    return f"SELECT {taken} FROM (\n{statement}\n) AS answer"
