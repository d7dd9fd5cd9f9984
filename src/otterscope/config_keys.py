"""Every configuration key: its section, name, default, parser and help text (``KEYS``).

``KEYS`` is the single source of truth: the loader (``config.py``), the ``serve --help``
text and the README's table all come from it (a test checks the README against it). The
parsers here turn a value from a flag, the environment or the file into its type, or raise
``ValueError`` saying what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_UNITS_B = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_seconds(value: Any) -> float:
    """``30``, ``30s``, ``250ms``, ``2h``, ``7d`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, (int, float)):
        return float(value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*", str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 15m, 7d)")
    return float(m.group(1)) * _UNITS_S[m.group(2) or "s"]


def parse_bytes(value: Any) -> int:
    """``16777216``, ``16MiB``, ``1GB`` -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size")
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS_B:
        raise ValueError(f"{value!r} is not a size (e.g. 16MiB, 1GB)")
    return int(float(m.group(1)) * _UNITS_B[m.group(2).lower()])


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not re.fullmatch(r"\s*[+-]?\d+\s*", str(value)):
        raise ValueError(f"{value!r} is not a whole number (e.g. 10, 4318)")
    return int(value)


def _positive_int(value: Any) -> int:
    number = _int(value)
    if number < 1:
        raise ValueError(f"{value!r} is not 1 or more")
    return number


def _positive_size(value: Any) -> int:
    size = parse_bytes(value)
    if size < 1:
        raise ValueError(f"{value!r} is not a size above 0")
    return size


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    default: Any
    parse: Callable[[Any], Any]
    help: str
    file_only: bool = False
    flag: str | None = None

    @property
    def env(self) -> str:
        return f"OTTERSCOPE_{self.section.upper()}__{self.name.upper()}"

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


KEYS: tuple[Key, ...] = (
    Key("server", "host", "127.0.0.1", _str, "Address both ports bind to.", flag="--host"),
    Key(
        "server",
        "http_port",
        4318,
        _int,
        "OTLP/HTTP, REST API and WebSocket port.",
        flag="--http-port",
    ),
    Key(
        "server",
        "grpc_port",
        4317,
        _int,
        "OTLP/gRPC port (also grpc.health.v1).",
        flag="--grpc-port",
    ),
    Key(
        "server",
        "data_dir",
        "./otterscope-data",
        _str,
        "Where the embedded store keeps its files (also OTTERSCOPE_DATA_DIR).",
        flag="--data-dir",
    ),
    Key(
        "server",
        "tls_cert",
        "",
        _str,
        "PEM certificate; with tls_key, TLS on both ports.",
        flag="--tls-cert",
    ),
    Key("server", "tls_key", "", _str, "PEM private key for tls_cert.", flag="--tls-key"),
    Key(
        "server",
        "allow_anonymous",
        False,
        _bool,
        "Allow a non-loopback host with no token.",
        flag="--allow-anonymous",
    ),
    Key(
        "server",
        "shutdown_timeout",
        30.0,
        parse_seconds,
        "On SIGTERM, how long to finish and commit accepted data.",
    ),
    Key(
        "server",
        "header_timeout",
        10.0,
        parse_seconds,
        "Longest a client may take to send a request's headers (the request line and every "
        "header); then 408 and the connection is closed. gRPC: its HTTP/2 preface.",
    ),
    Key(
        "server",
        "body_timeout",
        60.0,
        parse_seconds,
        "Longest a client may take to send a request body once its headers are in; then the "
        "connection is closed.",
    ),
    Key(
        "server",
        "max_connections",
        1000,
        _int,
        "Open HTTP connections (WebSockets included) at most; one more is answered 503 and closed.",
    ),
    Key(
        "server",
        "allowed_hosts",
        (),
        _str_list,
        "Host header names accepted besides loopback names and the bind host.",
        file_only=True,
    ),
    Key(
        "auth",
        "token",
        "",
        _str,
        "One token with every scope, tenant 'default' (also OTTERSCOPE_AUTH_TOKEN).",
    ),
    Key(
        "auth",
        "tokens",
        (),
        lambda v: v,
        "List of {token, tenant, scopes: [ingest, read, admin]}.",
        file_only=True,
    ),
    Key(
        "auth",
        "extra_header",
        "",
        _str,
        "Another header that may carry the token as its whole value (e.g. Oteleport-Access-Key).",
    ),
    Key(
        "cors",
        "origins",
        (),
        _str_list,
        "Browser origins allowed to send and read (exact, or '*').",
        file_only=True,
    ),
    Key(
        "ingest",
        "max_body_bytes",
        16 * 1024**2,
        parse_bytes,
        "Largest request body after decompression (413 above).",
    ),
    Key(
        "ingest",
        "memory_budget_bytes",
        256 * 1024**2,
        parse_bytes,
        "Bytes of requests being read, decoded and queued; 429 beyond it.",
    ),
    Key("ingest", "retry_after", 1.0, parse_seconds, "Retry-After sent with 429 and 503 answers."),
    Key("ingest", "max_commit_items", 200_000, _int, "Most items one group commit takes."),
    Key(
        "ingest",
        "decode_workers",
        2,
        _int,
        "Processes that decode request bodies off the event loop; 0 decodes on it.",
    ),
    Key(
        "ingest",
        "attribute_count_limit",
        128,
        _int,
        "Attributes kept per item; more are dropped and counted.",
    ),
    Key(
        "ingest",
        "attribute_value_length_limit",
        4096,
        _int,
        "Longest string or bytes attribute value; longer ones are truncated and counted.",
    ),
    Key(
        "ingest",
        "max_spans_per_trace",
        50_000,
        _int,
        "Spans kept per trace; more are rejected through partial_success.",
    ),
    Key(
        "ingest",
        "idempotency_ttl",
        86400.0,
        parse_seconds,
        "How long a committed Idempotency-Key makes a resent request a no-op (0: off).",
    ),
    Key(
        "ingest",
        "idempotency_max_keys",
        100_000,
        _int,
        "Most idempotency keys remembered; the oldest are forgotten first.",
    ),
    Key("storage", "memory_limit", "512MB", _str, "DuckDB memory limit."),
    Key("storage", "threads", 2, _int, "DuckDB worker threads."),
    Key(
        "storage",
        "maintenance_memory_limit",
        "128MB",
        _str,
        "DuckDB memory limit of the maintenance thread (the services cache of settled hours).",
    ),
    Key(
        "storage",
        "seal_interval",
        3600.0,
        parse_seconds,
        "Age of the hot segment at which it is sealed into Parquet.",
    ),
    Key(
        "storage",
        "seal_rows",
        250_000,
        _int,
        "Rows in the hot segment at which it is sealed early (bounds the memory hot rows take).",
    ),
    Key(
        "storage",
        "seal_bytes",
        128 * 1024**2,
        parse_bytes,
        "Memory the hot segment's rows may take before it is sealed early.",
    ),
    Key(
        "storage",
        "hot_bytes_budget",
        192 * 1024**2,
        parse_bytes,
        "Memory the rows of all hot segments together may take, every signal and tenant.",
    ),
    Key(
        "storage",
        "query_timeout",
        30.0,
        parse_seconds,
        "Longest a query may run before it is stopped (503 query_timeout).",
    ),
    Key(
        "storage",
        "cursor_encryption_key",
        "",
        _str,
        "Secret (16+ characters) that seals paging cursors; empty: a key kept in the data dir.",
    ),
    Key(
        "alerts",
        "evaluation_interval",
        30.0,
        parse_seconds,
        "How often every alert rule is evaluated (POST /api/alerts/evaluate also does it).",
    ),
    Key(
        "alerts",
        "webhook_allowed_hosts",
        (),
        _str_list,
        "Hosts alert webhooks may be sent to; empty: any host.",
        file_only=True,
    ),
    Key("alerts", "webhook_timeout", 10.0, parse_seconds, "Time a webhook receiver has to answer."),
    Key(
        "alerts",
        "max_delivery_attempts",
        10,
        _int,
        "Attempts at one webhook notification (exponential backoff) before it is marked failed.",
    ),
    Key(
        "sql",
        "timeout",
        10.0,
        parse_seconds,
        "Longest a POST /api/query statement may run (503 query_timeout); its process is then killed.",
    ),
    Key(
        "sql",
        "max_rows",
        10_000,
        _int,
        "Rows a POST /api/query answer holds at most (truncated: true past it).",
    ),
    Key(
        "sql",
        "memory_limit",
        "256MB",
        _positive_size,
        "Memory the SQL sandbox's DuckDB may use; its process may hold this, twice "
        "sql.max_bytes and 512 MiB more.",
    ),
    Key(
        "sql",
        "max_bytes",
        "16MiB",
        _positive_size,
        "Size a POST /api/query answer's JSON has at most (truncated: true past it).",
    ),
    Key(
        "sql",
        "max_concurrent",
        2,
        _positive_int,
        "POST /api/query statements running at once; more are answered 429 with Retry-After.",
    ),
    Key("retention", "traces", 7 * 86400.0, parse_seconds, "How long spans are kept."),
    Key("retention", "logs", 7 * 86400.0, parse_seconds, "How long log records are kept."),
    Key("retention", "metrics", 7 * 86400.0, parse_seconds, "How long metric points are kept."),
    Key(
        "retention",
        "max_bytes",
        0,
        parse_bytes,
        "Total size of sealed files; oldest deleted beyond it (0 = off).",
    ),
    Key("retention", "interval", 60.0, parse_seconds, "How often retention runs."),
    Key(
        "live",
        "buffer_messages",
        256,
        _int,
        "Messages waiting for one /api/ws client; a client further behind is closed (1013).",
    ),
    Key(
        "metrics",
        "exclude_resource_attributes",
        ("service.instance.id",),
        _str_list,
        "Resource attributes left out of a metric series' identity (per-invocation ones).",
        file_only=True,
    ),
    Key(
        "metrics",
        "promote_resource_attributes",
        (),
        _str_list,
        "Resource attributes exposed as labels on every series of their resource, besides target_info.",
        file_only=True,
    ),
    Key(
        "metrics",
        "max_series_per_metric",
        2000,
        _int,
        "Series one metric may have per tenant; points of further series go to its overflow series.",
    ),
    Key(
        "metrics",
        "stale_after",
        3600.0,
        parse_seconds,
        "Series not updated for this long are left out of /metrics (their state is kept).",
    ),
    Key(
        "metrics",
        "snapshot_interval",
        60.0,
        parse_seconds,
        "How often the accumulated metrics state is snapshotted to the data dir.",
    ),
    Key(
        "metrics",
        "service_graph_wait",
        10.0,
        parse_seconds,
        "How long a client span waits for its server span before the service graph calls its callee a virtual node.",
    ),
)
