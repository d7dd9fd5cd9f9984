"""Alert rules, incidents and webhook deliveries: their shapes, and the validation of a rule
as a user sends it (the only edge where it is checked).

A rule (``AlertConfig``) watches one value over a sliding window: a metric aggregated with
the metrics query API's aggregations, or a built-in computed from spans (``error_rate``,
``p99_latency_ms``, ``request_rate``). An incident is one stretch of time the rule fired:
``firing`` until the value stops breaching, then ``resolved``; ``acknowledged`` is a flag.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from otterscope.errors import BadRequest, Forbidden
from otterscope.metrics.query import AGGREGATIONS

BUILTINS = ("error_rate", "p99_latency_ms", "request_rate")
CONDITIONS = {
    "gt": lambda v, t: v > t,
    "gte": lambda v, t: v >= t,
    "lt": lambda v, t: v < t,
    "lte": lambda v, t: v <= t,
}
SEVERITIES = ("critical", "error", "warning", "info")
FORMATS = ("generic", "slack", "alertmanager")
MAX_WINDOW_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    format: str = "generic"
    secret: str = ""  # HMAC-SHA256 key of the signature header

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "format": self.format, "secretSet": bool(self.secret)}


@dataclass(frozen=True, slots=True)
class AlertConfig:
    id: str
    tenant: str
    name: str
    metric_name: str
    aggregation: str
    condition: str
    threshold: float
    window_s: int
    severity: str
    description: str = ""
    service_id: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    for_s: int = 0
    webhooks: tuple[Webhook, ...] = ()
    enabled: bool = True

    def breaches(self, value: float) -> bool:
        return bool(CONDITIONS[self.condition](value, self.threshold))

    def to_api(self, with_secrets: bool = False) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "serviceId": self.service_id,
            "metricName": self.metric_name,
            "labels": dict(self.labels),
            "aggregation": self.aggregation,
            "condition": self.condition,
            "threshold": self.threshold,
            "windowSeconds": self.window_s,
            "forSeconds": self.for_s,
            "severity": self.severity,
            "enabled": self.enabled,
            "webhooks": [
                {**w.public(), **({"secret": w.secret} if with_secrets else {})}
                for w in self.webhooks
            ],
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification of one incident event to one webhook."""

    webhook: Webhook
    event: str  # "firing" or "resolved"
    idempotency_key: str
    status: str = "pending"  # pending, delivered, failed
    attempts: int = 0
    next_attempt_ns: int = 0
    last_error: str | None = None
    last_status_code: int | None = None
    delivered_ns: int | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "url": self.webhook.url,
            "format": self.webhook.format,
            "event": self.event,
            "idempotencyKey": self.idempotency_key,
            "status": self.status,
            "attempts": self.attempts,
            "lastError": self.last_error,
            "lastStatusCode": self.last_status_code,
            "deliveredAt": rfc3339(self.delivered_ns),
        }


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    tenant: str
    config_id: str
    name: str
    severity: str
    metric_name: str
    service_id: str | None
    condition: str
    threshold: float
    value: float  # the value that fired it
    started_ns: int
    state: str = "firing"
    last_value: float | None = None
    resolved_ns: int | None = None
    acknowledged: bool = False
    acknowledged_by: str | None = None
    acknowledged_ns: int | None = None
    deliveries: tuple[Delivery, ...] = field(default_factory=tuple)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "configId": self.config_id,
            "name": self.name,
            "severity": self.severity,
            "serviceId": self.service_id,
            "metricName": self.metric_name,
            "condition": self.condition,
            "threshold": self.threshold,
            "value": self.value,
            "lastValue": self.last_value,
            "state": self.state,
            "startedAt": rfc3339(self.started_ns),
            "resolvedAt": rfc3339(self.resolved_ns),
            "acknowledged": self.acknowledged,
            "acknowledgedBy": self.acknowledged_by,
            "acknowledgedAt": rfc3339(self.acknowledged_ns),
            "deliveries": [d.to_api() for d in self.deliveries],
        }


def notifications(
    rule: AlertConfig, incident_id: str, event: str, now_ns: int
) -> tuple[Delivery, ...]:
    """One delivery per webhook of the rule for an incident event, due now."""
    return tuple(
        Delivery(
            webhook=w,
            event=event,
            idempotency_key=f"{incident_id}:{event}:{i}",
            next_attempt_ns=now_ns,
        )
        for i, w in enumerate(rule.webhooks)
    )


def rfc3339(ns: int | None) -> str | None:
    """Unix nanoseconds as RFC 3339 UTC with milliseconds (None stays None)."""
    if ns is None:
        return None
    moment = datetime.fromtimestamp(ns / 1e9, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return uuid.uuid4().hex


def _string(doc: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{key} must be a non-empty string")
    return value.strip()


def _number(doc: dict[str, Any], key: str, default: float | None = None) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BadRequest(f"{key} must be a number")
    return float(value)


def _seconds(doc: dict[str, Any], key: str, default: int | None, low: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_WINDOW_S:
        raise BadRequest(f"{key} must be a whole number of seconds from {low} to {MAX_WINDOW_S}")
    return value


def _webhook(item: Any, allowed_hosts: tuple[str, ...]) -> Webhook:
    if not isinstance(item, dict) or set(item) - {"url", "format", "secret"}:
        raise BadRequest('a webhook is {"url", "format"?, "secret"?}')
    url = _string(item, "url") or ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"webhook url {url!r} must be http(s)://host/...")
    if allowed_hosts and parts.hostname not in allowed_hosts:
        raise BadRequest(f"webhook host {parts.hostname!r} is not in alerts.webhook_allowed_hosts")
    kind = item.get("format", "generic")
    if kind not in FORMATS:
        raise BadRequest(f"webhook format must be one of {', '.join(FORMATS)}")
    secret = item.get("secret")
    if secret is not None and (not isinstance(secret, str) or len(secret) < 16):
        raise BadRequest("a webhook secret must be a string of 16 characters or more")
    return Webhook(url, kind, secret or "")


CONFIG_FIELDS = {
    "name",
    "description",
    "serviceId",
    "metricName",
    "labels",
    "aggregation",
    "condition",
    "threshold",
    "windowSeconds",
    "forSeconds",
    "severity",
    "webhooks",
    "enabled",
}


def parse_config(
    doc: Any,
    tenant: str,
    config_id: str,
    allowed_hosts: tuple[str, ...],
    may_set_webhooks: bool,
) -> AlertConfig:
    """A rule from its JSON (400 with the reason when it is not one)."""
    if not isinstance(doc, dict):
        raise BadRequest("an alert config must be a JSON object")
    unknown = sorted(set(doc) - CONFIG_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; expected {sorted(CONFIG_FIELDS)}")
    metric = _string(doc, "metricName") or ""
    aggregation = doc.get("aggregation", "avg" if metric not in BUILTINS else "value")
    if metric in BUILTINS:
        if aggregation != "value":
            raise BadRequest(
                f"{metric} is a built-in: its aggregation is 'value' (or leave it out)"
            )
    elif aggregation not in AGGREGATIONS:
        raise BadRequest(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    condition = doc.get("condition")
    if condition not in CONDITIONS:
        raise BadRequest(f"condition must be one of {', '.join(CONDITIONS)}")
    severity = doc.get("severity", "warning")
    if severity not in SEVERITIES:
        raise BadRequest(f"severity must be one of {', '.join(SEVERITIES)}")
    labels = doc.get("labels") or {}
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise BadRequest("labels must be an object of strings")
    hooks = doc.get("webhooks") or []
    if not isinstance(hooks, list):
        raise BadRequest("webhooks must be a list")
    if hooks and not may_set_webhooks:
        raise Forbidden("webhooks need a token with the admin scope")
    enabled = doc.get("enabled", True)
    if not isinstance(enabled, bool):
        raise BadRequest("enabled must be true or false")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise BadRequest("description must be a string")
    return AlertConfig(
        id=config_id,
        tenant=tenant,
        name=_string(doc, "name") or "",
        description=description,
        service_id=_string(doc, "serviceId", required=False),
        metric_name=metric,
        labels=tuple(sorted(labels.items())),
        aggregation=aggregation,
        condition=condition,
        threshold=_number(doc, "threshold"),
        window_s=_seconds(doc, "windowSeconds", None, 1),
        for_s=_seconds(doc, "forSeconds", 0, 0),
        severity=severity,
        webhooks=tuple(_webhook(h, allowed_hosts) for h in hooks),
        enabled=enabled,
    )


def fill_secrets(new: AlertConfig, old: AlertConfig | None = None) -> AlertConfig:
    """Webhooks sent without a secret get one: the one they had when the rule is replaced
    and keeps their URL (a PUT sends back what a GET showed, which has no secrets), else a
    new random one (shown once, in the answer to the POST or PUT)."""
    had = {w.url: w.secret for w in old.webhooks} if old else {}
    hooks = tuple(
        w if w.secret else replace(w, secret=had.get(w.url) or secrets.token_urlsafe(32))
        for w in new.webhooks
    )
    return replace(new, webhooks=hooks)
