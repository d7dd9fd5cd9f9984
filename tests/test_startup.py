"""Start-up: one server per data dir, ports never shared, operator mistakes in one line.

Every check runs real ``otterscope serve`` processes. A mistake must end the process with a
non-zero status and exactly one line on stderr that names the problem (and no traceback).

Root may write anywhere regardless of permissions, so "not writable" uses what stops root
too: a read-only bind mount (``mount -o remount,ro,bind``) and the immutable flag
(``chattr +i``); those tests are skipped, saying why, where the machine does not allow them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from otterscope import __version__
from tests.conftest import RunningServer, free_port
from tests.payloads import new_span_id, new_trace_id, now_ns, post, span, traces_body

MakeServer = Callable[..., RunningServer]


def serve(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``otterscope serve`` that is expected to refuse to start (a hang is a failure)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "otterscope", "serve", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


def ports() -> list[str]:
    return ["--http-port", str(free_port()), "--grpc-port", str(free_port())]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused start-up."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("otterscope: "), lines[0]
    return lines[0]


def send_span(server: RunningServer) -> str:
    trace_id = new_trace_id()
    post(server.url, "traces", traces_body("lock", [span(trace_id, new_span_id(), "x", now_ns())]))
    return trace_id


def stored(server: RunningServer, trace_id: str) -> bool:
    r = httpx.get(f"{server.url}/api/traces/{trace_id}", timeout=30)
    assert r.status_code in (200, 404), r.text
    return r.status_code == 200


# -- one server per data dir ----------------------------------------------------------------


def test_a_second_server_on_the_data_dir_exits_naming_the_holder(
    make_server: MakeServer, tmp_path: Path
) -> None:
    first = make_server()
    assert first.proc is not None
    x = send_span(first)

    result = serve(tmp_path, "--data-dir", str(first.data_dir), *ports())
    line = one_line(result)
    assert f"pid {first.proc.pid}" in line, line
    assert "in use" in line and "--data-dir" in line, line

    # The first server never noticed: what it acknowledges after the attempt is kept too.
    y = send_span(first)
    assert first.stop() == 0
    first.start()
    assert stored(first, x)
    assert stored(first, y)


def test_the_lock_goes_with_the_process(make_server: MakeServer) -> None:
    first = make_server()
    first.kill()
    # A crash leaves no stale lock: the next server starts on the same data dir.
    second = make_server(data_dir=first.data_dir)
    assert second.proc is not None
    assert (first.data_dir / "otterscope.lock").read_text().strip() == str(second.proc.pid)


# -- ports ------------------------------------------------------------------------------------


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.mark.parametrize(
    ("flag", "other"), [("--http-port", "--grpc-port"), ("--grpc-port", "--http-port")]
)
def test_a_port_held_by_another_program(
    tmp_path: Path, held_port: int, flag: str, other: str
) -> None:
    result = serve(
        tmp_path, "--data-dir", str(tmp_path / "d"), flag, str(held_port), other, str(free_port())
    )
    line = one_line(result)
    assert f"port {held_port}" in line and "already in use" in line and flag in line, line


@pytest.mark.parametrize("which", ["http", "grpc"])
def test_a_port_held_by_another_otterscope(
    make_server: MakeServer, tmp_path: Path, which: str
) -> None:
    first = make_server()
    taken = first.http_port if which == "http" else first.grpc_port
    args = {"http": str(free_port()), "grpc": str(free_port())}
    args[which] = str(taken)
    result = serve(
        tmp_path,
        "--data-dir",
        str(tmp_path / "other"),
        "--http-port",
        args["http"],
        "--grpc-port",
        args["grpc"],
    )
    line = one_line(result)
    assert f"port {taken}" in line and f"--{which}-port" in line, line
    assert httpx.get(f"{first.url}/ready", timeout=10).status_code == 200


def test_neither_port_can_be_shared(server: RunningServer) -> None:
    """No SO_REUSEPORT on either listening socket: a socket asking for it is refused."""
    for port in (server.http_port, server.grpc_port):
        with socket.socket() as intruder:
            intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError) as info:
                intruder.bind(("127.0.0.1", port))
            assert info.value.errno == 98, port  # EADDRINUSE


# -- operator mistakes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--http-port", "70000"], {}, "server.http_port is 70000"),
        (["--grpc-port", "0"], {}, "server.grpc_port is 0"),
        ([], {"OTTERSCOPE_SERVER__HTTP_PORT": "abc"}, "'abc' is not a whole number"),
        ([], {"OTTERSCOPE_SERVER__GRPC_PORT": "99999"}, "from 1 to 65535"),
        (
            [],
            {"OTTERSCOPE_SERVER__HTTP_PROT": "4318"},
            "OTTERSCOPE_SERVER__HTTP_PROT: did you mean OTTERSCOPE_SERVER__HTTP_PORT?",
        ),
        (
            [],
            {"OTTERSCOPE_RETENTION_TRACES": "1d"},
            "did you mean OTTERSCOPE_RETENTION__TRACES?",
        ),
        ([], {"OTTERSCOPE_DATADIR": "/x"}, "did you mean OTTERSCOPE_DATA_DIR?"),
        ([], {"OTTERSCOPE_CORS__ORIGINS": "*"}, "only in the config file"),
    ],
)
def test_configuration_mistakes(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    flags = {"--http-port": str(free_port()), "--grpc-port": str(free_port())}
    for i in range(0, len(args), 2):
        flags[args[i]] = args[i + 1]
    for name in env:  # a flag would win over the variable under test
        flags.pop("--" + name.rsplit("__", 1)[-1].lower().replace("_", "-"), None)
    result = serve(
        tmp_path,
        "--data-dir",
        str(tmp_path / "d"),
        *[x for kv in flags.items() for x in kv],
        env=env,
    )
    line = one_line(result)
    assert expected in line, line
    assert not (tmp_path / "d").exists()  # refused before anything was created


def test_the_clients_variables_and_the_short_forms_are_accepted(
    make_server: MakeServer, tmp_path: Path
) -> None:
    """Names otterscope reads elsewhere are no mistakes: a shell may export them all."""
    env = {
        "OTTERSCOPE_URL": "http://127.0.0.1:1",
        "OTTERSCOPE_TOKEN": "client-token",
        "OTTERSCOPE_DATA_DIR": str(tmp_path / "ignored-for-the-flag"),
        "OTTERSCOPE_AUTH_TOKEN": "s3cret",
    }
    server = make_server(env=env, token="s3cret")
    r = httpx.get(f"{server.url}/health", headers=server.headers(), timeout=10)
    assert r.status_code == 200


def test_the_data_dir_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    line = one_line(serve(tmp_path, "--data-dir", str(tmp_path / "data"), *ports()))
    assert "is a file" in line and "--data-dir" in line, line


def _used_data_dir(make_server: MakeServer, path: Path) -> None:
    server = make_server(data_dir=path)
    send_span(server)
    assert server.stop() == 0


@contextlib.contextmanager
def _read_only_mount(path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root and mount(8)")
    view = path.parent / f"{path.name}-ro"
    view.mkdir()
    bound = subprocess.run(["mount", "--bind", str(path), str(view)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"mount --bind is not allowed here: {bound.stderr.decode().strip()}")
    try:
        ro = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(view)], capture_output=True, check=False
        )
        if ro.returncode != 0:
            pytest.skip(f"remounting read-only is not allowed here: {ro.stderr.decode().strip()}")
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_read_only_data_dir(make_server: MakeServer, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _used_data_dir(make_server, data)
    with _read_only_mount(data) as view:
        line = one_line(serve(tmp_path, "--data-dir", str(view), *ports()))
    assert f"cannot write in {view}" in line and "Read-only file system" in line, line
    assert "--data-dir" in line, line


@contextlib.contextmanager
def _immutable(path: Path) -> Iterator[None]:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("the immutable flag needs root and chattr(1)")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("folder", [".", "hot"])
def test_a_data_dir_that_cannot_be_written(
    make_server: MakeServer, tmp_path: Path, folder: str
) -> None:
    """Checked at start-up: the server used to start, say ready, and answer 503 to exports."""
    data = tmp_path / "data"
    _used_data_dir(make_server, data)
    with _immutable(data / folder):
        line = one_line(serve(tmp_path, "--data-dir", str(data), *ports()))
    assert f"cannot write in {data / folder} (Operation not permitted)" in line, line
    assert "--data-dir" in line, line


# -- the start-up banner ------------------------------------------------------------------------


def test_the_banner_is_information_and_shown_by_default(server: RunningServer) -> None:
    banner = [line for line in server.log().splitlines() if "OTLP/HTTP and API on" in line]
    assert len(banner) == 1, server.log()
    assert f" INFO otterscope: otterscope {__version__}: " in banner[0], banner[0]


def test_log_level_warning_hides_the_banner(make_server: MakeServer) -> None:
    server = make_server(args=["--log-level", "warning"])
    assert "OTLP/HTTP and API on" not in server.log()
    assert server.stop() == 0
    assert "stopped cleanly" not in server.log()


def test_a_claimed_port_is_ours_before_the_store_opens() -> None:
    """Start-up claims the HTTP port before opening the store; a second claim of it (with
    SO_REUSEADDR, as asyncio and every server does) must fail then, not later."""
    from otterscope.errors import StartupError
    from otterscope.startup import bind

    port = free_port()
    ours = bind("127.0.0.1", port, "HTTP", "--http-port")
    try:
        with pytest.raises(StartupError, match="in use"):
            bind("127.0.0.1", port, "gRPC", "--grpc-port")
        intruder = socket.socket()
        intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError) as info:
            intruder.bind(("127.0.0.1", port))
        intruder.close()
        assert info.value.errno == 98  # EADDRINUSE
    finally:
        for sock in ours:
            sock.close()
