"""A real Prometheus scrapes otterscope while stateless "invocations" push delta metrics
through ``otterscope.client``; otterscope restarts in the middle. Prometheus's own HTTP API
must show the right counter value, no counter reset, and the right histogram quantile.
A Prometheus scrape asks for OpenMetrics: exemplars recorded by the OpenTelemetry SDK inside
a span reach Prometheus's exemplar storage with the span's trace id.

Prometheus is the Debian package; it is installed here when missing (as root), and the test
fails, not skips, when it cannot be.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otterscope.client import Telemetry
from tests.conftest import RunningServer, free_port


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"],
        check=True,
        env=env,
        timeout=900,
    )
    found = shutil.which("prometheus")
    assert found, "the prometheus package installed no prometheus binary"
    return found


TOKEN = "s3cret"  # the README's


@pytest.fixture
def server(make_server: Any) -> RunningServer:
    """A server that needs a token: Prometheus scrapes it with the README's configuration."""
    running: RunningServer = make_server(token=TOKEN)
    return running


def readme_scrape_config(http_port: int) -> str:
    """The README's scrape configuration, pointed at this server."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- prometheus-scrape-config -->", 1)[1]
    block = block.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "honor_labels: true" in block and f"credentials: {TOKEN}" in block
    return block.replace("127.0.0.1:4318", f"127.0.0.1:{http_port}")


@contextmanager
def running_prometheus(tmp_path: Path, scrape_config: str) -> Iterator[str]:
    """A real Prometheus scraping every second with ``scrape_config`` (its
    ``scrape_configs``); yields its URL."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n" + scrape_config)
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - the child's lifetime
    proc = subprocess.Popen(
        [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus did not get ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


@pytest.fixture
def prometheus(tmp_path: Path, server: RunningServer) -> Iterator[str]:
    with running_prometheus(tmp_path, readme_scrape_config(server.http_port)) as url:
        yield url


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def wait_for(prom: str, expr: str, want: float, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = query(prom, expr)
        if seen and abs(float(seen[0]["value"][1]) - want) < 1e-9:
            return float(seen[0]["value"][1])
        time.sleep(0.5)
    raise AssertionError(f"{expr}: wanted {want}, Prometheus has {seen}")


def invoke(url: str, orders: int, durations: list[float]) -> None:
    """One function invocation: its own Telemetry (its own service.instance.id)."""
    t = Telemetry(service_name="checkout-fn", endpoint=url, token=TOKEN)
    t.counter("orders", orders, {"region": "eu"})
    for d in durations:
        t.histogram("work", d, {"region": "eu"}, boundaries=[10, 50, 100, 500])
    assert t.flush(), t.last_error


def test_prometheus_sees_right_totals_across_an_otterscope_restart(
    server: RunningServer, prometheus: str
) -> None:
    counter = 'orders_total{job="checkout-fn",region="eu"}'
    invoke(server.url, 3, [20, 30, 40])
    invoke(server.url, 2, [30])
    wait_for(prometheus, counter, 5)
    assert server.stop() == 0  # a restart in the middle
    server.start()
    for _ in range(5):
        invoke(server.url, 1, [45, 60])
    wait_for(prometheus, counter, 10)
    invoke(server.url, 10, [400])
    wait_for(prometheus, counter, 20)
    # No reset: the restart neither started the counter again nor counted anything twice.
    (resets,) = query(prometheus, f"resets({counter}[5m])")
    assert float(resets["value"][1]) == 0
    # increase() over the whole run sees 20 minus the first scraped value. Prometheus
    # extrapolates towards the window's ends by up to 1.1 average scrape intervals on each
    # side: the bound comes from its own samples.
    time.sleep(3)  # a few more samples at 20
    (raw,) = query(prometheus, f"{counter}[5m]")
    stamps = [float(t) for t, _ in raw["values"]]
    first, last = float(raw["values"][0][1]), float(raw["values"][-1][1])
    assert first in (3, 5) and last == 20  # the first scrape may fall between two pushes
    sampled = stamps[-1] - stamps[0]
    interval = sampled / (len(stamps) - 1)
    (inc,) = query(prometheus, f"increase({counter}[5m])")
    grew = last - first
    assert grew <= float(inc["value"][1]) <= grew * (sampled + 2.2 * interval) / sampled
    # 15 durations: 9 in (10, 50], 5 in (50, 100], 1 in (100, 500]: the median is in
    # (10, 50]; linear interpolation inside the bucket.
    count = wait_for(prometheus, 'work_count{job="checkout-fn",region="eu"}', 15)
    assert count == 15
    (median,) = query(
        prometheus,
        'histogram_quantile(0.5, sum by (le) (work_bucket{job="checkout-fn"}))',
    )
    assert 10 < float(median["value"][1]) <= 50


def test_prometheus_stores_exemplars_that_link_to_the_trace(
    server: RunningServer, prometheus: str
) -> None:
    resource = Resource.create({"service.name": "payments"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(f"{server.url}/v1/traces", headers=server.headers()))
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(f"{server.url}/v1/metrics", headers=server.headers()),
        export_interval_millis=3_600_000,
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    took = meter_provider.get_meter("pay").create_histogram("pay.duration", unit="ms")
    paid = meter_provider.get_meter("pay").create_counter("payments")
    tracer = tracer_provider.get_tracer("pay")
    with tracer.start_as_current_span("charge") as span:
        took.record(42.0, {"route": "/pay"})  # inside a sampled span: an exemplar
        paid.add(1, {"route": "/pay"})
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert meter_provider.force_flush(10_000)
    meter_provider.shutdown()
    tracer_provider.shutdown()

    def exemplars(expr: str) -> list[dict[str, Any]]:
        now = time.time()
        r = httpx.get(
            f"{prometheus}/api/v1/query_exemplars",
            params={"query": expr, "start": now - 600, "end": now + 60},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = [
            e for series in r.json()["data"] for e in series["exemplars"]
        ]
        return found

    deadline = time.monotonic() + 30
    while not (exemplars("pay_duration_milliseconds_bucket") and exemplars("payments_total")):
        assert time.monotonic() < deadline, "no exemplar reached Prometheus"
        time.sleep(0.5)
    (bucket,) = exemplars("pay_duration_milliseconds_bucket")
    assert bucket["labels"]["trace_id"] == trace_id
    assert float(bucket["value"]) == 42.0
    (count,) = exemplars("payments_total")
    assert count["labels"]["trace_id"] == trace_id
    # The link resolves: otterscope has that trace.
    r = httpx.get(f"{server.url}/api/traces/{trace_id}", headers=server.headers())
    assert r.status_code == 200
    assert [s["name"] for s in r.json()["spans"]] == ["charge"]
