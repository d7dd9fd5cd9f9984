"""Cursor paging over real sockets: every item exactly once, whatever arrives meanwhile.

Cursors are opaque, encrypted and bound to the tenant and the query; a changed, foreign or
misapplied cursor is a 400; cursors survive a restart.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.payloads import (
    SECOND,
    log,
    logs_body,
    new_span_id,
    new_trace_id,
    now_ns,
    post,
    span,
    traces_body,
)


def send_traces(
    url: str, n: int, t0: int, service: str = "pager", same_start: bool = False
) -> set[str]:
    ids = set()
    spans = []
    for i in range(n):
        tid = new_trace_id()
        ids.add(tid)
        start = t0 if same_start else t0 + i * 1000
        root = new_span_id()
        spans.append(span(tid, root, "GET /page", start, 5 * 10**6))
        spans.append(span(tid, new_span_id(), "db", start + 100, 10**6, parent=root, kind=3))
    post(url, "traces", traces_body(service, spans))
    return ids


def page_all(url: str, path: str, key: str, params: dict[str, Any]) -> tuple[list[Any], int]:
    items: list[Any] = []
    pages = 0
    cursor = None
    while True:
        q = dict(params)
        if cursor:
            q["cursor"] = cursor
        r = httpx.get(f"{url}{path}", params=q, timeout=30)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body[key])
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            return items, pages
        assert pages < 1000


def test_trace_search_pages_through_every_trace_once(server: RunningServer) -> None:
    t0 = now_ns() - 600 * SECOND
    ids = send_traces(server.url, 57, t0)
    found, pages = page_all(server.url, "/api/traces", "traces", {"service": "pager", "limit": 10})
    assert pages == 6
    got = [t["traceId"] for t in found]
    assert len(got) == len(set(got)) == 57
    assert set(got) == ids
    starts = [int(t["startTimeUnixNano"]) for t in found]
    assert starts == sorted(starts, reverse=True)
    assert all(t["spanCount"] == 2 for t in found)


def test_ties_on_start_time_are_paged_by_trace_id(server: RunningServer) -> None:
    ids = send_traces(server.url, 25, now_ns() - 60 * SECOND, same_start=True)
    found, _ = page_all(server.url, "/api/traces", "traces", {"limit": 4})
    assert sorted(t["traceId"] for t in found) == sorted(ids)


def test_pages_pin_the_ingest_point_while_new_data_arrives(server: RunningServer) -> None:
    t0 = now_ns() - 300 * SECOND
    before = send_traces(server.url, 30, t0)
    r = httpx.get(f"{server.url}/api/traces", params={"limit": 7})
    first = r.json()
    cursor = first["nextCursor"]
    seen = [t["traceId"] for t in first["traces"]]
    # New traces, some newer and some older than everything on the first page, and more
    # spans of traces already seen: none of it may shift, repeat or join the paged read.
    after = send_traces(server.url, 20, t0 + 10**9) | send_traces(server.url, 20, t0 - 10**9)
    while cursor:
        r = httpx.get(f"{server.url}/api/traces", params={"limit": 7, "cursor": cursor})
        assert r.status_code == 200, r.text
        seen += [t["traceId"] for t in r.json()["traces"]]
        cursor = r.json()["nextCursor"]
        send_traces(server.url, 3, t0 + 5 * 10**8)
    assert len(seen) == len(set(seen))
    assert set(seen) == before
    assert not set(seen) & after


def test_log_search_pages_newest_first_exactly_once(server: RunningServer) -> None:
    t0 = now_ns() - 120 * SECOND
    # Several records share a timestamp: the ingest order breaks ties.
    records = [log(f"record {i}", t0 + (i // 3) * 1000) for i in range(40)]
    post(server.url, "logs", logs_body("pager", records))
    found, pages = page_all(server.url, "/api/logs", "logs", {"limit": 6, "q": "record"})
    assert pages == 7
    bodies = [r["body"] for r in found]
    assert sorted(bodies) == sorted(f"record {i}" for i in range(40))
    times = [int(r["timeUnixNano"]) for r in found]
    assert times == sorted(times, reverse=True)


def get_error(
    url: str, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    r = httpx.get(f"{url}{path}", params=params, headers=headers or {})
    assert r.status_code == 400, r.text
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == "bad_request"
    return body


def first_cursor(url: str, params: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    r = httpx.get(f"{url}/api/traces", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    cursor: str = r.json()["nextCursor"]
    assert cursor
    return cursor


def test_a_changed_cursor_is_refused(server: RunningServer) -> None:
    send_traces(server.url, 5, now_ns() - 60 * SECOND)
    cursor = first_cursor(server.url, {"limit": 2})
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for position in (0, 5, len(raw) // 2, len(raw) - 1):
        bad = bytearray(raw)
        bad[position] ^= 0x01
        token = base64.urlsafe_b64encode(bytes(bad)).rstrip(b"=").decode()
        body = get_error(server.url, "/api/traces", {"limit": 2, "cursor": token})
        assert "cursor" in body["error"]["message"]
    for junk in ("abc", "!!!", cursor[:-4], cursor + "AAAA"):
        get_error(server.url, "/api/traces", {"limit": 2, "cursor": junk})


def test_a_cursor_is_bound_to_its_query_and_endpoint(server: RunningServer) -> None:
    send_traces(server.url, 5, now_ns() - 60 * SECOND)
    cursor = first_cursor(server.url, {"limit": 2, "service": "pager"})
    # Other conditions, or another endpoint: refused. Another page size: fine.
    get_error(server.url, "/api/traces", {"limit": 2, "service": "other", "cursor": cursor})
    get_error(server.url, "/api/traces", {"limit": 2, "cursor": cursor})
    get_error(server.url, "/api/logs", {"limit": 2, "service": "pager", "cursor": cursor})
    r = httpx.get(
        f"{server.url}/api/traces", params={"limit": 3, "service": "pager", "cursor": cursor}
    )
    assert r.status_code == 200
    assert len(r.json()["traces"]) == 3


def test_a_cursor_is_bound_to_its_tenant(tmp_path: Path) -> None:
    tokens = [
        {"token": "token-of-alpha-0123", "tenant": "alpha", "scopes": ["ingest", "read"]},
        {"token": "token-of-beta-45678", "tenant": "beta", "scopes": ["ingest", "read"]},
    ]
    srv = start_server(tmp_path, {"auth": {"tokens": tokens}})
    try:
        alpha = {"Authorization": "Bearer token-of-alpha-0123"}
        beta = {"Authorization": "Bearer token-of-beta-45678"}
        t0 = now_ns() - 60 * SECOND
        spans = [span(new_trace_id(), new_span_id(), "op", t0 + i) for i in range(4)]
        post(srv.url, "traces", traces_body("svc", spans), alpha)
        post(srv.url, "traces", traces_body("svc", spans), beta)
        cursor = first_cursor(srv.url, {"limit": 1}, alpha)
        get_error(srv.url, "/api/traces", {"limit": 1, "cursor": cursor}, beta)
        r = httpx.get(f"{srv.url}/api/traces", params={"limit": 1, "cursor": cursor}, headers=alpha)
        assert r.status_code == 200
    finally:
        srv.stop()


@pytest.mark.parametrize("configured", [False, True])
def test_cursors_survive_a_restart(make_server: Any, tmp_path: Path, configured: bool) -> None:
    env = (
        {"OTTERSCOPE_STORAGE__CURSOR_ENCRYPTION_KEY": "a-secret-of-enough-length"}
        if configured
        else {}
    )
    srv: RunningServer = make_server(env=env, data_dir=tmp_path / "data")
    ids = send_traces(srv.url, 9, now_ns() - 60 * SECOND)
    r = httpx.get(f"{srv.url}/api/traces", params={"limit": 4})
    seen = [t["traceId"] for t in r.json()["traces"]]
    cursor = r.json()["nextCursor"]
    assert srv.stop() == 0
    srv.start()
    send_traces(srv.url, 5, now_ns() - 30 * SECOND)  # after the pin: not part of this read
    rest, _ = page_all(srv.url, "/api/traces", "traces", {"limit": 4, "cursor": cursor})
    seen += [t["traceId"] for t in rest]
    assert sorted(seen) == sorted(ids)
    assert (tmp_path / "data" / "cursor.key").exists() != configured


def test_a_cursor_from_another_key_is_refused(make_server: Any, tmp_path: Path) -> None:
    one: RunningServer = make_server(
        env={"OTTERSCOPE_STORAGE__CURSOR_ENCRYPTION_KEY": "first-secret-0123456"}
    )
    two: RunningServer = make_server(
        env={"OTTERSCOPE_STORAGE__CURSOR_ENCRYPTION_KEY": "second-secret-012345"}
    )
    for srv in (one, two):
        send_traces(srv.url, 3, now_ns() - 60 * SECOND)
    cursor = first_cursor(one.url, {"limit": 1})
    get_error(two.url, "/api/traces", {"limit": 1, "cursor": cursor})


def test_a_short_cursor_key_is_a_startup_error(make_server: Any) -> None:
    with pytest.raises(RuntimeError, match="cursor_encryption_key"):
        make_server(env={"OTTERSCOPE_STORAGE__CURSOR_ENCRYPTION_KEY": "short"})
