"""Services, the service map and its cycles, from multi-service traces sent by the
OpenTelemetry SDK over HTTP and gRPC, with spans exported in reverse order and in separate
requests (children before their parents)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from otterscope.services.graph import Edge, cycles
from tests.conftest import RunningServer

SERVICES = ("frontend", "cart", "checkout", "mailer")


def exporter(server: RunningServer, transport: str) -> Any:
    if transport == "http":
        return HttpSpanExporter(endpoint=f"{server.url}/v1/traces", timeout=10)
    return GrpcSpanExporter(endpoint=server.grpc_target, insecure=True, timeout=10)


def record() -> list[ReadableSpan]:
    """A small shop, one tracer provider (resource) per service; spans kept in memory."""
    memory = InMemorySpanExporter()
    tracers = {}
    for name in SERVICES:
        provider = TracerProvider(
            resource=Resource.create(
                {"service.name": name, "service.version": "1.2", "deployment.environment": "prod"}
            )
        )
        provider.add_span_processor(SimpleSpanProcessor(memory))
        tracers[name] = provider.get_tracer("shop")
    fe, cart, checkout, mailer = (tracers[n] for n in SERVICES)
    server, client, producer_kind = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER
    for i in range(3):
        with fe.start_as_current_span("GET /cart", kind=server):
            with (
                fe.start_as_current_span("call cart", kind=client),
                cart.start_as_current_span("GET /items", kind=server) as served,
            ):
                if i == 0:
                    served.set_status(Status(StatusCode.ERROR))
                db = {"db.system": "postgresql"}
                with cart.start_as_current_span("SELECT items", kind=client, attributes=db):
                    pass
                with (
                    cart.start_as_current_span("call checkout", kind=client),
                    checkout.start_as_current_span("POST /quote", kind=server),
                ):
                    # checkout calls back into cart: a cycle
                    with (
                        checkout.start_as_current_span("call cart", kind=client),
                        cart.start_as_current_span("GET /price", kind=server),
                    ):
                        pass
                    with checkout.start_as_current_span("publish", kind=producer_kind) as sent:
                        producer = sent.get_span_context()
            external = {"peer.service": "payments-gw"}
            with fe.start_as_current_span("charge", kind=client, attributes=external):
                pass
            # checkout's side of this call never reports; peer.service names a service
            # that does: an edge to it.
            known = {"peer.service": "checkout"}
            with fe.start_as_current_span("call checkout", kind=client, attributes=known):
                pass
        # The consumer starts a trace of its own, linked to the producer.
        with mailer.start_as_current_span(
            "process order",
            kind=SpanKind.CONSUMER,
            links=[Link(producer)],
            context=trace.set_span_in_context(trace.INVALID_SPAN),
        ):
            pass
    return list(memory.get_finished_spans())


def send(server: RunningServer, transport: str) -> int:
    spans = record()
    out = exporter(server, transport)
    # Every span in a request of its own, in reverse order of ending: a parent (which ends
    # after its children) is stored before them, and the services' spans interleave.
    for span in reversed(spans):
        assert out.export([span]) == SpanExportResult.SUCCESS
    out.shutdown()
    return len(spans)


def get(server: RunningServer, path: str, **params: str) -> Any:
    r = httpx.get(f"{server.url}{path}", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_services_map_and_cycles(server: RunningServer, transport: str) -> None:
    total = send(server, transport)

    services = {s["name"]: s for s in get(server, "/api/services")["services"]}
    assert set(services) == set(SERVICES)
    cart = services["cart"]
    assert cart["spanCount"] == 3 * 4  # GET /items, SELECT, call checkout, GET /price
    assert cart["errorCount"] == 1
    assert cart["errorRate"] == pytest.approx(1 / 12)
    assert (cart["version"], cart["environment"], cart["language"]) == ("1.2", "prod", "python")
    assert cart["p99Ms"] is not None and cart["p99Ms"] >= 0
    assert int(cart["firstSeenUnixNano"]) <= int(cart["lastSeenUnixNano"])
    assert sum(s["spanCount"] for s in services.values()) == total

    elements = get(server, "/api/service-map")
    nodes = {n["data"]["id"]: n["data"] for n in elements["nodes"]}
    assert set(nodes) == {*SERVICES, "database:postgresql", "external:payments-gw"}
    assert nodes["database:postgresql"] == {
        "id": "database:postgresql",
        "label": "postgresql",
        "type": "database",
        "virtual": True,
    }
    assert nodes["cart"]["virtual"] is False and nodes["cart"]["type"] == "service"
    edges = {(e["data"]["source"], e["data"]["target"]): e["data"] for e in elements["edges"]}
    assert set(edges) == {
        ("frontend", "cart"),
        ("frontend", "checkout"),  # peer.service of a reporting service: a real edge
        ("frontend", "external:payments-gw"),
        ("cart", "database:postgresql"),
        ("cart", "checkout"),
        ("checkout", "cart"),
        ("checkout", "mailer"),  # producer -> consumer, through the link
    }
    assert edges[("frontend", "cart")]["callCount"] == 3
    assert edges[("frontend", "cart")]["errorCount"] == 1
    assert edges[("cart", "checkout")]["errorCount"] == 0
    assert edges[("frontend", "cart")]["id"] == "frontend->cart"
    assert all(e["p99Ms"] is not None for e in edges.values())

    assert get(server, "/api/service-map/cycles") == {
        "cycles": [["cart", "checkout"]],
        "truncated": False,
    }

    detail = get(server, "/api/services/cart")
    assert detail["name"] == "cart"
    assert {(u["id"], u["callCount"]) for u in detail["upstream"]} == {
        ("frontend", 3),
        ("checkout", 3),
    }
    assert {(d["id"], d["type"]) for d in detail["downstream"]} == {
        ("checkout", "service"),
        ("database:postgresql", "database"),
    }


def test_a_window_without_the_calls_is_empty(server: RunningServer) -> None:
    send(server, "http")
    past = {"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T01:00:00Z"}
    assert get(server, "/api/services", **past) == {"services": []}
    assert get(server, "/api/service-map", **past) == {"nodes": [], "edges": []}
    r = httpx.get(f"{server.url}/api/services/cart", params=past)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = httpx.get(f"{server.url}/api/service-map", params={"service": "x"})
    assert r.status_code == 400
    assert "unknown parameter" in r.json()["error"]["message"]


def test_cycles_are_elementary_found_once_and_capped() -> None:
    def edges(*pairs: str) -> list[Edge]:
        return [Edge(p[0], p[1], 1, 0, None) for p in pairs]

    found, truncated = cycles(edges("ab", "ba", "bc", "ca", "cc", "cd"))
    assert (found, truncated) == ([["a", "b"], ["a", "b", "c"]], False)
    assert cycles(edges("ab", "bc")) == ([], False)
    # A complete graph on 8 nodes has thousands of elementary cycles.
    complete = edges(*(f"{i}{j}" for i in "01234567" for j in "01234567" if i != j))
    found, truncated = cycles(complete)
    assert len(found) == 100 and truncated
    assert len({tuple(c) for c in found}) == 100
    for cycle in found:
        assert len(set(cycle)) == len(cycle)
        assert cycle[0] == min(cycle)
