"""``/openapi.json`` paths of the metrics, services, SQL, alerting and web UI endpoints."""

from __future__ import annotations

from otterscope.api.openapi_parts import (
    _NUM,
    FOUND,
    INT,
    NANOS,
    NUMBER,
    READ,
    STRING,
    TIME,
    TIME_TEXT,
    UINT,
    Schema,
    array,
    json_content,
    limit,
    obj,
    ok,
    op,
    path_param,
    query,
    string,
)

METRICS = {
    "/api/metrics": {
        "get": op(
            "list_metrics",
            "The tenant's metrics, with their Prometheus names and labels",
            ok(
                "Metrics.",
                obj(
                    {
                        "metrics": array(
                            obj(
                                {
                                    "name": STRING,
                                    "prometheusName": STRING,
                                    "type": {
                                        "type": "string",
                                        "enum": [
                                            "counter",
                                            "updowncounter",
                                            "gauge",
                                            "histogram",
                                            "summary",
                                        ],
                                    },
                                    "unit": STRING,
                                    "description": STRING,
                                    "labels": array(STRING),
                                }
                            )
                        )
                    }
                ),
            ),
        )
    },
}
METRIC_QUERY_TEXT = (
    "Series of one metric per step. `label.<key>=<value>` (repeatable) keeps the series "
    "with that label, by OTLP attribute key (point attributes, then resource) or by "
    "Prometheus label name (`job`, `instance`, sanitised keys). Counters aggregate each "
    "series' reset-aware increase in the step; gauges each series' latest value; histograms "
    "their observations (`count`, `sum`, `avg`, `rate`, percentiles from the buckets). The "
    "RED metrics derived from spans are queried by their names. Steps are aligned to the "
    "epoch; `unixMs` is a step's start; a step without points has no entry."
)
METRICS["/api/metrics/query"] = {
    "get": op(
        "query_metric",
        "A metric's series, aggregated per step and group",
        ok(
            "Series.",
            obj(
                {
                    "series": array(
                        obj(
                            {
                                "labels": {"type": "object", "additionalProperties": STRING},
                                "points": array(
                                    {
                                        "type": "array",
                                        "prefixItems": [INT, NUMBER],
                                        "minItems": 2,
                                        "maxItems": 2,
                                        "description": "[unixMs, value]",
                                    }
                                ),
                            }
                        )
                    )
                }
            ),
        ),
        params=[
            query("name", STRING, "The OTLP metric name or its Prometheus name.")
            | {"required": True},
            query(
                "agg",
                {
                    "enum": ["sum", "avg", "min", "max", "count", "rate", "increase"]
                    + ["p50", "p90", "p95", "p99"],
                    "default": "sum",
                },
                "Aggregation. `rate` is per second; `rate`, `increase` need a counter or a "
                "histogram, percentiles a histogram (or a summary reporting that quantile).",
            ),
            query(
                "groupBy",
                STRING,
                "Comma-separated label keys (as for `label.`); one series per combination.",
            ),
            query(
                "step",
                string(f"^({_NUM}|({_NUM}(ns|us|µs|ms|s|m|h))+)$"),
                "A duration (`30s`, `5m`) or plain seconds. Default: about 120 steps over "
                "the window, rounded (1s, 5s, 10s, 15s, 30s, 1m, 2m, 5m, ...).",
            ),
            query("start", TIME, f"{TIME_TEXT} Default: `end` minus 1 hour."),
            query("end", TIME, f"{TIME_TEXT} Default: now."),
        ],
        text=METRIC_QUERY_TEXT,
        errs=(*READ, 404),
    )
}
_NULLABLE_STRING: Schema = {"type": ["string", "null"]}
_NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
SERVICE_ENTRY: Schema = obj(
    {
        "name": STRING,
        "namespace": _NULLABLE_STRING,
        "version": _NULLABLE_STRING,
        "environment": _NULLABLE_STRING,
        "language": _NULLABLE_STRING,
        "sdk": _NULLABLE_STRING,
        "firstSeenUnixNano": NANOS,
        "lastSeenUnixNano": NANOS,
        "spanCount": UINT,
        "logCount": UINT,
        "metricPointCount": UINT,
        "errorCount": UINT,
        "errorRate": NUMBER,
        "p99Ms": _NULLABLE_NUMBER,
    }
)
NODE_TYPE: Schema = {"type": "string", "enum": ["service", "database", "messaging", "external"]}
NEIGHBOUR: Schema = obj(
    {
        "id": STRING,
        "name": STRING,
        "type": NODE_TYPE,
        "virtual": {"type": "boolean"},
        "callCount": UINT,
        "errorCount": UINT,
        "p99Ms": _NULLABLE_NUMBER,
    }
)
SERVICE_WINDOW = [
    query("start", TIME, f"{TIME_TEXT} Default: `end` minus 1 hour."),
    query("end", TIME, f"{TIME_TEXT} Default: now."),
]
SERVICES = {
    "/api/services": {
        "get": op(
            "list_services",
            "Services seen in the window, with counts, error rate and p99",
            ok("Services.", obj({"services": array(SERVICE_ENTRY)})),
            params=SERVICE_WINDOW,
        )
    },
    "/api/services/{name}": {
        "parameters": [path_param("name", STRING)],
        "get": op(
            "get_service",
            "One service, with who calls it and what it calls",
            ok(
                "The service.",
                {
                    "allOf": [
                        {k: v for k, v in SERVICE_ENTRY.items() if k != "additionalProperties"},
                        {
                            "type": "object",
                            "properties": {
                                "upstream": array(NEIGHBOUR),
                                "downstream": array(NEIGHBOUR),
                            },
                            "required": ["upstream", "downstream"],
                        },
                    ]
                },
            ),
            params=SERVICE_WINDOW,
            errs=FOUND,
        ),
    },
    "/api/service-map": {
        "get": op(
            "service_map",
            "Who calls whom: Cytoscape.js elements",
            ok(
                "Elements.",
                obj(
                    {
                        "nodes": array(
                            obj(
                                {
                                    "data": obj(
                                        {
                                            "id": STRING,
                                            "label": STRING,
                                            "type": NODE_TYPE,
                                            "virtual": {"type": "boolean"},
                                            "spanCount": UINT,
                                            "errorRate": NUMBER,
                                            "p99Ms": _NULLABLE_NUMBER,
                                        },
                                        required=["id", "label", "type", "virtual"],
                                    )
                                }
                            )
                        ),
                        "edges": array(
                            obj(
                                {
                                    "data": obj(
                                        {
                                            "id": STRING,
                                            "source": STRING,
                                            "target": STRING,
                                            "callCount": UINT,
                                            "errorCount": UINT,
                                            "p99Ms": _NULLABLE_NUMBER,
                                        }
                                    )
                                }
                            )
                        ),
                    }
                ),
            ),
            params=SERVICE_WINDOW,
        )
    },
    "/api/service-map/cycles": {
        "get": op(
            "service_map_cycles",
            "The elementary cycles of the service map (at most 100)",
            ok(
                "Cycles.",
                obj({"cycles": array(array(STRING)), "truncated": {"type": "boolean"}}),
            ),
            params=SERVICE_WINDOW,
        )
    },
}
_WEBHOOK_IN: Schema = obj(
    {
        "url": {"type": "string", "format": "uri"},
        "format": {"enum": ["generic", "slack", "alertmanager"], "default": "generic"},
        "secret": {"type": "string", "minLength": 16},
    },
    required=["url"],
)
_CONFIG_IN: Schema = obj(
    {
        "name": STRING,
        "description": STRING,
        "serviceId": _NULLABLE_STRING,
        "metricName": STRING,
        "labels": {"type": "object", "additionalProperties": STRING},
        "aggregation": STRING,
        "condition": {"enum": ["gt", "gte", "lt", "lte"]},
        "threshold": NUMBER,
        "windowSeconds": {"type": "integer", "minimum": 1},
        "forSeconds": {"type": "integer", "minimum": 0},
        "severity": {"enum": ["critical", "error", "warning", "info"]},
        "webhooks": array(_WEBHOOK_IN),
        "enabled": {"type": "boolean"},
    },
    required=["name", "metricName", "condition", "threshold", "windowSeconds"],
)
_CONFIG_OUT: Schema = obj(
    {
        **{k: v for k, v in _CONFIG_IN["properties"].items() if k != "webhooks"},
        "id": STRING,
        "webhooks": array(
            obj(
                {
                    "url": STRING,
                    "format": STRING,
                    "secretSet": {"type": "boolean"},
                    "secret": STRING,
                },
                required=["url", "format", "secretSet"],
            )
        ),
    }
)
_TIME_OR_NULL: Schema = {"type": ["string", "null"], "description": "RFC 3339 UTC"}
_INCIDENT: Schema = obj(
    {
        "id": STRING,
        "configId": STRING,
        "name": STRING,
        "severity": STRING,
        "serviceId": _NULLABLE_STRING,
        "metricName": STRING,
        "condition": STRING,
        "threshold": NUMBER,
        "value": NUMBER,
        "lastValue": _NULLABLE_NUMBER,
        "state": {"enum": ["firing", "resolved"]},
        "startedAt": STRING,
        "resolvedAt": _TIME_OR_NULL,
        "acknowledged": {"type": "boolean"},
        "acknowledgedBy": _NULLABLE_STRING,
        "acknowledgedAt": _TIME_OR_NULL,
        "deliveries": array(
            obj(
                {
                    "url": STRING,
                    "format": STRING,
                    "event": {"enum": ["firing", "resolved"]},
                    "idempotencyKey": STRING,
                    "status": {"enum": ["pending", "delivered", "failed"]},
                    "attempts": UINT,
                    "lastError": _NULLABLE_STRING,
                    "lastStatusCode": {"type": ["integer", "null"]},
                    "deliveredAt": _TIME_OR_NULL,
                }
            )
        ),
    }
)
_CONFIG_BODY = {"required": True, "content": json_content(_CONFIG_IN)}
_CONFIG_PATH = path_param("id", STRING)
ALERTS = {
    "/api/alerts/configs": {
        "get": op(
            "list_alert_configs", "Alert rules", ok("Rules.", obj({"configs": array(_CONFIG_OUT)}))
        ),
        "post": op(
            "create_alert_config",
            "Create a rule (admin); webhook secrets are shown in this answer only",
            {"description": "Created.", "content": json_content(_CONFIG_OUT)},
            status="201",
            requestBody=_CONFIG_BODY,
            errs=(*READ, 413),
        ),
    },
    "/api/alerts/configs/{id}": {
        "parameters": [_CONFIG_PATH],
        "get": op("get_alert_config", "One rule", ok("The rule.", _CONFIG_OUT), errs=FOUND),
        "put": op(
            "replace_alert_config",
            "Replace a rule (admin); webhooks keeping their URL keep their secret",
            ok("The rule.", _CONFIG_OUT),
            requestBody=_CONFIG_BODY,
            errs=(*FOUND, 413),
        ),
        "delete": op(
            "delete_alert_config",
            "Delete a rule (admin)",
            {"description": "Deleted."},
            status="204",
            errs=FOUND,
        ),
    },
    "/api/alerts/incidents": {
        "get": op(
            "list_incidents",
            "Incidents, newest first",
            ok("Incidents.", obj({"incidents": array(_INCIDENT)})),
            params=[
                query("state", {"enum": ["firing", "resolved"]}, "Only this state."),
                query("acknowledged", {"enum": ["true", "false"]}, "Only (not) acknowledged."),
                limit(),
            ],
        )
    },
    "/api/alerts/incidents/{id}/acknowledge": {
        "parameters": [path_param("id", STRING)],
        "post": op(
            "acknowledge_incident",
            "Set the acknowledged flag of an incident",
            ok("The incident.", _INCIDENT),
            requestBody={
                "required": True,
                "content": json_content(
                    obj({"acknowledgedBy": {"type": "string", "minLength": 1}})
                ),
            },
            errs=(*FOUND, 413),
        ),
    },
    "/api/alerts/evaluate": {
        "post": op(
            "evaluate_alerts",
            "Evaluate the tenant's rules now (admin)",
            ok(
                "What happened.",
                obj(
                    {
                        "evaluated": UINT,
                        "fired": array(STRING),
                        "resolved": array(STRING),
                        "errors": {"type": "object", "additionalProperties": STRING},
                        "seconds": NUMBER,
                    }
                ),
            ),
        )
    },
}
SQL = {
    "/api/query": {
        "post": op(
            "sql_query",
            "Read-only SQL over the views spans, logs and metric_points (admin scope)",
            ok(
                "Columns, their DuckDB type names, rows (at most `sql.max_rows` rows and "
                "`sql.max_bytes` of JSON; `truncated` past either). Values by type: integers "
                "beyond ±2^53 as decimal strings, NaN/Infinity/-Infinity as strings, dates, "
                "times and intervals as DuckDB's text (`infinity` included), BLOB as base64, "
                "JSON as its value, MAP as an object, UNION as {member: value} (README).",
                obj(
                    {
                        "columns": array(STRING),
                        "types": array(STRING),
                        "rows": array({"type": "array"}),
                        "truncated": {"type": "boolean"},
                    }
                ),
            ),
            text="One SELECT; anything else, table functions, other tables and settings "
            "naming paths are a 400. Runs in a sandbox process over the caller's tenant only; "
            "stopped after `sql.timeout` (503 `query_timeout`); a query needing more memory "
            "than `sql.memory_limit` allows is a 400; beyond `sql.max_concurrent` queries "
            "at once, 429 with Retry-After. The body is at most 64 KiB.",
            requestBody={
                "required": True,
                "content": json_content(obj({"query": {"type": "string", "minLength": 1}})),
            },
            errs=(*READ, 413, 429),
        )
    }
}

SESSION = obj(
    {
        "tenant": STRING,
        "scopes": array({"type": "string", "enum": ["ingest", "read", "admin"]}),
        "anonymous": {"type": "boolean"},
        "otlp": obj(
            {"grpcPort": UINT, "httpPort": UINT, "tls": {"type": "boolean"}},
            required=["grpcPort", "httpPort", "tls"],
        ),
    },
    required=["tenant", "scopes", "anonymous", "otlp"],
)
_HTML = {"text/html": {"schema": STRING}}
_UI_FILE = {
    "description": "index.html for every view path (no-cache), or a bundle file: hashed "
    "names under `assets/` are cached for a year. Always with a strict "
    "Content-Security-Policy.",
    "content": {
        **_HTML,
        "text/javascript": {"schema": STRING},
        "text/css": {"schema": STRING},
        "image/svg+xml": {"schema": STRING},
    },
}
UI = {
    "/api/session": {
        "get": op(
            "session",
            "The presented token's tenant and scopes, and this server's OTLP ports",
            ok("Who is calling.", SESSION),
            text="Any valid token (any scope); the web UI uses it to sign in and to offer "
            "admin-only actions to admins.",
            errs=(400, 401, 403, 500),
        )
    },
    "/": {
        "get": op(
            "root",
            "A browser (`Accept: text/html`) is redirected to the web UI",
            {"description": "Not a browser: the JSON 404 of every unknown path."},
            status="404",
            security=[],
            errs=(403,),
            more={"302": {"description": "To `/ui/`."}},
        )
    },
    "/ui": {
        "get": op(
            "ui_root",
            "Redirect to `/ui/`",
            {"description": "To `/ui/`."},
            status="308",
            security=[],
            errs=(403,),
        )
    },
    "/ui/{path}": {
        "get": op(
            "ui",
            "The web UI (no token needed to load it; it signs in against the API)",
            _UI_FILE,
            params=[path_param("path", STRING | {"description": "A view path, or a bundle file."})],
            security=[],
            errs=(403, 404, 500),
        )
    },
}
