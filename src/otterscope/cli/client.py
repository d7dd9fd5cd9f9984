"""What every client command shares: where the server is, the token, times, and HTTP.

- ``Target``: the server's base URL (``--url``, ``OTTERSCOPE_URL``, default
  http://127.0.0.1:4318) and token (``--token``, ``OTTERSCOPE_TOKEN``, then
  ``OTTERSCOPE_AUTH_TOKEN``).
- ``ApiClient``: a small client over httpx that answers decoded JSON and turns the API's error
  shape ``{"error": {"code", "message"}}``, an OTLP ``google.rpc.Status`` and connection
  failures into one ``CliError`` with a one-line message.
- ``post_with_retries``: one POST to an OTLP/HTTP endpoint, retried on 429/503 (honouring
  ``Retry-After``), other 5xx answers and connection failures, with exponential backoff.
- ``parse_time``: the times the API accepts (RFC 3339, unix s/ms/us/ns) plus "that long
  ago" (``90s``, ``30m``, ``1h``, ``2d``, ``1w``, ``1h30m``) and ``now``, to unix ns.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from otterscope.client._export import rejected_items
from otterscope.query.params import rfc3339_ns, unix_by_size

DEFAULT_URL = "http://127.0.0.1:4318"
TIMEOUT_S = 60.0
MAX_RETRIES = 6
MAX_BACKOFF_S = 10.0
MAX_RETRY_AFTER_S = 60.0
SIGNALS = ("traces", "logs", "metrics")
TOP_KEYS = {"traces": "resourceSpans", "logs": "resourceLogs", "metrics": "resourceMetrics"}

_AGO = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_AGO_UNITS = {
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
    "w": 7 * 86400 * 10**9,
}


class CliError(Exception):
    """A failure to report as one line (``otterscope: <message>``), exit status 1."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(" ".join(message.split()))
        self.message = " ".join(message.split())
        self.status = status


# -- times ------------------------------------------------------------------------------------


def parse_time(value: str, now_ns: int | None = None) -> int:
    """A time flag's value -> unix nanoseconds; ``ValueError`` with a clear message."""
    text = value.strip()
    now = time.time_ns() if now_ns is None else now_ns
    if text.lower() == "now":
        return now
    if re.fullmatch(r"\d+", text):
        return unix_by_size(int(text))  # as the API reads it
    ago = text[1:] if text.startswith("-") else text
    if ago and not _AGO.sub("", ago):
        span = sum(float(num) * _AGO_UNITS[unit] for num, unit in _AGO.findall(ago))
        return max(0, now - int(span))
    try:
        ns = rfc3339_ns(text, local=True)  # no zone given: local time
    except ValueError:
        raise ValueError(
            f"{value!r} is not a time: use RFC 3339 (2024-05-01T12:00:00Z), unix seconds/ms/us/ns, "
            "'now', or how long ago (30m, 1h, 2d, 1h30m)"
        ) from None
    if ns < 0:
        raise ValueError(f"{value!r} is before 1970")
    return ns


def time_arg(value: str) -> int:
    """``argparse`` type for time flags: a bad value is a usage error (exit 2)."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def api_time(ns: int) -> str:
    """Unix ns as the API reads it back exactly (it guesses the unit from the size)."""
    # Below 10^17 the API would take nanoseconds for microseconds: send whole seconds
    # (only times before March 1973 get there).
    return str(ns) if ns >= 10**17 else str(ns // 10**9)


# -- where the server is -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None
    verify: ssl.SSLContext | bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Target:
        url = args.url or os.environ.get("OTTERSCOPE_URL") or DEFAULT_URL
        token = (
            args.token
            or os.environ.get("OTTERSCOPE_TOKEN")
            or os.environ.get("OTTERSCOPE_AUTH_TOKEN")
            or None
        )
        return cls(normalize_url(url), token, tls_verify(getattr(args, "cacert", None)))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def normalize_url(url: str) -> str:
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parsed = httpx.URL(text)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise CliError(f"--url {url!r}: expected http(s)://host[:port]", status=2)
    return text


def tls_verify(cacert: str | None) -> ssl.SSLContext | bool:
    if not cacert:
        return True
    try:
        return ssl.create_default_context(cafile=cacert)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"--cacert {cacert}: {exc}") from None


# -- errors ------------------------------------------------------------------------------------


def describe_response(response: httpx.Response, where: str = "") -> str:
    """One line for a refused request: the server's message, the status, and where."""
    message, code = None, None
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict) and "message" in err:  # the API's error shape
            message, code = err["message"], err.get("code")
        elif "message" in doc:  # a google.rpc.Status from /v1/*
            message = doc["message"]
    status = f"{response.status_code} {code or response.reason_phrase}".strip()
    source = f" from {where}" if where else ""
    if message is None:
        text = " ".join(response.text.split())[:200]
        return f"{status}{source}{': ' + text if text else ''}"
    return f"{message} ({status}{source})"


TOKEN_HINT = "give a token with --token or the OTTERSCOPE_TOKEN environment variable"


def refusal(response: httpx.Response, where: str = "", token: str | None = None) -> str:
    """``describe_response`` for otterscope's own answers: a 401 also says how to give the
    CLI a token (or that the one given is not known to the server)."""
    line = describe_response(response, where)
    if response.status_code != 401:
        return line
    if token:
        return f"{line}; the server does not know the token given ({TOKEN_HINT})"
    return f"{line}; {TOKEN_HINT}"


def connection_error(url: str, exc: httpx.HTTPError) -> CliError:
    if isinstance(exc, httpx.TimeoutException):
        return CliError(f"{url}: no answer within {TIMEOUT_S:.0f} s ({type(exc).__name__})")
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return CliError(f"cannot connect to {url}: {detail} (is otterscope running there?)")
    return CliError(f"{url}: {detail}")


# -- the API client ------------------------------------------------------------------------------


class ApiClient:
    """JSON requests to one otterscope server."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._http = httpx.Client(
            base_url=target.url,
            headers={**target.headers(), "User-Agent": "otterscope-cli"},
            timeout=TIMEOUT_S,
            verify=target.verify,
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        return self._request("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._request("POST", path, content=json.dumps(body).encode())

    def _request(
        self,
        method: str,
        path: str,
        params: list[tuple[str, str]] | None = None,
        content: bytes | None = None,
    ) -> Any:
        headers = {"Content-Type": "application/json"} if content is not None else None
        url = f"{self.target.url}{path}"
        try:
            response = self._http.request(
                method,
                path,
                params=httpx.QueryParams(tuple(params or ())),
                content=content,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise connection_error(self.target.url, exc) from None
        if response.status_code >= 400:
            raise CliError(refusal(response, f"{method} {url}", self.target.token))
        try:
            return response.json()
        except ValueError:
            raise CliError(f"{method} {url}: the answer is not JSON") from None


def fetch_pages(
    client: ApiClient, signal: str, start: int, end: int, page_size: int, cursor: str | None
) -> Iterator[tuple[dict[str, Any], str | None]]:
    """``(page without nextCursor, next cursor)`` from ``POST /api/{signal}/fetch``."""
    while True:
        body: dict[str, Any] = {
            "startTimeUnixNano": api_time(start),
            "endTimeUnixNano": api_time(end),
            "limit": page_size,
        }
        if cursor:
            body["cursor"] = cursor
        page = client.post(f"/api/{signal}/fetch", body)
        if not isinstance(page, dict) or TOP_KEYS[signal] not in page:
            raise CliError(f"POST /api/{signal}/fetch: the answer has no {TOP_KEYS[signal]}")
        cursor = page.pop("nextCursor", None)
        yield page, cursor
        if not cursor:
            return


# -- OTLP/HTTP posts with retries ------------------------------------------------------------------


RETRY_STATUSES = frozenset({429, 502, 503, 504})


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def post_with_retries(
    http: httpx.Client,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    retries: int = MAX_RETRIES,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[str, float], None] | None = None,
) -> httpx.Response:
    """POST ``body``; retry 429/502/503/504 and connection failures with backoff.

    Answers the final response (any status: the caller decides what a refusal means);
    raises ``CliError`` when the endpoint could not be reached at all.
    """
    backoff = 0.5
    for attempt in range(retries + 1):
        try:
            response = http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            if attempt == retries:
                raise connection_error(url, exc) from None
            wait, why = backoff, str(exc) or type(exc).__name__
        else:
            if response.status_code not in RETRY_STATUSES or attempt == retries:
                return response
            hinted = retry_after(response)
            wait = min(MAX_RETRY_AFTER_S, hinted) if hinted is not None else backoff
            why = f"{response.status_code} {response.reason_phrase}"
        if on_retry is not None:
            on_retry(why, wait)
        sleep(wait)
        backoff = min(MAX_BACKOFF_S, backoff * 2)
    raise AssertionError("unreachable")


def otlp_http_client(verify: ssl.SSLContext | bool = True) -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT_S, verify=verify)


def partial_rejections(response: httpx.Response) -> tuple[int, str]:
    """``(rejected items, message)`` from an ``Export*ServiceResponse`` in JSON, if any."""
    return rejected_items(response.content)
