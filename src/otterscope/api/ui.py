"""The web UI at ``/ui/``, the browser's ``GET /`` redirect, and ``GET /api/session``.

The bundle is read from the package into memory (it is small) by the first request for
it, each file with a gzip copy, and served from there. Files under ``assets/`` carry
content hashes in their names and are cached for a year; every other ``/ui/*`` path is the
single-page app's ``index.html``, never cached, so a new release is picked up on the next
navigation. Every UI answer carries a
strict Content-Security-Policy: scripts, styles and connections from this origin only.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from otterscope.api.errors import error_response
from otterscope.api.responses import json_response
from otterscope.api.state import api_endpoint, app_state
from otterscope.errors import NotFound, OtterscopeError

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_IMMUTABLE = "public, max-age=31536000, immutable"
_MISSING = (
    "the web UI bundle is missing from this installation: "
    "run `cd ui && npm ci && npm run build`, then reinstall"
)
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None when compressing would not make it smaller
    media_type: str
    cache_control: str
    etag: str


def _media_type(name: str) -> str:
    suffix = name[name.rfind(".") :] if "." in name else ""
    guessed = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


def _asset(name: str, body: bytes) -> Asset:
    packed = gzip.compress(body, compresslevel=9, mtime=0)
    if name.startswith("assets/"):
        cache = _IMMUTABLE
    elif name == "index.html":
        cache = "no-cache"
    else:
        cache = "public, max-age=3600"
    return Asset(
        body=body,
        gzipped=packed if len(packed) < len(body) else None,
        media_type=_media_type(name),
        cache_control=cache,
        etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
    )


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        else:
            found[name] = _asset(name, entry.read_bytes())
    return found


class Bundle:
    """The UI files by path below ``/ui/``."""

    def __init__(self, files: dict[str, Asset]) -> None:
        self.files = files

    @classmethod
    def from_package(cls) -> Bundle:
        dist = resources.files("otterscope.ui") / "dist"
        return cls(_walk(dist) if dist.is_dir() else {})

    def respond(self, request: Request, path: str) -> Response:
        index = self.files.get("index.html")
        if index is None:
            return error_response(OtterscopeError(_MISSING))
        asset = self.files.get(path) if path else None
        if asset is None:
            if path.startswith("assets/") or path == "favicon.svg":
                # A missing hashed file is an old page asking for a release that is gone:
                # index.html in its place would be parsed as script and fail obscurely.
                return error_response(NotFound(f"no UI file {path}"))
            asset = index
        packed = asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", "")
        # Each encoding is its own representation, with its own strong validator.
        etag = asset.etag[:-1] + '-gz"' if packed else asset.etag
        headers = {**_SECURITY_HEADERS, "Cache-Control": asset.cache_control, "ETag": etag}
        headers["Vary"] = "Accept-Encoding"
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        if packed:
            assert asset.gzipped is not None
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match``: ``*`` or a list of tags, compared weakly (RFC 9110 §13.1.2)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@functools.cache
def bundle() -> Bundle:
    return Bundle.from_package()


async def serve(request: Request) -> Response:
    return bundle().respond(request, request.path_params.get("path", ""))


async def root(request: Request) -> Response:
    """A browser opening the server lands in the UI; an API client keeps the JSON 404."""
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        return RedirectResponse("/ui/", status_code=302)
    return error_response(NotFound("no route for /; the web UI is at /ui/, the API under /api/"))


@api_endpoint
async def session(request: Request) -> Response:
    """Who the presented token is, for the UI: its tenant and scopes (so admin-only actions
    are offered only to admins) and where this server takes OTLP (for the empty states)."""
    state = app_state(request)
    who = state.auth.authenticate(request.headers, request.query_params)
    return json_response(
        {
            "tenant": who.tenant,
            "scopes": sorted(who.scopes),
            "anonymous": state.auth.anonymous,
            "otlp": {
                "grpcPort": state.settings["server.grpc_port"],
                "httpPort": state.settings["server.http_port"],
                "tls": bool(state.settings["server.tls_cert"]),
            },
        }
    )


async def ui_root(request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=308)


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/api/session", session, methods=["GET"]),
    Route("/ui", ui_root, methods=["GET"]),
    Route("/ui/{path:path}", serve, methods=["GET"]),
]
