"""The web UI as a server serves it: redirect, CSP, hashed assets, caching, /api/session."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from otterscope.api.ui import CSP
from tests.conftest import RunningServer, start_server

DIST = Path(__file__).resolve().parent.parent / "src" / "otterscope" / "ui" / "dist"
ADMIN, READER, SENDER = "ui-admin-token", "ui-read-token", "ui-ingest-token"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = {
        "auth": {
            "tokens": [
                {"token": ADMIN, "tenant": "acme"},
                {"token": READER, "tenant": "acme", "scopes": ["read"]},
                {"token": SENDER, "tenant": "acme", "scopes": ["ingest"]},
            ]
        }
    }
    running = start_server(tmp_path_factory.mktemp("ui"), config)
    yield running
    running.kill()


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', html)


def test_a_browser_opening_the_server_lands_in_the_ui(live: RunningServer) -> None:
    r = httpx.get(f"{live.url}/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 302
    assert r.headers["location"] == "/ui/"
    api = httpx.get(f"{live.url}/", headers={"Accept": "application/json"})
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    slashless = httpx.get(f"{live.url}/ui")
    assert (slashless.status_code, slashless.headers["location"]) == (308, "/ui/")


@pytest.mark.parametrize("path", ["/ui/", "/ui/traces", "/ui/traces/abc?span=1", "/ui/nowhere/x"])
def test_every_view_path_is_the_app_under_a_strict_csp(live: RunningServer, path: str) -> None:
    r = httpx.get(f"{live.url}{path}")  # no token: the page signs in itself
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe" not in CSP
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.text == (DIST / "index.html").read_text()


def test_the_page_has_no_inline_script_or_style_and_no_other_origin(live: RunningServer) -> None:
    html = httpx.get(f"{live.url}/ui/").text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/ui/' in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_assets_are_hashed_immutable_and_gzipped(live: RunningServer) -> None:
    html = httpx.get(f"{live.url}/ui/").text
    assets = _assets(html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert re.search(r"-[A-Za-z0-9_-]{8,}\.(js|css)$", asset), asset
        plain = httpx.get(f"{live.url}{asset}", headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        kind = "text/javascript" if asset.endswith(".js") else "text/css"
        assert plain.headers["content-type"] == f"{kind}; charset=utf-8"
        on_disk = (DIST / asset.removeprefix("/ui/")).read_bytes()
        assert plain.content == on_disk
        with httpx.stream(
            "GET", f"{live.url}{asset}", headers={"Accept-Encoding": "gzip"}
        ) as packed:
            raw = b"".join(packed.iter_raw())
            assert packed.headers["content-encoding"] == "gzip"
        assert gzip.decompress(raw) == on_disk
        tag = plain.headers["etag"]
        assert packed.headers["etag"] != tag  # each encoding its own validator
        for sent in (tag, f'"other", W/{tag}', "*"):
            again = httpx.get(
                f"{live.url}{asset}",
                headers={"If-None-Match": sent, "Accept-Encoding": "identity"},
            )
            assert again.status_code == 304 and again.content == b"", sent
        stale = httpx.get(
            f"{live.url}{asset}",
            headers={"If-None-Match": packed.headers["etag"], "Accept-Encoding": "identity"},
        )
        assert stale.status_code == 200  # the gzip tag does not validate the plain body


def test_a_missing_asset_is_a_404_not_the_page(live: RunningServer) -> None:
    r = httpx.get(f"{live.url}/ui/assets/index-00000000.js")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_session_tells_the_ui_who_signed_in(live: RunningServer) -> None:
    url = f"{live.url}/api/session"
    missing = httpx.get(url)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    reader = httpx.get(url, headers={"Authorization": f"Bearer {READER}"}).json()
    assert reader == {
        "tenant": "acme",
        "scopes": ["read"],
        "anonymous": False,
        "otlp": {"grpcPort": live.grpc_port, "httpPort": live.http_port, "tls": False},
    }
    # An ingest-only token is told who it is, so the sign-in can say it lacks read.
    sender = httpx.get(url, headers={"Authorization": f"Bearer {SENDER}"}).json()
    assert sender["scopes"] == ["ingest"]
    admin = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert admin["scopes"] == ["admin", "ingest", "read"]
    in_url = httpx.get(url, params={"token": ADMIN})
    assert in_url.status_code == 400


def test_anonymous_session(server: RunningServer) -> None:
    body = httpx.get(f"{server.url}/api/session").json()
    assert body["anonymous"] is True
    assert body["scopes"] == ["admin", "ingest", "read"]
    assert body["tenant"] == "default"
