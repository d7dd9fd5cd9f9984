"""Webhook notifications: their bodies, their signature, and delivering them at least once.

A delivery is made durable (in the incident, by ``AlertState``) before it is attempted, and
its outcome after; so a restart resumes the deliveries that were due, and a receiver may
see one twice (it has the ``Idempotency-Key`` to tell). Each POST carries:
- ``X-Otterscope-Signature: sha256=<hex>``: HMAC-SHA256 of the exact body with the
  webhook's secret;
- ``Idempotency-Key: <incident>:<event>:<webhook index>``, the same on every attempt;
- ``X-Otterscope-Event: firing|resolved``.
A 2xx answer delivers it. Connection errors, timeouts, 408, 429 and 5xx are retried with
exponential backoff (1 s, 2 s, 4 s, ... at most 5 min) until ``alerts.max_delivery_attempts``;
other answers fail it at once. Redirects are not followed. A host outside
``alerts.webhook_allowed_hosts`` (when set) is never contacted.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import orjson

from otterscope.alerting.model import Delivery, Incident, rfc3339
from otterscope.alerting.state import AlertState

MAX_BACKOFF_S = 300.0
_RETRIED = {408, 429}


def body(delivery: Delivery, incident: Incident, description: str) -> bytes:
    """The notification in the webhook's format."""
    shown = {k: v for k, v in incident.to_api().items() if k != "deliveries"}
    event = delivery.event
    if delivery.webhook.format == "slack":
        where = f" on {incident.service_id}" if incident.service_id else ""
        value = incident.last_value if event == "resolved" else incident.value
        text = (
            f"[{event.upper()}] {incident.name} ({incident.severity}){where}: "
            f"{incident.metric_name} = {value:g} (alert when {incident.condition} "
            f"{incident.threshold:g})"
            if value is not None
            else f"[{event.upper()}] {incident.name} ({incident.severity}){where}: no data"
        )
        return orjson.dumps({"text": text + (f"\n{description}" if description else "")})
    if delivery.webhook.format == "alertmanager":
        labels = {"alertname": incident.name, "severity": incident.severity}
        if incident.service_id:
            labels["service"] = incident.service_id
        annotations = {
            "description": description,
            "value": f"{incident.last_value if incident.last_value is not None else incident.value:g}",
            "metric": incident.metric_name,
        }
        alert = {
            "status": event,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(incident.started_ns),
            "endsAt": rfc3339(incident.resolved_ns) or "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": incident.id,
        }
        return orjson.dumps(
            {
                "version": "4",
                "groupKey": f"{{}}:{{alertname={incident.name!r}}}",
                "truncatedAlerts": 0,
                "status": event,
                "receiver": "otterscope",
                "groupLabels": {"alertname": incident.name},
                "commonLabels": labels,
                "commonAnnotations": annotations,
                "externalURL": "",
                "alerts": [alert],
            }
        )
    return orjson.dumps({"event": event, "incident": shown, "description": description})


def signature(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def _target(incident_id: str, state: AlertState) -> tuple[Incident, str]:
    incident = state.incidents[incident_id]
    rule = state.configs.get(incident.config_id)
    return incident, rule.description if rule else ""


class Deliverer:
    def __init__(
        self,
        state: AlertState,
        allowed_hosts: tuple[str, ...],
        timeout_s: float,
        max_attempts: int,
    ) -> None:
        self._state = state
        self._allowed = allowed_hosts
        self._max_attempts = max_attempts
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def deliver_due(self, now_ns: int | None = None) -> int:
        """Attempt every delivery that is due; return how many were attempted."""
        now = time.time_ns() if now_ns is None else now_ns
        due = self._state.read(
            lambda s: [
                (incident.id, i)
                for incident in s.incidents.values()
                for i, d in enumerate(incident.deliveries)
                if d.status == "pending" and d.next_attempt_ns <= now
            ]
        )
        for incident_id, index in due:
            incident, description = self._state.read(functools.partial(_target, incident_id))
            outcome = self._attempt(incident.deliveries[index], incident, description)
            self._state.change(
                functools.partial(
                    AlertState.put_delivery, incident_id=incident_id, index=index, delivery=outcome
                )
            )
        return len(due)

    def _attempt(self, delivery: Delivery, incident: Incident, description: str) -> Delivery:
        attempts = delivery.attempts + 1
        host = urlsplit(delivery.webhook.url).hostname or ""
        if self._allowed and host not in self._allowed:
            return replace(
                delivery,
                status="failed",
                attempts=attempts,
                last_error=f"host {host!r} is not in alerts.webhook_allowed_hosts",
            )
        payload = body(delivery, incident, description)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "otterscope-alerts",
            "Idempotency-Key": delivery.idempotency_key,
            "X-Otterscope-Event": delivery.event,
            "X-Otterscope-Signature": signature(delivery.webhook.secret, payload),
        }
        code: int | None = None
        try:
            answer = self._client.post(delivery.webhook.url, content=payload, headers=headers)
            code = answer.status_code
            error = None if 200 <= code < 300 else f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = time.time_ns()
        if error is None:
            return replace(
                delivery,
                status="delivered",
                attempts=attempts,
                last_status_code=code,
                last_error=None,
                delivered_ns=now,
            )
        final = code is not None and code < 500 and code not in _RETRIED
        if final or attempts >= self._max_attempts:
            return replace(
                delivery,
                status="failed",
                attempts=attempts,
                last_status_code=code,
                last_error=error,
            )
        backoff = min(MAX_BACKOFF_S, 2.0 ** (attempts - 1))
        return replace(
            delivery,
            attempts=attempts,
            last_status_code=code,
            last_error=error,
            next_attempt_ns=now + int(backoff * 1e9),
        )
