"""One process, everything in it: store, writer, maintenance, OTLP/gRPC and the HTTP port.

Start-up opens the store before any port listens. SIGTERM/SIGINT: stop listening and let
in-flight requests finish (they answer once their data is committed), then drain the
writer, close the store and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import uvicorn

from otterscope import __version__
from otterscope.alerting.delivery import Deliverer
from otterscope.alerting.evaluator import Evaluator
from otterscope.alerting.service import Alerting
from otterscope.alerting.state import AlertState
from otterscope.api.app import build_app
from otterscope.api.auth import Authenticator
from otterscope.api.connections import ConnectionLimits, protocol_class
from otterscope.api.guard import Guard, is_loopback
from otterscope.api.sql import clear_workspace
from otterscope.api.state import AppState
from otterscope.config import Settings
from otterscope.errors import ConfigError, OtterscopeError, StartupError
from otterscope.ingest.budget import MemoryBudget
from otterscope.ingest.decode import DecodePool
from otterscope.ingest.grpc import OtlpGrpcReceiver
from otterscope.ingest.http import OtlpHttpReceiver
from otterscope.ingest.idempotency import KeyGate
from otterscope.ingest.service import IngestService
from otterscope.ingest.writer import Writer
from otterscope.live.hub import LiveHub
from otterscope.metrics.accumulator import Accumulator
from otterscope.metrics.servicegraph import Lag
from otterscope.metrics.state import MetricsState
from otterscope.otlp.anyvalue import Limits
from otterscope.quarantine import Quarantine
from otterscope.query.cursor import CursorCodec, load_key
from otterscope.selfmetrics import SelfMetrics
from otterscope.startup import bind, check_free, check_tls, claim_data_dir
from otterscope.store.embedded.segment import compact
from otterscope.store.embedded.store import EmbeddedOptions, EmbeddedStore

log = logging.getLogger("otterscope")

MAINTENANCE_PERIOD_S = 5.0
DISK_POLL_S = 1.0  # how soon gRPC health follows the disk filling up or getting room


def check_exposure(settings: Settings) -> None:
    host = settings["server.host"]
    if settings.tokens or settings["server.allow_anonymous"] or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to listen on {host!r} without a token: anyone who can reach it could read "
        "and write your telemetry. Set one with OTTERSCOPE_AUTH_TOKEN=<secret> (or auth.tokens "
        "in the config file), or pass --allow-anonymous if that is really what you want."
    )


def return_freed_arrow_memory() -> None:
    """Arrow's memory (hot rows, sealing, decoded batches) from jemalloc with no decay, so
    memory freed after a seal goes back to the system at once. The default pool (mimalloc)
    kept a seal's freed working set resident while the next one grew (measured: its arena
    held ~480 MiB of a 823 MiB server). A pyarrow without jemalloc keeps its default."""
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        # A pyarrow built without jemalloc (not the PyPI wheels): said once, not hidden.
        log.info("pyarrow has no jemalloc: Arrow keeps its default memory pool")
        return
    pa.jemalloc_set_decay_ms(0)
    pa.set_memory_pool(pool)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: this process decides how to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Server:
    def __init__(self, settings: Settings) -> None:
        check_exposure(settings)
        self.settings = settings
        s = settings
        if s["server.tls_cert"]:
            check_tls(s["server.tls_cert"], s["server.tls_key"])
        # Claimed before the store opens: a second server must not touch the data dir, and
        # a port in use is reported before anything else is done.
        self._lock = claim_data_dir(s.data_dir)
        return_freed_arrow_memory()  # before the store holds any Arrow memory
        host = s["server.host"]
        self._http_sockets = bind(host, s["server.http_port"], "HTTP", "--http-port")
        check_free(host, s["server.grpc_port"], "gRPC", "--grpc-port")
        self.metrics = SelfMetrics()
        quarantine = Quarantine(s.data_dir, self.metrics.quarantined_files)
        self.store = EmbeddedStore(
            s.data_dir,
            EmbeddedOptions(
                memory_limit=s["storage.memory_limit"],
                threads=s["storage.threads"],
                maintenance_memory_limit=s["storage.maintenance_memory_limit"],
                seal_interval_s=s["storage.seal_interval"],
                seal_rows=s["storage.seal_rows"],
                seal_bytes=s["storage.seal_bytes"],
                hot_bytes_budget=s["storage.hot_bytes_budget"],
                query_timeout_s=s["storage.query_timeout"],
                retention_s=tuple(
                    (sig, s[f"retention.{sig}"]) for sig in ("traces", "logs", "metrics")
                ),
                max_bytes=s["retention.max_bytes"],
                max_unsealed=2,
                idempotency_ttl_s=s["ingest.idempotency_ttl"],
                idempotency_max_keys=s["ingest.idempotency_max_keys"],
            ),
            quarantine,
        )
        self.writer = Writer(
            self.store,
            max_items=s["ingest.max_commit_items"],
            max_spans_per_trace=s["ingest.max_spans_per_trace"],
            retry_after=s["ingest.retry_after"],
        )
        self.writer.add_listener(
            lambda _seq, _b, seconds: self.metrics.commit_seconds.observe(seconds)
        )
        accumulator = Accumulator(
            s["metrics.exclude_resource_attributes"],
            s["metrics.max_series_per_metric"],
            lambda tenant, name, points: self.metrics.metric_overflow_points.inc(
                points, tenant=tenant, metric=name
            ),
        )
        self.metrics_state = MetricsState(
            s.data_dir,
            accumulator,
            self.store,
            quarantine,
            graph_lag=Lag(s["metrics.service_graph_wait"]),
        )
        self.metrics_state.load()
        clear_workspace(s.data_dir)  # SQL sandbox exports a crash may have left
        alert_state = AlertState(s.data_dir, quarantine)
        self.alerting = Alerting(
            alert_state,
            Evaluator(
                self.store,
                alert_state,
                accumulator.metric_names,
                accumulator.excluded,
                self.metrics_state.refresh,
            ),
            Deliverer(
                alert_state,
                s["alerts.webhook_allowed_hosts"],
                s["alerts.webhook_timeout"],
                s["alerts.max_delivery_attempts"],
            ),
            s["alerts.evaluation_interval"],
            s["alerts.webhook_allowed_hosts"],
        )
        self.live = LiveHub(buffer_messages=s["live.buffer_messages"])
        self.writer.add_listener(self.live.on_commit)
        self.budget = MemoryBudget(s["ingest.memory_budget_bytes"], s["ingest.retry_after"])
        self.auth = Authenticator(settings.tokens, s["auth.extra_header"])
        self.ingest = IngestService(
            self.writer,
            self.budget,
            Limits(s["ingest.attribute_count_limit"], s["ingest.attribute_value_length_limit"]),
            self.metrics,
            s["ingest.max_body_bytes"],
            DecodePool(s["ingest.decode_workers"], s["ingest.retry_after"], compact),
            keys=KeyGate(self.store.key_committed),
        )
        self.state = AppState(
            settings=settings,
            store=self.store,
            writer=self.writer,
            budget=self.budget,
            auth=self.auth,
            metrics=self.metrics,
            cursors=CursorCodec(
                load_key(s["storage.cursor_encryption_key"], s.data_dir, quarantine)
            ),
            live=self.live,
            metrics_state=self.metrics_state,
            alerting=self.alerting,
        )
        self._register_gauges()
        self._stop = threading.Event()
        self._maintenance = threading.Thread(
            target=self._maintain, name="otterscope-maintenance", daemon=True
        )

    def _register_gauges(self) -> None:
        m = self.metrics
        m.gauge(
            "otterscope_queue_bytes",
            "Bytes held by requests being read, decoded and queued.",
            lambda: self.budget.used,
        )
        m.gauge(
            "otterscope_queue_budget_bytes", "The ingest memory budget.", lambda: self.budget.total
        )
        m.gauge(
            "otterscope_queue_items",
            "Items decoded and waiting for the writer.",
            lambda: self.writer.queued_items,
        )
        m.gauge(
            "otterscope_hot_bytes",
            "Memory the rows of the hot segments take (not yet sealed into Parquet).",
            self.store.hot_bytes,
        )
        m.gauge(
            "otterscope_arrow_allocated_bytes",
            "Bytes allocated through Arrow's memory pool (hot rows, sealing, decoded batches).",
            pa.total_allocated_bytes,
        )
        m.gauge(
            "otterscope_duckdb_memory_bytes",
            "Memory the store's DuckDBs hold (queries, caches, the maintenance thread's).",
            self.store.duckdb_memory_bytes,
        )
        m.gauge(
            "otterscope_store_bytes",
            "Bytes the data dir takes on disk.",
            lambda: self.store.layout.disk_bytes(),
        )

    def _maintain(self) -> None:
        last_retention = 0.0
        last_snapshot = time.monotonic()
        interval = self.settings["retention.interval"]
        while not self._stop.is_set():
            self.store.wait_for_work(MAINTENANCE_PERIOD_S)
            if self._stop.is_set():
                break
            now = time.monotonic()
            # A full disk refuses every write, the snapshot too: it waits for room rather
            # than logging the same failure every interval.
            if (
                now - last_snapshot >= self.settings["metrics.snapshot_interval"]
                and self.store.disk_full is None
            ):
                try:
                    self.metrics_state.save()
                except (OSError, OtterscopeError):
                    log.exception("saving the metrics state failed; will try again")
                else:
                    last_snapshot = now
            try:
                self.store.maintain(time.time_ns(), retention=now - last_retention >= interval)
            except Exception:
                log.exception("maintenance failed; will try again")
            else:
                if now - last_retention >= interval:
                    last_retention = now

    async def _follow_disk(self, grpc_receiver: OtlpGrpcReceiver, stop: asyncio.Event) -> None:
        """gRPC health says NOT_SERVING while the disk is full, as /ready answers 503: a
        gRPC load balancer or probe then sends exports elsewhere until there is room."""
        serving = True
        while not stop.is_set():
            full = self.store.disk_full is not None
            if full == serving:
                serving = not full
                await grpc_receiver.set_serving(serving)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), DISK_POLL_S)

    async def run(self) -> int:
        # The writer thread hands DuckDB a batch and waits on the GIL to take the next one;
        # with Python's default 5 ms switch interval the busy event loop starves it (a
        # group commit measured 17 ms alone, 244 ms beside the loop, 45 ms at 0.5 ms).
        sys.setswitchinterval(0.0005)
        s = self.settings
        host = s["server.host"]
        tls = bool(s["server.tls_cert"])
        grpc_receiver = OtlpGrpcReceiver(self.ingest, self.auth)
        grpc_server = grpc_receiver.build_server(
            s["ingest.max_body_bytes"], s["server.header_timeout"]
        )
        grpc_addr = (
            f"[{host}]:{s['server.grpc_port']}"
            if ":" in host
            else f"{host}:{s['server.grpc_port']}"
        )
        try:
            if tls:
                import grpc

                with open(s["server.tls_key"], "rb") as k, open(s["server.tls_cert"], "rb") as c:
                    creds = grpc.ssl_server_credentials([(k.read(), c.read())])
                grpc_server.add_secure_port(grpc_addr, creds)
            else:
                grpc_server.add_insecure_port(grpc_addr)
        except RuntimeError:
            # Free when probed a moment ago: something took it since.
            raise StartupError(
                f"cannot listen on {grpc_addr} for gRPC: choose another port with --grpc-port"
            ) from None
        self.writer.start()
        self._maintenance.start()
        self.alerting.start()
        self.live.start(asyncio.get_running_loop())
        app = Guard(
            build_app(self.state, OtlpHttpReceiver(self.ingest, self.auth)),
            bind_host=host,
            allowed_hosts=s["server.allowed_hosts"],
            cors_origins=s["cors.origins"],
            requires_token=not self.auth.anonymous,
        )
        kwargs: dict[str, Any] = {}
        if tls:
            kwargs = {"ssl_certfile": s["server.tls_cert"], "ssl_keyfile": s["server.tls_key"]}
        limits = ConnectionLimits(
            header_timeout_s=s["server.header_timeout"],
            body_timeout_s=s["server.body_timeout"],
            max_connections=s["server.max_connections"],
            retry_after_s=s["ingest.retry_after"],
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=s["server.http_port"],
            http=protocol_class(limits),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=max(1, math.ceil(s["server.shutdown_timeout"])),
            **kwargs,
        )
        http_server = _QuietServer(config)
        await grpc_server.start()
        await grpc_receiver.set_serving(True)
        http_task = asyncio.create_task(http_server.serve(sockets=self._http_sockets))
        while not http_server.started:
            if http_task.done():
                try:
                    await http_task
                except OSError as exc:
                    raise StartupError(
                        f"the HTTP server could not start on {host}:{s['server.http_port']}"
                        f" ({exc.strerror or exc}): check --host and --http-port"
                    ) from None
                raise ConfigError(f"could not listen on {host}:{s['server.http_port']}")
            await asyncio.sleep(0.01)
        self.state.ready = True
        scheme = "https" if tls else "http"
        log.info(
            "otterscope %s: OTLP/HTTP and API on %s://%s:%s, OTLP/gRPC on %s, data in %s",
            __version__,
            scheme,
            host,
            s["server.http_port"],
            grpc_addr,
            s.data_dir.resolve(),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        health = asyncio.create_task(self._follow_disk(grpc_receiver, stop))
        await stop.wait()
        await health
        log.info("shutting down: finishing accepted requests")
        self.state.ready = False
        await grpc_receiver.set_serving(False)
        # One deadline for the whole drain: servers, then the writer, then maintenance.
        deadline = time.monotonic() + s["server.shutdown_timeout"]
        grace = s["server.shutdown_timeout"]
        # Live clients first, with 1001 (going away): uvicorn would close them with 1012.
        await self.live.stop()
        http_server.should_exit = True
        await asyncio.gather(grpc_server.stop(grace), http_task)
        self.ingest.decoders.close()
        clean = await asyncio.to_thread(self.writer.drain, max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self.store.wake()
        self._maintenance.join(max(0.0, deadline - time.monotonic()))
        await asyncio.to_thread(self.alerting.stop)
        if clean:
            # Every acknowledged point is applied: the next start replays nothing.
            self.metrics_state.save()
        self.store.close()
        self._lock.release()
        if not clean:
            log.error("shutdown timeout reached before every accepted batch was committed")
            return 1
        log.info("stopped cleanly")
        return 0
