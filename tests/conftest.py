"""Shared fixtures: a real otterscope server in a subprocess, on free ports."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    data_dir: Path
    http_port: int
    grpc_port: int
    env: dict[str, str]
    args: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    token: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    verify: ssl.SSLContext | bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otterscope",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--http-port",
                str(self.http_port),
                "--grpc-port",
                str(self.grpc_port),
                *self.args,
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                ready = self.ready_url or f"{self.url}/ready"
                if httpx.get(ready, timeout=1, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: the crash path."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None


def start_server(base: Path, config: dict[str, Any] | None = None) -> RunningServer:
    """A server (anonymous, loopback) on ``base``, with ``config`` as its YAML file."""
    args: list[str] = []
    if config is not None:
        path = base / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        args = ["--config", str(path)]
    running = RunningServer(
        data_dir=base / "data",
        http_port=free_port(),
        grpc_port=free_port(),
        env={k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")},
        args=args,
        log_path=base / "server.log",
    )
    running.start()
    return running


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[object]:
    """Build servers: ``make_server(args=[...], env={...}, token=...)``; started on return."""
    made: list[RunningServer] = []

    def factory(
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
        start: bool = True,
    ) -> RunningServer:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTTERSCOPE_")}
        full_env.update(env or {})
        if token:
            full_env["OTTERSCOPE_AUTH_TOKEN"] = token
        n = len(made)
        server = RunningServer(
            data_dir=data_dir or tmp_path / f"data{n}",
            http_port=free_port(),
            grpc_port=free_port(),
            env=full_env,
            args=list(args or []),
            log_path=tmp_path / f"server{n}.log",
            token=token,
        )
        made.append(server)
        if start:
            server.start()
        return server

    yield factory
    for server in made:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


@pytest.fixture
def server(make_server: object) -> RunningServer:
    """One anonymous server on loopback."""
    return make_server()  # type: ignore[operator, no-any-return]
