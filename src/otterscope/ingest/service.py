"""What every receiver does with a request once it has its bytes: the one ingest path.

decode (off the event loop for all but small bodies, see decode.py) -> columnar batch (attribute limits applied) -> hold its size in the memory budget
-> writer.submit -> await the commit -> the OTLP response with partial_success. HTTP and
gRPC differ only in how they get bytes and how they answer errors.
"""

from __future__ import annotations

import asyncio

from google.protobuf.message import Message

from otterscope.errors import OtterscopeError
from otterscope.ingest.budget import Lease, MemoryBudget
from otterscope.ingest.decode import DecodePool
from otterscope.ingest.idempotency import KeyGate
from otterscope.ingest.writer import Writer
from otterscope.otlp import wire
from otterscope.otlp.anyvalue import Limits
from otterscope.otlp.wire import Format
from otterscope.selfmetrics import SelfMetrics


class IngestService:
    def __init__(
        self,
        writer: Writer,
        budget: MemoryBudget,
        limits: Limits,
        metrics: SelfMetrics,
        max_body_bytes: int,
        decoders: DecodePool,
        *,
        keys: KeyGate,
    ) -> None:
        self.writer = writer
        self.decoders = decoders
        self.budget = budget
        self.limits = limits
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.keys = keys

    def lease(self) -> Lease:
        return Lease(self.budget)

    async def export(
        self,
        signal: str,
        tenant: str,
        body: bytes,
        fmt: Format,
        lease: Lease,
        transport: str,
        key: str | None = None,
    ) -> tuple[Message, bool]:
        """Decode, commit, answer: (the answer, whether ``key`` was committed already and
        nothing was stored). ``key`` (an idempotency key) is committed with the rows. The
        caller owns ``lease`` and releases it afterwards."""
        async with self.keys.claim(tenant, signal, key) as replayed:
            if replayed:
                self.metrics.received_requests.inc(
                    tenant=tenant, signal=signal, transport=transport, outcome="replayed"
                )
                return wire.response_message(signal, 0, ""), True
            try:
                # The lease keeps counting the body while a worker decodes it.
                batch = await self.decoders.decode(signal, body, fmt, tenant, self.limits)
                # From here on the decoded batch is what is held, not the body. (The body's
                # bytes object lives until the answer: peak memory per request can be about
                # body + batch, while the budget counts the larger of the two.)
                lease.resize(max(lease.held, batch.table.nbytes))
                rejected = batch.rejected
                text = batch.reject_message
                if batch.table.num_rows:
                    ident = None if key is None else (tenant, signal, key)
                    commit = await asyncio.wrap_future(self.writer.submit(batch, ident))
                    rejected += commit.rejected
                    text = "; ".join(t for t in (text, commit.message) if t)
            except OtterscopeError as exc:
                self.metrics.received_requests.inc(
                    tenant=tenant, signal=signal, transport=transport, outcome=exc.code
                )
                raise
        accepted = batch.accepted - (rejected - batch.rejected)
        m = self.metrics
        m.received_requests.inc(tenant=tenant, signal=signal, transport=transport, outcome="ok")
        m.received_items.inc(accepted, tenant=tenant, signal=signal, transport=transport)
        if rejected:
            m.rejected_items.inc(rejected, tenant=tenant, signal=signal, reason="invalid_or_capped")
        if batch.dropped_attributes:
            m.attributes_dropped.inc(batch.dropped_attributes, tenant=tenant, signal=signal)
        if batch.truncated_attributes:
            m.attributes_truncated.inc(batch.truncated_attributes, tenant=tenant, signal=signal)
        return wire.response_message(signal, rejected, text), False
