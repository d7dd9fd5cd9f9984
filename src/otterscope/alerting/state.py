"""The alerting state: rules, incidents, deliveries and each rule's progress, kept durably.

One JSON document (``<data-dir>/alerts.json``) is rewritten atomically (temporary file,
fsync, rename, fsync of the directory) after every change, under one lock, before the
change is answered or acted on. So after a restart a firing incident is still firing, its
rule still knows it (an incident fires once: a rule has at most one open incident), a
breach that was waiting out ``forSeconds`` keeps its start, and deliveries not yet made
are made. Resolved incidents beyond ``MAX_RESOLVED`` per tenant are forgotten, oldest
first, so the document stays bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, TypeVar

import orjson

from otterscope.alerting.model import AlertConfig, Delivery, Incident, Webhook
from otterscope.durable import write_durably
from otterscope.errors import NotFound
from otterscope.quarantine import Quarantine

FILE = "alerts.json"
_VERSION = 1
MAX_RESOLVED = 1000
T = TypeVar("T")


def _config(doc: dict[str, Any]) -> AlertConfig:
    doc = dict(doc)
    doc["labels"] = tuple(tuple(pair) for pair in doc["labels"])
    doc["webhooks"] = tuple(Webhook(**w) for w in doc["webhooks"])
    return AlertConfig(**doc)


def _incident(doc: dict[str, Any]) -> Incident:
    doc = dict(doc)
    doc["deliveries"] = tuple(
        Delivery(**{**d, "webhook": Webhook(**d["webhook"])}) for d in doc["deliveries"]
    )
    return Incident(**doc)


class AlertState:
    def __init__(self, data_dir: Path, quarantine: Quarantine | None = None) -> None:
        self.path = data_dir / FILE
        self._lock = threading.RLock()
        self.configs: dict[str, AlertConfig] = {}
        self.incidents: dict[str, Incident] = {}
        # Per rule: when its value started breaching (waiting out forSeconds), and its open
        # incident.
        self.breaching_since: dict[str, int] = {}
        self.open_incident: dict[str, str] = {}
        if self.path.exists():
            try:
                self._load()
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # Alert rules are state, not a snapshot: nothing rebuilds them. Refusing to
                # start would stop ingest for their sake, so the server starts without them,
                # and the file waits in the quarantine for the operator to repair.
                self.configs, self.incidents = {}, {}
                self.breaching_since, self.open_incident = {}, {}
                (quarantine or Quarantine(data_dir)).move(
                    self.path,
                    "alert_state",
                    f"unreadable alert state ({exc}); starting with no alert rules",
                    "every alert rule, incident and pending delivery it held, until the file "
                    "is repaired and put back while the server is stopped (or the rules are "
                    "created again)",
                )

    def _load(self) -> None:
        doc = orjson.loads(self.path.read_bytes())
        if doc.get("version") != _VERSION:
            raise ValueError(f"unknown version {doc.get('version')!r}")
        self.configs = {c["id"]: _config(c) for c in doc["configs"]}
        self.incidents = {i["id"]: _incident(i) for i in doc["incidents"]}
        self.breaching_since = dict(doc["breachingSince"])
        self.open_incident = dict(doc["openIncident"])

    def change(self, apply: Callable[[AlertState], T]) -> T:
        """Run ``apply`` under the lock, then write the state durably; return its result."""
        with self._lock:
            result = apply(self)
            self._trim()
            self._save()
            return result

    def change_if(self, apply: Callable[[AlertState], bool]) -> bool:
        """Run ``apply`` under the lock; write the state only if it says it changed it."""
        with self._lock:
            changed = apply(self)
            if changed:
                self._trim()
                self._save()
            return changed

    def read(self, look: Callable[[AlertState], T]) -> T:
        with self._lock:
            return look(self)

    def _trim(self) -> None:
        by_tenant: dict[str, list[Incident]] = {}
        for incident in self.incidents.values():
            if incident.state == "resolved" and not any(
                d.status == "pending" for d in incident.deliveries
            ):
                by_tenant.setdefault(incident.tenant, []).append(incident)
        for resolved in by_tenant.values():
            resolved.sort(key=lambda i: i.resolved_ns or 0)
            for old in resolved[: max(0, len(resolved) - MAX_RESOLVED)]:
                del self.incidents[old.id]

    def _save(self) -> None:
        doc = {
            "version": _VERSION,
            "configs": [asdict(c) for c in self.configs.values()],
            "incidents": [asdict(i) for i in self.incidents.values()],
            "breachingSince": self.breaching_since,
            "openIncident": self.open_incident,
        }
        write_durably(self.path, orjson.dumps(doc))

    # -- helpers for ``change`` and ``read`` callers -------------------------------------

    def config(self, tenant: str, config_id: str) -> AlertConfig:
        found = self.configs.get(config_id)
        if found is None or found.tenant != tenant:
            raise NotFound(f"no alert config {config_id!r}")
        return found

    def incident(self, tenant: str, incident_id: str) -> Incident:
        found = self.incidents.get(incident_id)
        if found is None or found.tenant != tenant:
            raise NotFound(f"no incident {incident_id!r}")
        return found

    def put_delivery(self, incident_id: str, index: int, delivery: Delivery) -> None:
        incident = self.incidents[incident_id]
        deliveries = list(incident.deliveries)
        deliveries[index] = delivery
        self.incidents[incident_id] = replace(incident, deliveries=tuple(deliveries))

    def firing_by_rule(self, tenant: str) -> list[tuple[str, str, str, str, int]]:
        """Per enabled rule of the tenant: (rule name, id, severity, metric, 1 while an incident
        of it fires, else 0), for the ``otterscope_alerts_firing`` self-metric."""
        with self._lock:
            firing = {
                i.config_id
                for i in self.incidents.values()
                if i.tenant == tenant and i.state == "firing"
            }
            return sorted(
                (c.name, c.id, c.severity, c.metric_name, int(c.id in firing))
                for c in self.configs.values()
                if c.tenant == tenant and c.enabled
            )
