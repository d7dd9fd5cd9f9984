"""ASGI and WSGI middleware on ``Telemetry``: one SERVER span and the RED metrics per request.

Per HTTP request (ASGI ``http`` scopes only; ``websocket`` and ``lifespan`` pass through):

- a SERVER span named ``"{METHOD} {route}"``, a child of the caller when the request has a
  valid ``traceparent`` (``tracestate`` is carried along), current while the application
  runs so its own spans and logs nest under it; no ``traceresponse`` header is added.
  Attributes (OpenTelemetry HTTP semantic conventions): ``http.request.method``,
  ``http.route``, ``http.response.status_code``, ``url.path``, ``url.scheme``, and
  ``error.type`` (the exception type, or the status code for 5xx). Status ERROR for 5xx
  and for an exception (recorded as an ``exception`` event and re-raised); 4xx is not an
  error on a server span;
- the metrics, named as the semantic conventions name them:
  ``http.server.request.duration`` — a histogram in seconds (unit ``s``) with the
  conventions' recommended boundaries ``[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
  0.75, 1, 2.5, 5, 7.5, 10]`` — and a counter ``http.server.requests`` (unit
  ``{request}``; the conventions have no request counter, this one makes rate queries
  simple), both with ``http.request.method``, ``http.route``,
  ``http.response.status_code`` (and ``error.type`` when set). Their Prometheus names are
  ``http_server_request_duration_seconds`` and ``http_server_requests_total``.

The route is the route *template*, never the raw path, so labels stay few: ASGI takes it
from the framework — Starlette (and FastAPI) record the matched route in
``scope["route"]``; routes under ``Mount`` are joined (``/api`` + ``/items/{id}``) — or
from ``route_resolver(scope)``; WSGI from ``route_resolver(environ)`` (called after the
application ran, so a framework can leave its match in the environ). Without one the
route is ``unmatched``, or the raw path when ``raw_path_fallback=True`` (only for
applications whose paths are few). A method outside the HTTP standard ones is ``_OTHER``.

``flush_each_request=True`` flushes after each response is complete (for serverless;
ASGI runs the flush in a worker thread so the event loop never blocks on it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from otterscope.client._trace import Span, exception_type
from otterscope.client.telemetry import Telemetry

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["DURATION_BOUNDARIES", "ASGIMiddleware", "WSGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DURATION_BOUNDARIES = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
DURATION = "http.server.request.duration"
REQUESTS = "http.server.requests"
UNMATCHED = "unmatched"
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)


class _Request:
    """What one request's span and metrics need, filled in as the request goes."""

    def __init__(self, telemetry: Telemetry, method: str, path: str, scheme: str) -> None:
        self.telemetry = telemetry
        self.method = method.upper() if method.upper() in _METHODS else "_OTHER"
        self.original_method = method
        self.path = path
        self.started = time.perf_counter()
        self.status: int | None = None
        self.error_type: str | None = None
        self.span: Span | None = None
        self.scheme = scheme

    def open(self, traceparent: str | None, tracestate: str | None) -> Span:
        attrs: dict[str, Any] = {
            "http.request.method": self.method,
            "url.path": self.path,
            "url.scheme": self.scheme,
        }
        if self.method == "_OTHER":
            attrs["http.request.method_original"] = self.original_method
        self.span = self.telemetry.span(
            self.method,
            kind="server",
            attributes=attrs,
            traceparent=traceparent,
            tracestate=tracestate,
        )
        return self.span

    def failed(self, exc: BaseException) -> None:
        self.error_type = exception_type(exc)
        if self.status is None:
            self.status = 500  # what the server answers for an unhandled exception

    def close(self, route: str | None, fallback: bool) -> None:
        """Name the span, set its attributes and record the metrics (once)."""
        if self.span is None:
            return
        span, self.span = self.span, None
        route = route or (self.path if fallback else UNMATCHED)
        attrs: dict[str, Any] = {"http.request.method": self.method, "http.route": route}
        if self.status is not None:
            attrs["http.response.status_code"] = self.status
            if self.status >= 500 and self.error_type is None:
                self.error_type = str(self.status)
        if self.error_type is not None:
            attrs["error.type"] = self.error_type
        span.update_name(f"{self.method} {route}")
        span.set_attributes(attrs)
        if self.status is not None and self.status >= 500 and span.status[0] == "unset":
            span.set_status("error", f"HTTP {self.status}")
        seconds = time.perf_counter() - self.started
        self.telemetry.histogram(
            DURATION,
            seconds,
            attrs,
            DURATION_BOUNDARIES,
            unit="s",
            description="Duration of HTTP server requests.",
        )
        self.telemetry.counter(
            REQUESTS, 1, attrs, unit="{request}", description="HTTP server requests."
        )


class _RouteScope(dict[str, Any]):
    """The request's scope, remembering every route a router records in it (mounts)."""

    routes: list[Any]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "route":
            self.routes.append(value)
        super().__setitem__(key, value)


def starlette_route(scope: Scope) -> str | None:
    """The route template Starlette recorded in ``scope["route"]`` (mount paths joined)."""
    seen = getattr(scope, "routes", None) or [scope.get("route")]
    paths = [getattr(route, "path", None) for route in seen]
    parts = [path for path in paths if isinstance(path, str)]
    if not parts:
        return None
    return "".join(parts) or "/"


class ASGIMiddleware:
    """Wrap an ASGI application: ``app = ASGIMiddleware(app, telemetry)``."""

    def __init__(
        self,
        app: ASGIApp,
        telemetry: Telemetry,
        flush_each_request: bool = False,
        route_resolver: Callable[[Scope], str | None] = starlette_route,
        raw_path_fallback: bool = False,
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        self.flush_each_request = flush_each_request
        self.route_resolver = route_resolver
        self.raw_path_fallback = raw_path_fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = _asgi_headers(scope)
        request = _Request(
            self.telemetry,
            str(scope.get("method", "GET")),
            str(scope.get("path", "")),
            str(scope.get("scheme", "http")),
        )
        inner = _RouteScope(scope)
        inner.routes = []

        async def send_status(message: Message) -> None:
            if message.get("type") == "http.response.start":
                request.status = int(message.get("status", 200))
            await send(message)

        try:
            with request.open(headers.get("traceparent"), headers.get("tracestate")):
                try:
                    await self.app(inner, receive, send_status)
                except Exception as exc:
                    request.failed(exc)
                    raise
                finally:
                    request.close(self._route(inner), self.raw_path_fallback)
                    scope.update(inner)  # what the application added, for outer layers
        finally:
            if self.flush_each_request:
                await asyncio.to_thread(self.telemetry.flush)

    def _route(self, scope: Scope) -> str | None:
        try:
            return self.route_resolver(scope)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the request
            self.telemetry._problem(f"route_resolver: {type(exc).__name__}: {exc}")
            return None


def _asgi_headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = bytes(name).decode("latin-1").lower()
        if key in ("traceparent", "tracestate"):
            text = bytes(value).decode("latin-1")
            out[key] = f"{out[key]},{text}" if key in out and key == "tracestate" else text
    return out


class WSGIMiddleware:
    """Wrap a WSGI application: ``app = WSGIMiddleware(app, telemetry, route_resolver=...)``."""

    def __init__(
        self,
        app: WSGIApplication,
        telemetry: Telemetry,
        flush_each_request: bool = False,
        route_resolver: Callable[[WSGIEnvironment], str | None] | None = None,
        raw_path_fallback: bool = False,
    ) -> None:
        self.app = app
        self.telemetry = telemetry
        self.flush_each_request = flush_each_request
        self.route_resolver = route_resolver
        self.raw_path_fallback = raw_path_fallback

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = _Request(
            self.telemetry,
            str(environ.get("REQUEST_METHOD", "GET")),
            str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")),
            str(environ.get("wsgi.url_scheme", "http")),
        )
        span = request.open(environ.get("HTTP_TRACEPARENT"), environ.get("HTTP_TRACESTATE"))

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            try:
                request.status = int(status.split(" ", 1)[0])
            except ValueError:
                request.status = None
            return start_response(status, headers, exc_info)

        try:
            with span.use():
                body = self.app(environ, start)
        except Exception as exc:
            self._finish(request, span, environ, exc)
            raise
        return _Body(body, lambda exc: self._finish(request, span, environ, exc), span)

    def _finish(
        self, request: _Request, span: Span, environ: WSGIEnvironment, exc: BaseException | None
    ) -> None:
        if exc is not None:
            request.failed(exc)
            span.record_exception(exc)
            span.set_status("error", f"{type(exc).__qualname__}: {exc}")
        route: str | None = None
        if self.route_resolver is not None:
            try:
                route = self.route_resolver(environ)
            except Exception as error:  # noqa: BLE001 - telemetry must never break the request
                self.telemetry._problem(f"route_resolver: {type(error).__name__}: {error}")
        request.close(route, self.raw_path_fallback)
        span.end()
        if self.flush_each_request:
            self.telemetry.flush()


class _Body:
    """The response body; the request ends when the server closes it (PEP 3333)."""

    def __init__(
        self, body: Iterable[bytes], done: Callable[[BaseException | None], None], span: Span
    ) -> None:
        self._body = body
        self._done: Callable[[BaseException | None], None] | None = done
        self._span = span

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except Exception as exc:
            self._end(exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._end(None)

    def _end(self, exc: BaseException | None) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(exc)
