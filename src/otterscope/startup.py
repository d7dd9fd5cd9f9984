"""What start-up claims before the store is opened: the data dir and the two ports.

- The data dir: it must be a directory this process can write in (checked by writing in it,
  since permissions alone do not tell: a read-only mount, an immutable flag), and it is
  locked for the life of the process with an exclusive ``flock`` on
  ``<data-dir>/otterscope.lock``, which holds the holder's PID. Two servers on one data dir
  would seal and delete each other's hot segments; the kernel drops the lock when the
  process ends, however it ends, so a crash never leaves a stale lock behind.
- The HTTP port is bound here, without SO_REUSEPORT, and the sockets handed to uvicorn. The
  gRPC port is probed the same way (grpc binds it itself, with SO_REUSEPORT turned off).

- The TLS certificate and key, when given, are loaded once up front: grpc would otherwise
  report an unreadable or mismatched pair as a port it could not bind.

Every failure is a ``StartupError`` whose message names the problem and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import ssl
import time
from pathlib import Path

from otterscope.errors import StartupError

LOCK_FILE = "otterscope.lock"
_PID_WAIT_S = 1.0
_BACKLOG = 2048  # uvicorn's default
# A full disk is not a reason to refuse start-up: reads still work, and writes come back
# once space is freed.
_FULL = (errno.ENOSPC, errno.EDQUOT)


class DataDirLock:
    """The exclusive lock on a data dir; released by ``release`` or by the process ending."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _not_writable(folder: Path, exc: OSError) -> StartupError:
    return StartupError(
        f"cannot write in {folder} ({exc.strerror}): make the data dir writable for this user "
        f"(uid {os.getuid()}), or pass --data-dir a writable directory"
    )


def _holder(fd: int) -> int | None:
    """The PID the lock's holder wrote; it writes it just after locking, so wait a little."""
    deadline = time.monotonic() + _PID_WAIT_S
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            pid = int(text)
            try:
                os.kill(pid, 0)
            except PermissionError:
                return pid
            except OSError:
                pass  # a PID left by an earlier holder
            else:
                return pid
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def _probe(folder: Path) -> None:
    probe = folder / f".otterscope-write-test-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink()
        if exc.errno in _FULL:
            return
        raise _not_writable(folder, exc) from None
    probe.unlink()


def claim_data_dir(data_dir: Path) -> DataDirLock:
    """Create ``data_dir`` if needed, check it can be written, and lock it."""
    if data_dir.exists() and not data_dir.is_dir():
        raise StartupError(
            f"data dir {data_dir} is a file, not a directory: pass --data-dir a directory "
            "(a new path is created)"
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(
            f"cannot create data dir {data_dir} ({exc.strerror}): create it yourself, or pass "
            "--data-dir a path this user can create"
        ) from None
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _not_writable(data_dir, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _holder(fd)
        os.close(fd)
        who = f"pid {pid}" if pid is not None else "its pid unknown"
        raise StartupError(
            f"data dir {data_dir.resolve()} is in use by another otterscope ({who}): stop it "
            "first, or pass another --data-dir"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise StartupError(
            f"cannot lock data dir {data_dir} ({exc.strerror}): put it on a local file system"
        ) from None
    lock = DataDirLock(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        if exc.errno not in _FULL:
            lock.release()
            raise _not_writable(data_dir, exc) from None
    try:
        for folder in (data_dir, data_dir / "hot", data_dir / "parquet"):
            if folder.is_dir():
                _probe(folder)
    except StartupError:
        lock.release()
        raise
    return lock


def _port_error(what: str, flag: str, host: str, port: int, exc: OSError) -> StartupError:
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"{what} port {port} on {host} is already in use by another process: stop it, or "
            f"choose another port with {flag}"
        )
    if exc.errno == errno.EACCES:
        return StartupError(
            f"not allowed to listen on {what} port {port} (ports below 1024 need privileges): "
            f"choose a port from 1024 up with {flag}"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return StartupError(
            f"cannot listen on {host}: it is not an address of this machine; fix --host"
        )
    return StartupError(
        f"cannot listen on {host}:{port} for {what} ({exc.strerror}): check --host and {flag}"
    )


def bind(host: str, port: int, what: str, flag: str) -> list[socket.socket]:
    """Listening sockets for every address of ``host``, as asyncio would make them.

    They listen at once: Linux lets a second SO_REUSEADDR socket bind an address that is
    bound but not yet listening, so a port merely bound would not be ours while the store
    opens (which can take a while). Connections wait in the backlog until the server
    accepts them.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve --host {host!r} ({exc.strerror}): fix --host") from None
    sockets: list[socket.socket] = []
    seen = set()
    for family, kind, proto, _name, address in infos:
        if (family, address) in seen:
            continue
        seen.add((family, address))
        sock = socket.socket(family, kind, proto)
        # SO_REUSEADDR lets a restart bind while old connections linger in TIME_WAIT; Linux
        # still refuses it while another socket listens there. SO_REUSEPORT is never set.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
            sock.listen(_BACKLOG)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRNOTAVAIL and len(infos) > 1:
                continue  # e.g. ::1 of "localhost" where IPv6 is off, as asyncio does
            for s in sockets:
                s.close()
            raise _port_error(what, flag, host, port, exc) from None
        sockets.append(sock)
    if not sockets:
        raise StartupError(f"cannot listen on {host}: no usable address; fix --host")
    return sockets


def check_free(host: str, port: int, what: str, flag: str) -> None:
    """Fail now, with the reason, if ``port`` cannot be bound (grpc would only say it failed)."""
    for sock in bind(host, port, what, flag):
        sock.close()


def check_tls(cert: str, key: str) -> None:
    """The certificate and key can be read and belong together, or a one-line reason."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise StartupError(
                f"--tls-cert {cert} / --tls-key {key} are not a PEM certificate and its "
                f"private key ({exc.reason or exc}): give the PEM files of one certificate "
                "and the key it was made for"
            ) from None
        raise StartupError(
            f"cannot read {exc.filename or cert}: {exc.strerror or exc}; fix --tls-cert / "
            "--tls-key (server.tls_cert / server.tls_key)"
        ) from None
