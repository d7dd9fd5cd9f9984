"""The ``grafana/`` folder: provisioning files and dashboards that work against otterscope.

Every dashboard is checked to be a valid Grafana dashboard (panels, targets, data source
uids that the provisioning file defines); every metric and label its PromQL names must be
in what otterscope's ``/metrics`` really exposes; and every expression must return data
from a real Prometheus (Debian's), configured with ``grafana/prometheus/prometheus.yml``,
scraping a real otterscope that received traces from the OpenTelemetry SDK, a serverless
function's metrics through ``otterscope.client``'s middleware, and fired an alert.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from otterscope.client import Telemetry
from otterscope.client.middleware import ASGIMiddleware
from tests.conftest import RunningServer
from tests.test_client_middleware import call
from tests.test_metrics_prometheus import running_prometheus

GRAFANA = Path(__file__).parent.parent / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
TOKEN = "grafana-test-token"
PANEL_TYPES = {"timeseries", "stat", "bargauge", "table", "nodeGraph"}
# What the test puts in place of Grafana's variables (the values its traffic has).
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$service": "frontend|payments",
    "$function": "checkout-fn",
}
# The shapes of the queries Grafana's Tempo data source sends to its service map's Prometheus
# (public/app/plugins/datasource/tempo: request totals, failures, the server histogram).
GRAFANA_TEMPO_SERVICE_GRAPH = (
    "sum by (client, server) (rate(traces_service_graph_request_total[$__range]))",
    "sum by (client, server) (rate(traces_service_graph_request_failed_total[$__range]))",
    "sum by (client, server) (rate(traces_service_graph_request_server_seconds_sum[$__range]))",
    "histogram_quantile(0.9, sum by (le, client, server) "
    "(rate(traces_service_graph_request_server_seconds_bucket[$__range])))",
)
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "or", "and"}


def provisioned() -> dict[str, str]:
    """uid -> type of the provisioned data sources."""
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/otterscope.yaml").read_text())
    return {d["uid"]: d["type"] for d in doc["datasources"]}


def dashboard(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def expressions(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every target of every panel."""
    return [(p["title"], t) for p in doc["panels"] for t in p["targets"]]


def concrete(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    assert "$" not in expr.replace('"$1"', ""), f"an unknown variable in {expr}"
    return expr


def test_provisioning_files() -> None:
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/otterscope.yaml").read_text())
    by_type = {d["type"]: d for d in doc["datasources"]}
    assert set(by_type) == {"prometheus", "tempo", "jaeger"}
    assert by_type["tempo"]["url"].endswith("/tempo")
    assert by_type["jaeger"]["url"].endswith("/jaeger")
    prom_uid = by_type["prometheus"]["uid"]
    assert by_type["tempo"]["jsonData"]["serviceMap"]["datasourceUid"] == prom_uid
    for kind in ("tempo", "jaeger"):
        assert by_type[kind]["jsonData"]["httpHeaderName1"] == "Authorization"
        assert by_type[kind]["secureJsonData"]["httpHeaderValue1"].startswith("Bearer ${")
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/otterscope.yaml").read_text())
    assert providers["providers"][0]["type"] == "file"
    scrape = yaml.safe_load((GRAFANA / "prometheus/prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["honor_labels"] is True and job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_is_valid(path: Path) -> None:
    doc = dashboard(path)
    sources = provisioned()
    assert doc["uid"] and doc["title"] and isinstance(doc["schemaVersion"], int)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    for panel in doc["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in "xywh") and grid["x"] + grid["w"] <= 24
        assert sources[panel["datasource"]["uid"]] == panel["datasource"]["type"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert sources[target["datasource"]["uid"]] == "prometheus"
            assert target["expr"].strip()
    defined = {f"${v['name']}" for v in doc["templating"]["list"]}
    for variable in doc["templating"]["list"]:
        assert sources[variable["datasource"]["uid"]] == "prometheus"
    for _, target in expressions(doc):
        used = set(re.findall(r"\$[a-z_]+", target["expr"])) - {"$__rate_interval", "$__range"}
        assert used <= defined, (used, defined)
    uids = [dashboard(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


def test_every_dashboard_is_there() -> None:
    titles = {dashboard(p)["uid"] for p in DASHBOARDS}
    assert titles == {
        "otterscope-service-overview",
        "otterscope-serverless",
        "otterscope-service-map",
        "otterscope-alerts",
    }
    (node_graph,) = [
        p
        for p in dashboard(GRAFANA / "dashboards/service-map.json")["panels"]
        if p["type"] == "nodeGraph"
    ]
    renames = node_graph["transformations"][0]["options"]["renameByName"]
    assert renames == {"client": "source", "server": "target", "Value": "mainstat"}


# -- against a real otterscope and a real Prometheus ---------------------------------------


def send_sdk_traces(url: str, rounds: int) -> None:
    """frontend -> payments over HTTP (CLIENT and SERVER spans, some failing), payments ->
    PostgreSQL (a DB client span with no server span), as two SDK-instrumented services."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    providers = {}
    for name in ("frontend", "payments"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers))
        )
        providers[name] = provider
    front = providers["frontend"].get_tracer("test")
    pay = providers["payments"].get_tracer("test")
    for i in range(rounds):
        failing = i % 3 == 0
        with front.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
            with front.start_as_current_span("POST", kind=SpanKind.CLIENT) as out:
                ctx = trace.set_span_in_context(out)
                with pay.start_as_current_span("POST /pay", context=ctx, kind=SpanKind.SERVER) as s:
                    with pay.start_as_current_span(
                        "INSERT payments",
                        kind=SpanKind.CLIENT,
                        attributes={"db.system": "postgresql", "db.name": "payments-db"},
                    ):
                        time.sleep(0.002)
                    if failing:
                        s.set_status(Status(StatusCode.ERROR, "card declined"))
            if failing:
                root.set_status(Status(StatusCode.ERROR, "payment failed"))
    for provider in providers.values():
        provider.shutdown()


def serverless_app(t: Telemetry) -> Starlette:
    async def pay(request: Request) -> Response:
        t.counter("invocation_cost_usd", 0.0002, {"http.route": "/pay"})
        return PlainTextResponse("paid")

    async def refund(request: Request) -> Response:
        t.counter("invocation_cost_usd", 0.0001, {"http.route": "/refund/{id}"})
        raise RuntimeError("refunds are down")

    return Starlette(routes=[Route("/pay", pay, methods=["POST"]), Route("/refund/{id}", refund)])


def invoke_function(url: str) -> None:
    """One serverless invocation: its own Telemetry, flushed at the end."""
    t = Telemetry(service_name="checkout-fn", endpoint=url, token=TOKEN)
    app = ASGIMiddleware(serverless_app(t), t)
    statuses = asyncio.run(
        call(app, [("POST", "/pay", {}), ("POST", "/pay", {}), ("GET", "/refund/7", {})])
    )
    assert statuses == [200, 200, 500]
    assert t.flush(), t.last_error


def fire_alert(srv: RunningServer) -> None:
    rule = {
        "name": "frontend errors",
        "serviceId": "frontend",
        "metricName": "error_rate",
        "condition": "gt",
        "threshold": 0.1,
        "windowSeconds": 600,
        "severity": "critical",
    }
    r = httpx.post(f"{srv.url}/api/alerts/configs", json=rule, headers=srv.headers(), timeout=30)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{srv.url}/api/alerts/evaluate", headers=srv.headers(), timeout=30)
    assert r.status_code == 200 and r.json()["fired"], r.text


def exposed(srv: RunningServer) -> dict[str, set[str]]:
    """Metric name -> label names, parsed from the tenant's ``/metrics`` exposition."""
    r = httpx.get(f"{srv.url}/metrics", headers=srv.headers(), timeout=30)
    assert r.status_code == 200, r.text
    out: dict[str, set[str]] = {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$")
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = sample.match(line)
        assert m, line
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2) or ""))
        out.setdefault(m.group(1), set()).update(labels)
    return out


def names_and_labels(expr: str) -> tuple[dict[str, set[str]], set[str], set[str]]:
    """(metric -> the labels its selector matches on, labels grouped by or shown, labels
    the expression makes with label_join/label_replace)."""
    metrics: dict[str, set[str]] = {}
    for name, body in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\}|\[)", expr):
        if name in PROMQL_WORDS:
            continue
        matchers = re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", body)
        metrics.setdefault(name, set()).update(matchers)
    grouped = {
        label.strip()
        for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr)
        for label in group.split(",")
        if label.strip()
    }
    made = set(re.findall(r'label_(?:join|replace)\([^"]*"([^"]+)"', expr))
    replaced_from = re.findall(r'label_replace\([^"]*"[^"]+", "[^"]*", "([^"]+)"', expr)
    joined = re.findall(r'label_join\([^"]*"[^"]+", "[^"]*", ((?:"[^"]+",?\s*)+)\)', expr)
    for sources in joined:
        grouped.update(re.findall(r'"([^"]+)"', sources))
    grouped.update(replaced_from)
    return metrics, grouped, made


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=30)
    assert r.status_code == 200, f"{expr}: {r.text}"
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


@pytest.fixture
def otterscope(make_server: Any) -> RunningServer:
    srv: RunningServer = make_server(
        token=TOKEN,
        env={
            "OTTERSCOPE_METRICS__SERVICE_GRAPH_WAIT": "0s",
            "OTTERSCOPE_ALERTS__EVALUATION_INTERVAL": "1h",
        },
    )
    return srv


@pytest.fixture
def prometheus(tmp_path: Path, otterscope: RunningServer) -> Iterator[str]:
    """Prometheus with the grafana/ folder's scrape configuration, pointed at the server."""
    token_file = tmp_path / "otterscope-token"
    token_file.write_text(TOKEN)
    doc = yaml.safe_load((GRAFANA / "prometheus/prometheus.yml").read_text())
    (job,) = doc["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [f"127.0.0.1:{otterscope.http_port}"]}]
    scrape = yaml.safe_dump({"scrape_configs": doc["scrape_configs"]})
    with running_prometheus(tmp_path, scrape) as url:
        yield url


def test_every_expression_uses_what_otterscope_exposes_and_returns_data(
    otterscope: RunningServer, prometheus: str
) -> None:
    # Prometheus starts scraping a few seconds after it is ready (target updates are batched).
    deadline = time.monotonic() + 60
    while not query(prometheus, 'up{job="otterscope"} == 1'):
        assert time.monotonic() < deadline, "Prometheus never scraped otterscope"
        time.sleep(0.5)
    # Two rounds of traffic a few scrapes apart, so every rate has a rise to show.
    for _ in range(2):
        send_sdk_traces(otterscope.url, rounds=6)
        invoke_function(otterscope.url)
        time.sleep(4)
    fire_alert(otterscope)
    time.sleep(3)
    have = exposed(otterscope)

    checked = 0
    for path in DASHBOARDS:
        doc = dashboard(path)
        for title, target in expressions(doc):
            expr = concrete(target["expr"])
            where = f"{path.name} / {title}: {expr}"
            metrics, grouped, made = names_and_labels(expr)
            assert metrics, where
            available = set(made)
            for name, matchers in metrics.items():
                assert name in have, f"{where}: otterscope exposes no {name}"
                assert matchers <= have[name], f"{where}: {name} has no {matchers - have[name]}"
                available |= have[name]
            shown = set(re.findall(r"\{\{(\w+)\}\}", target.get("legendFormat", "")))
            assert (grouped | shown) - {"le"} <= available, f"{where}: {available}"
            result = query(prometheus, expr)
            assert result, f"{where}: no data"
            values = [float(r["value"][1]) for r in result]
            assert any(math.isfinite(v) for v in values), f"{where}: {result}"
            checked += 1
    assert checked >= 20

    # The service graph reached Prometheus with Tempo's labels, virtual database node included.
    edges = {
        # An empty label is no label to Prometheus (Tempo's plain requests have none either).
        (r["metric"]["client"], r["metric"]["server"], r["metric"].get("connection_type", ""))
        for r in query(prometheus, "traces_service_graph_request_total")
    }
    assert edges == {
        ("frontend", "payments", ""),
        ("payments", "payments-db", "database"),
        ("user", "frontend", "virtual_node"),
        ("user", "checkout-fn", "virtual_node"),  # the function's requests come from outside
    }, edges
    # The queries Grafana's Tempo data source sends for its Service graph tab.
    for expr in GRAFANA_TEMPO_SERVICE_GRAPH:
        result = query(prometheus, concrete(expr))
        assert {(r["metric"]["client"], r["metric"]["server"]) for r in result} >= {
            ("frontend", "payments")
        }, expr
