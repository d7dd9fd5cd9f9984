"""The live feed: committed telemetry pushed to WebSocket subscribers (``GET /api/ws``).

``hub.LiveHub`` takes committed batches from the writer and fans them out, per tenant, to
subscribers; ``messages`` turns Arrow rows into the feed's JSON messages. The route itself
lives in ``otterscope.api.live``.
"""

from otterscope.live.hub import Filter, LiveHub, Subscriber

__all__ = ["Filter", "LiveHub", "Subscriber"]
