"""Configuration from arguments and ``OTEL_*`` variables, and the one HTTP POST of a flush.

This module owns

- ``settings``: the endpoint, headers and resource a ``Telemetry`` uses. Explicit
  arguments win over the environment: ``endpoint`` over ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (a base URL; ``/v1/<signal>`` is added), ``headers`` over ``OTEL_EXPORTER_OTLP_HEADERS``
  (merged per header name, case-insensitively), ``token`` over any ``Authorization``
  header, ``resource_attributes`` over ``OTEL_RESOURCE_ATTRIBUTES``; ``service.name`` is
  ``service_name``, else ``resource_attributes["service.name"]``, else
  ``OTEL_SERVICE_NAME``, else ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, else
  ``unknown_service`` (the SDK's default). ``k=v,k2=v2`` lists are percent-decoded and
  entries without ``=`` are skipped. The ``telemetry.sdk.*`` attributes are always the
  client's; ``service.instance.id`` is a new uuid4 unless one is given;
- ``post``: one request with ``urllib`` (proxies from the usual ``*_proxy`` variables, no
  redirects followed — a redirect is a failure, so a token is never sent elsewhere), and
  what its answer means: success (with the ``partialSuccess`` rejections, if any),
  or a failure that is worth retrying (connection errors, timeouts, 429, 502, 503, 504 —
  the OTLP/HTTP retryable set) or not (any other answer: resending cannot help).

Standard library only.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Outcome", "Settings", "parse_kv_list", "post", "settings"]

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_MAX_ANSWER = 64 * 1024
_REJECTED_FIELDS = ("rejectedSpans", "rejectedDataPoints", "rejectedLogRecords")


@dataclass(frozen=True)
class Settings:
    endpoint: str | None
    headers: dict[str, str]
    resource: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    retryable: bool = False
    error: str = ""
    rejected: int = 0


def parse_kv_list(text: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` (W3C baggage-like, as the OTel variables use) with percent-decoding."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        key, sep, value = item.partition("=")
        key = urllib.parse.unquote(key.strip())
        if sep and key:
            out[key] = urllib.parse.unquote(value.strip())
    return out


def settings(
    *,
    service_name: str | None,
    endpoint: str | None,
    token: str | None,
    headers: Mapping[str, str] | None,
    resource_attributes: Mapping[str, Any] | None,
    version: str,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    base = endpoint if endpoint is not None else env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    base = base.strip().rstrip("/")

    merged: dict[str, tuple[str, str]] = {}
    for source in (parse_kv_list(env.get("OTEL_EXPORTER_OTLP_HEADERS")), headers or {}):
        for name, value in source.items():
            merged[name.lower()] = (name, str(value))
    if token:
        merged["authorization"] = ("Authorization", f"Bearer {token}")

    resource: dict[str, Any] = dict(parse_kv_list(env.get("OTEL_RESOURCE_ATTRIBUTES")))
    env_service = env.get("OTEL_SERVICE_NAME", "").strip()
    if env_service:
        resource["service.name"] = env_service
    resource.update(resource_attributes or {})
    if service_name:
        resource["service.name"] = service_name
    resource.setdefault("service.name", "unknown_service")
    resource.setdefault("service.instance.id", str(uuid.uuid4()))
    resource.update(
        {
            "telemetry.sdk.name": "otterscope.client",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": version,
        }
    )
    return Settings(base or None, dict(merged.values()), resource)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def rejected_items(answer: bytes) -> tuple[int, str]:
    """``(rejected items, message)`` from an ``Export*ServiceResponse`` in JSON, if any."""
    try:
        doc = json.loads(answer) if answer.strip() else {}
    except ValueError:
        return 0, ""
    partial = doc.get("partialSuccess") if isinstance(doc, dict) else None
    if not isinstance(partial, dict):
        return 0, ""
    count = 0
    for name in _REJECTED_FIELDS:
        try:
            count += int(partial.get(name) or 0)
        except (TypeError, ValueError):
            continue
    return count, str(partial.get("errorMessage") or "")


def _message(answer: bytes) -> str:
    text = answer.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:500]
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return str(doc["message"])
    return text[:500]


def post(
    director: urllib.request.OpenerDirector,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Outcome:
    """POST ``body`` and say what happened; never raises for network or HTTP trouble."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with director.open(request, timeout=timeout) as response:
            answer = response.read(_MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        try:
            detail = _message(exc.read(_MAX_ANSWER))
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            exc.close()
        status = exc.code
        error = f"POST {url}: HTTP {status}" + (f": {detail}" if detail else "")
        return Outcome(False, status in RETRYABLE_STATUS, error)
    except urllib.error.URLError as exc:
        return Outcome(False, True, f"POST {url}: {exc.reason}")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, True, f"POST {url}: {type(exc).__name__}: {exc}")
    except ValueError as exc:  # not a URL urllib can use: resending cannot help
        return Outcome(False, False, f"POST {url}: {exc}")
    count, why = rejected_items(answer)
    if count:
        return Outcome(True, False, f"POST {url}: server rejected {count} item(s): {why}", count)
    return Outcome(True)
